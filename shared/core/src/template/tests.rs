//! The template's tests: loading, overrides, versions and typing.

use super::*;

const BASE: &str = r#"
[template]
name = "psa-erp"
version = "1.0.0"
psa = "some_psa"
erp = "some_erp"

[value_maps.work_role_item]
"Senior Consultant" = "CONS-SR"

[dimensions.department]
from = "project.dimensions.department.code"
erp_category = "Department"

[domains.customers]
direction = "psa_to_erp"

[domains.projects]
direction = "reference"

[domains.time_entries]
direction = "psa_to_erp"
approved_only = true
granularity = "summary"
item = { from = "record.role", map = "work_role_item" }
required_dimensions = ["department"]
skip_when = [{ when = "project.billing_type != 'time_and_materials'", reason = "billed by PSA invoice" }]

[domains.time_entries.summary]
document = "project_billing"
"#;

fn src(name: &str, text: &str) -> TemplateSource {
    TemplateSource::new(name, text)
}

#[test]
fn a_valid_base_loads_with_a_versioned_identity() {
    let t = Template::load(&src("base.toml", BASE), None).unwrap();
    assert!(t.version.starts_with("psa-erp@1.0.0#"), "{}", t.version);
    assert_eq!(t.direction(Domain::Projects), Direction::Reference);
    assert_eq!(t.direction(Domain::Payments), Direction::None);
    let rule = t.rule(Domain::TimeEntries).unwrap();
    assert_eq!(rule.required_dimensions, vec![DimensionKind::Department]);
    assert_eq!(rule.owner, Owner::ProjectOperations);
}

#[test]
fn an_override_merges_maps_and_changes_the_version() {
    let ov = r#"
[template]
customer = "acme"
version = "3"
[value_maps.work_role_item]
"Architect" = "CONS-ARCH"
"#;
    let t = Template::load(&src("base.toml", BASE), Some(&src("acme.toml", ov))).unwrap();
    let map = t.value_map("work_role_item").unwrap();
    assert_eq!(map.get("Architect").map(String::as_str), Some("CONS-ARCH"));
    assert_eq!(
        map.get("Senior Consultant").map(String::as_str),
        Some("CONS-SR")
    );
    assert!(
        t.version.starts_with("psa-erp@1.0.0+acme@3#"),
        "{}",
        t.version
    );
    let plain = Template::load(&src("base.toml", BASE), None).unwrap();
    assert_ne!(plain.version, t.version);
}

#[test]
fn errors_name_the_file_the_path_and_the_problem() {
    let ov = r#"
[template]
version = "2"
[domains.time_entries]
item = { from = "record.role", map = "no_such_map" }
skip_when = [{ when = "record.billable ==", reason = "x" }]
[domains.payments]
direction = "psa_to_erp"
"#;
    let errs = Template::load(&src("base.toml", BASE), Some(&src("acme.toml", ov)))
        .unwrap_err()
        .to_string();
    assert!(
        errs.contains("acme.toml: domains.time_entries.item.map: value map \"no_such_map\""),
        "{errs}"
    );
    assert!(
        errs.contains("acme.toml: domains.time_entries.skip_when[0].when: invalid CEL"),
        "{errs}"
    );
    assert!(
        errs.contains("acme.toml: domains.payments.direction: payments cannot post"),
        "{errs}"
    );
}

#[test]
fn template_rates_are_positive_decimals_checked_at_load_and_only_for_time() {
    let ov = r#"
[template]
version = "2"
[domains.time_entries]
rate = { from = "record.work_type", map = "rates" }
[domains.expenses]
direction = "psa_to_erp"
account = { value = "260" }
rate = { value = "10" }
[value_maps.rates]
"Design" = "120.00"
"Development" = "a lot"
"#;
    let errs = Template::load(&src("base.toml", BASE), Some(&src("acme.toml", ov)))
        .unwrap_err()
        .to_string();
    assert!(
        errs.contains(
            "value_maps.rates.\"Development\": a rate must be a positive decimal, got \"a lot\""
        ),
        "{errs}"
    );
    assert!(
        !errs.contains("Design"),
        "a valid rate is not reported: {errs}"
    );
    assert!(
        errs.contains("domains.expenses.rate: only time entries have an hourly rate"),
        "{errs}"
    );
}

#[test]
fn timesheets_need_time_entries_and_projects_that_post() {
    let ov = r#"
[template]
version = "2"
[domains.time_entries]
timesheets = true
[domains.customers]
timesheets = true
"#;
    let errs = Template::load(&src("base.toml", BASE), Some(&src("acme.toml", ov)))
        .unwrap_err()
        .to_string();
    assert!(
        errs.contains("domains.time_entries.timesheets: timesheet lines go on ERP projects"),
        "{errs}"
    );
    assert!(
        errs.contains("domains.customers.timesheets: only time entries become timesheet lines"),
        "{errs}"
    );
    let fixed = format!("{ov}[domains.projects]\ndirection = \"psa_to_erp\"\n")
        .replace("[domains.customers]\ntimesheets = true\n", "");
    let t = Template::load(&src("base.toml", BASE), Some(&src("acme.toml", &fixed)))
        .expect("time entries with posted projects may keep timesheets");
    assert!(t.rule(Domain::TimeEntries).unwrap().spec.timesheets);
}

#[test]
fn unknown_keys_and_wrong_types_are_reported_with_their_path() {
    let bad = BASE.replace("approved_only = true", "approved_only = \"yes\"");
    let errs = Template::load(&src("base.toml", &bad), None)
        .unwrap_err()
        .to_string();
    assert!(
        errs.contains("base.toml: domains.time_entries.approved_only"),
        "{errs}"
    );
    let typo = BASE.replace("approved_only = true", "aproved_only = true");
    let errs = Template::load(&src("base.toml", &typo), None)
        .unwrap_err()
        .to_string();
    assert!(errs.contains("unknown field `aproved_only`"), "{errs}");
}

#[test]
fn every_structural_error_is_reported_not_only_the_first() {
    let bad = BASE
        .replace("approved_only = true", "approved_only = \"yes\"")
        .replace("direction = \"reference\"", "direction = \"sideways\"");
    let errs = Template::load(&src("base.toml", &bad), None).unwrap_err().0;
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "domains.projects.direction",
            "domains.time_entries.approved_only"
        ],
        "{errs:?}"
    );
    assert!(errs.iter().all(|e| !e.message.contains('\n')), "{errs:?}");
}

#[test]
fn every_wrong_key_is_reported_and_the_rest_is_still_checked() {
    let ov = r#"
[template]
version = "2"
[bounds]
max_hourly_rate = 5000
max_amount = true
bogus = 1
[defaults]
billing_currency = "both"
time_zone = "Mars/Olympus"
reference_prefix = "A B"
[domains.time_entries]
approved_only = "yes"
billable_only = "no"
skip_when = [{ when = "record.notes", reason = "r" }]
"#;
    let errs = Template::load(&src("base.toml", BASE), Some(&src("acme.toml", ov)))
        .unwrap_err()
        .0;
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    for expected in [
        "bounds.max_hourly_rate",
        "bounds.max_amount",
        "bounds.bogus",
        "defaults.billing_currency",
        "domains.time_entries.approved_only",
        "domains.time_entries.billable_only",
        // and the checks that need the rest read:
        "defaults.time_zone",
        "defaults.reference_prefix",
        "domains.time_entries.skip_when[0].when",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(errs.iter().all(|e| e.file == "acme.toml"), "{errs:?}");
}

#[test]
fn names_are_quoted_in_paths_blamed_on_their_file_and_never_reach_a_terminal_raw() {
    let ov = "[template]\nversion = \"2\"\n[value_maps.\"Sr. roles\"]\n\"Sr. Consultant\" = \"a\\u0000b\"\n[domains.\"\\u001b[31mEVIL\"]\ndirection = \"none\"\n[bogus]\nx = 1\n";
    let errs = Template::load(&src("base.toml", BASE), Some(&src("acme.toml", ov))).unwrap_err();
    for e in &errs.0 {
        assert_eq!(e.file, "acme.toml", "{e:?}");
    }
    let shown = errs.to_string();
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(
        shown.contains("value_maps.\"Sr. roles\".\"Sr. Consultant\""),
        "{shown}"
    );
    assert!(
        shown.contains("acme.toml: bogus: unknown section"),
        "{shown}"
    );
    for invisible in ["\\u200b", "\\u202eABC", "\\u00ad", " x"] {
        let ov = format!(
            "[template]\nversion = \"2\"\n[value_maps.work_role_item]\n\"A\" = \"{invisible}\"\n"
        );
        assert!(
            Template::load(&src("base.toml", BASE), Some(&src("acme.toml", &ov))).is_err(),
            "{invisible}"
        );
    }
    let ok = "[template]\nversion = \"2\"\n[defaults]\nreference_prefix = \"ACME_1\"\n";
    assert!(Template::load(&src("base.toml", BASE), Some(&src("acme.toml", ok))).is_ok());
}

#[test]
fn every_expression_problem_is_reported_with_its_path() {
    let ov = r#"
[template]
version = "2"
[domains.time_entries]
item = { from = "record.rolee", map = "work_role_item" }
skip_when = [{ when = "record.notes", reason = "r" }, { when = "projcet.x == 1", reason = "r" }]
"#;
    let errs = Template::load(&src("base.toml", BASE), Some(&src("acme.toml", ov)))
        .unwrap_err()
        .0;
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "domains.time_entries.skip_when[0].when",
            "domains.time_entries.skip_when[1].when",
            "domains.time_entries.item.from",
        ],
        "{errs:?}"
    );
    assert!(
        errs[0].message.contains("expected true or false"),
        "{errs:?}"
    );
    assert!(
        errs[1].message.contains("unknown variable `projcet`"),
        "{errs:?}"
    );
    assert!(errs[2].message.contains("did you mean `role`"), "{errs:?}");
}

#[test]
fn codes_for_the_erp_are_printable_and_bounded() {
    let ov = format!(
        "[template]\nversion = \"2\"\n[value_maps.work_role_item]\n\"A\" = \"IT\\u0000EM\"\n\"B\" = \"\"\n\"C\" = \"{}\"\n",
        "x".repeat(MAX_VALUE_CHARS + 1)
    );
    let errs = Template::load(&src("base.toml", BASE), Some(&src("acme.toml", &ov)))
        .unwrap_err()
        .to_string();
    assert!(
        errs.contains("value_maps.work_role_item.\"A\": contains the character '\\0'"),
        "{errs}"
    );
    assert!(
        errs.contains("value_maps.work_role_item.\"B\": must not be empty"),
        "{errs}"
    );
    assert!(
        errs.contains("value_maps.work_role_item.\"C\": 256 characters"),
        "{errs}"
    );
}

#[test]
fn a_file_that_never_ends_is_refused_after_the_size_limit() {
    let e = TemplateSource::read(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let big = std::env::temp_dir().join(format!("ferry-big-{}.toml", std::process::id()));
    std::fs::write(&big, "#".repeat(MAX_TEMPLATE_BYTES + 1)).expect("write");
    let e = TemplateSource::read(&big).unwrap_err();
    let _ = std::fs::remove_file(&big);
    assert!(e.to_string().contains("larger than"), "{e}");
    let huge = src("big.toml", &"#".repeat(MAX_TEMPLATE_BYTES + 1));
    assert!(Template::load(&huge, None).is_err());
}

#[test]
fn toml_syntax_errors_carry_a_line_number() {
    let errs = Template::load(&src("base.toml", "[template\nname = 1"), None)
        .unwrap_err()
        .0;
    assert_eq!(errs[0].file, "base.toml");
    assert_eq!(errs[0].line, Some(1));
}

#[test]
fn an_override_cannot_switch_connectors() {
    let ov = "[template]\nversion = \"1\"\nerp = \"another_erp\"\n";
    let errs = Template::load(&src("base.toml", BASE), Some(&src("o.toml", ov)))
        .unwrap_err()
        .to_string();
    assert!(
        errs.contains("o.toml: template.erp: an override cannot change"),
        "{errs}"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(192))]

        /// Whatever text a template holds, loading it gives a template or a
        /// list of errors: no panic, no stack overflow (on a small stack).
        #[test]
        fn any_text_loads_or_is_refused_with_errors(
            text in "[\\[\\]a-z_.=\"'(){}?:!<>&|0-9 \n#,-]{0,400}",
            at in 0usize..2000,
        ) {
            let texts = [text.clone(), {
                // Also inside a valid template, where more of it is read.
                let at = at.min(BASE.len());
                let at = (0..=at).rev().find(|i| BASE.is_char_boundary(*i)).unwrap_or(0);
                format!("{}{}{}", &BASE[..at], text, &BASE[at..])
            }];
            for t in texts {
                let handle = std::thread::Builder::new()
                    .stack_size(2 * 1024 * 1024)
                    .spawn(move || match Template::load(&src("fuzz.toml", &t), None) {
                        Ok(_) => true,
                        Err(e) => !e.0.is_empty(),
                    })
                    .expect("thread");
                prop_assert!(handle.join().expect("no panic, no stack overflow"));
            }
        }

        /// Any expression text compiles and is checked, or is refused with a message.
        #[test]
        fn any_expression_compiles_or_is_refused(expr in "[a-z_.()\\[\\]{}?:!<>=&|'\"0-9 +-]{0,200}") {
            let handle = std::thread::Builder::new()
                .stack_size(2 * 1024 * 1024)
                .spawn(move || match Expr::compile(&expr) {
                    Ok(e) => {
                        let _ = types::check(&e, &Vars::for_domain(Domain::TimeEntries), Use::Condition);
                        let scope = Scope::new(&serde_json::json!({"role": "x", "billable": true}), None, None);
                        let _ = scope.boolean(&e);
                        let _ = scope.text(&e);
                        true
                    }
                    Err(m) => !m.is_empty(),
                })
                .expect("thread");
            prop_assert!(handle.join().expect("no panic, no stack overflow"));
        }
    }
}
