//! Mapping templates: declarative, versioned TOML files (a partner base plus an
//! optional customer override), validated on load with errors that name the file,
//! the key path and what is wrong.

pub mod eval;
mod fit;
mod load;
pub mod spec;
pub mod types;

use std::collections::BTreeMap;
use std::fmt;

use ferry_canon::{Currency, DimensionKind, Domain};

use crate::hash::hash_json;
use crate::ports::Owner;
use crate::posting::DocStatus;
pub use eval::{Expr, Scope};
pub use spec::*;
use types::{Use, Vars};

/// Largest template file read, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
/// Longest code or value a template gives the ERP (item and account codes,
/// tracking options, tax types), in characters.
pub const MAX_VALUE_CHARS: usize = 255;

/// One problem found while loading a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub file: String,
    /// Dotted key path, e.g. `domains.time_entries.skip_when[0].when`.
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names come from the file: a control character in a table name must
        // reach a terminal as text, not as an escape sequence.
        match self.line {
            Some(l) => write!(f, "{}:{}: ", printable(&self.file), l)?,
            None => write!(f, "{}: ", printable(&self.file))?,
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", printable(&self.path))?;
        }
        f.write_str(&printable(&self.message))
    }
}

/// `s` with control and invisible characters written as `\u{..}`.
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || eval::invisible(c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() || eval::invisible(c) {
                    format!("\\u{{{:x}}}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Longest key shown whole in a key path; a longer one is cut.
const MAX_KEY_SHOWN: usize = 64;

/// A key from a file (a table name, a connector name) as one segment of a
/// key path a person reads: as written when it is a plain name, quoted and
/// escaped when it holds what a path uses (`.`, `[`, quotes, spaces) or what
/// a terminal would act on, and cut when it is longer than anyone types.
pub fn key_segment(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if key.chars().count() > MAX_KEY_SHOWN {
        let cut: String = key.chars().take(MAX_KEY_SHOWN).collect();
        format!("{cut:?}…")
    } else if plain {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// All problems found in a template, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateErrors(pub Vec<TemplateError>);

impl fmt::Display for TemplateErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A template file's name (for messages) and text.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    pub name: String,
    pub text: String,
}

impl TemplateSource {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        TemplateSource {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Reads a regular file of at most [`MAX_TEMPLATE_BYTES`] (a device or a
    /// FIFO, which may never end, is refused unread); the error names the file.
    pub fn read(path: &std::path::Path) -> Result<Self, TemplateErrors> {
        use std::io::Read;
        let fail = |message: String| {
            TemplateErrors(vec![TemplateError {
                file: path.display().to_string(),
                path: String::new(),
                line: None,
                message,
            }])
        };
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        // A FIFO or a device can block or never end: a template is a file.
        match file.metadata() {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(fail("not a regular file".into())),
            Err(e) => return Err(fail(format!("cannot read: {e}"))),
        }
        let mut bytes = Vec::new();
        file.take(MAX_TEMPLATE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if bytes.len() > MAX_TEMPLATE_BYTES {
            return Err(fail(format!(
                "larger than {MAX_TEMPLATE_BYTES} bytes; a template is a small text file"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| fail(format!("not UTF-8 text: {e}")))?;
        Ok(TemplateSource::new(path.display().to_string(), text))
    }
}

/// Where a value comes from, compiled.
#[derive(Debug, Clone)]
pub struct CompiledSource {
    pub expr: Option<Expr>,
    pub map: Option<String>,
    pub default: Option<String>,
    pub value: Option<String>,
    /// The key path in the template, for messages.
    pub path: String,
}

/// A domain rule, compiled.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub domain: Domain,
    pub spec: DomainRule,
    pub owner: Owner,
    pub skip_when: Vec<(Expr, String)>,
    pub item: Option<CompiledSource>,
    pub account: Option<CompiledSource>,
    pub rate: Option<CompiledSource>,
    pub description: Option<Expr>,
    pub required_dimensions: Vec<DimensionKind>,
    pub invoice_status: DocStatus,
}

/// Plausibility bounds, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledBounds {
    pub max_hourly_rate: rust_decimal::Decimal,
    pub max_amount: rust_decimal::Decimal,
    pub max_days_ahead: u32,
    pub max_days_back: u32,
}

/// A dimension rule, compiled.
#[derive(Debug, Clone)]
pub struct CompiledDimension {
    pub kind: DimensionKind,
    pub source: CompiledSource,
    pub erp_category: Option<String>,
}

/// A loaded, validated template.
#[derive(Debug, Clone)]
pub struct Template {
    pub spec: TemplateSpec,
    /// `base@1.2.0+acme@3#a1b2c3d4e5f6`: names, versions and a content hash, so
    /// every ERP document can say exactly which mapping produced it.
    pub version: String,
    pub currency: Currency,
    /// The firm's time zone (`defaults.time_zone`).
    pub time_zone: chrono_tz::Tz,
    pub bounds: CompiledBounds,
    pub rules: BTreeMap<Domain, CompiledRule>,
    pub dimensions: Vec<CompiledDimension>,
    pub tax: CompiledSource,
}

/// Domains that can become ERP documents, and how.
pub fn postable(domain: Domain) -> bool {
    POSTABLE.contains(&domain)
}

/// The domains [`postable`] accepts.
const POSTABLE: [Domain; 7] = [
    Domain::Customers,
    Domain::Projects,
    Domain::TimeEntries,
    Domain::Expenses,
    Domain::BillingEvents,
    Domain::Invoices,
    Domain::CreditMemos,
];

/// Compiles an expression and checks it against the canonical model for its use.
fn compile_checked(source: &str, vars: &Vars, use_: Use) -> Result<Expr, String> {
    let expr = Expr::compile(source).map_err(|m| format!("invalid CEL expression: {m}"))?;
    let problems = types::check(&expr, vars, use_);
    if problems.is_empty() {
        Ok(expr)
    } else {
        Err(format!("`{source}`: {}", problems.join("; ")))
    }
}

/// A code or value the template hands the ERP: printable, not empty, not too long.
fn check_value(v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = v.chars().find(|c| c.is_control() || eval::invisible(*c)) {
        return Err(format!(
            "contains the character {c:?}; codes are printable text"
        ));
    }
    if v.trim() != v {
        return Err("starts or ends with spaces".into());
    }
    let n = v.chars().count();
    if n > MAX_VALUE_CHARS {
        return Err(format!("{n} characters; at most {MAX_VALUE_CHARS}"));
    }
    Ok(())
}

/// One structural problem: its key path, what is wrong, and the keys to leave
/// out so that the rest of the template can still be read and checked.
struct Structural {
    path: String,
    message: String,
    prune: Vec<String>,
}

/// Every problem serde finds in the merged template: each section read on its
/// own, and within a section each key on its own (so three wrong keys are three
/// problems), with what to leave out to read the rest.
fn section_errors(merged: &toml::Table) -> Vec<Structural> {
    fn message<E: std::fmt::Display>(e: &E) -> String {
        // toml appends where in the value it was; the path already says.
        let m = e.to_string();
        m.split("\nin `")
            .next()
            .unwrap_or(&m)
            .trim_end()
            .to_string()
    }
    /// A section (or one entry of a section) read as `T`; on failure each of
    /// its keys is read on its own over `base` (the least a `T` needs).
    fn read<T: serde::de::DeserializeOwned>(
        at: &[String],
        v: &toml::Value,
        base: &[(&str, toml::Value)],
        out: &mut Vec<Structural>,
    ) {
        let Err(e) = serde_path_to_error::deserialize::<_, T>(v.clone()) else {
            return;
        };
        let path = at
            .iter()
            .map(|p| key_segment(p))
            .collect::<Vec<_>>()
            .join(".");
        let before = out.len();
        if let Some(t) = v.as_table() {
            for (k, item) in t {
                let mut one: toml::Table = base
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect();
                one.insert(k.clone(), item.clone());
                if let Err(e) = serde_path_to_error::deserialize::<_, T>(toml::Value::Table(one)) {
                    let inner = e.path().to_string();
                    let mut prune = at.to_vec();
                    prune.push(k.clone());
                    out.push(Structural {
                        path: if inner == "." {
                            format!("{path}.{}", key_segment(k))
                        } else {
                            format!("{path}.{inner}")
                        },
                        message: message(e.inner()),
                        prune,
                    });
                }
            }
        }
        if out.len() == before {
            // Not one key's fault (a required key is missing): the whole entry.
            let inner = e.path().to_string();
            out.push(Structural {
                path: if inner == "." {
                    path
                } else {
                    format!("{path}.{inner}")
                },
                message: message(e.inner()),
                prune: at.to_vec(),
            });
        }
    }
    fn each<T: serde::de::DeserializeOwned>(
        section: &str,
        v: &toml::Value,
        base: &[(&str, toml::Value)],
        out: &mut Vec<Structural>,
    ) {
        match v.as_table() {
            Some(t) => {
                for (k, item) in t {
                    read::<T>(&[section.to_string(), k.clone()], item, base, out);
                }
            }
            None => out.push(Structural {
                path: section.to_string(),
                message: "must be a table".into(),
                prune: vec![section.to_string()],
            }),
        }
    }
    let text = |s: &str| toml::Value::String(s.into());
    let mut out = Vec::new();
    if !merged.contains_key("template") {
        out.push(Structural {
            path: "template".into(),
            message: "missing: every template starts with a [template] table".into(),
            prune: Vec::new(),
        });
    }
    for (key, v) in merged {
        let at = [key.clone()];
        match key.as_str() {
            "template" => read::<Header>(
                &at,
                v,
                &[("name", text("x")), ("version", text("x")), ("psa", text("x")), ("erp", text("x"))],
                &mut out,
            ),
            "defaults" => read::<Defaults>(&at, v, &[], &mut out),
            "domains" => each::<DomainRule>(key, v, &[("direction", text("none"))], &mut out),
            "value_maps" => each::<BTreeMap<String, String>>(key, v, &[], &mut out),
            "dimensions" => each::<DimensionRule>(key, v, &[], &mut out),
            "tax" => read::<TaxRule>(&at, v, &[], &mut out),
            "periods" => read::<PeriodRule>(&at, v, &[], &mut out),
            "bounds" => read::<Bounds>(&at, v, &[], &mut out),
            other => out.push(Structural {
                path: key_segment(other),
                message: "unknown section; expected template, defaults, domains, value_maps, dimensions, tax, periods or bounds".into(),
                prune: vec![other.to_string()],
            }),
        }
    }
    out
}

/// `table` without the key at `path` (a list of keys from the top).
fn prune(table: &mut toml::Table, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            table.remove(last);
        }
        [first, rest @ ..] => {
            if let Some(toml::Value::Table(t)) = table.get_mut(first) {
                prune(t, rest);
            }
        }
    }
}

fn summarisable(domain: Domain) -> bool {
    matches!(
        domain,
        Domain::TimeEntries | Domain::Expenses | Domain::BillingEvents
    )
}

/// Who owns a domain's record-level exceptions unless the template says otherwise.
pub fn default_owner(domain: Domain) -> Owner {
    match domain {
        Domain::Invoices
        | Domain::CreditMemos
        | Domain::Payments
        | Domain::TaxCodes
        | Domain::RevenueSchedules
        | Domain::PurchaseCommitments
        | Domain::Currencies
        | Domain::Dimensions => Owner::Finance,
        _ => Owner::ProjectOperations,
    }
}

impl Template {
    /// The compiled rule for a domain, if the template mentions it.
    pub fn rule(&self, domain: Domain) -> Option<&CompiledRule> {
        self.rules.get(&domain)
    }

    /// The direction of a domain; domains the template does not mention are not synced.
    pub fn direction(&self, domain: Domain) -> Direction {
        self.rules
            .get(&domain)
            .map(|r| r.spec.direction)
            .unwrap_or(Direction::None)
    }

    pub fn value_map(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.spec.value_maps.get(name)
    }
}

fn parse_table(src: &TemplateSource) -> Result<toml::Table, TemplateErrors> {
    src.text.parse::<toml::Table>().map_err(|e| {
        let line = e.span().map(|s| {
            src.text[..s.start.min(src.text.len())]
                .lines()
                .count()
                .max(1)
        });
        TemplateErrors(vec![TemplateError {
            file: src.name.clone(),
            path: String::new(),
            line,
            message: e.message().to_string(),
        }])
    })
}

/// Takes the override's `[template]` identity out before merging (so the base's
/// name and version stay), and returns `name@version` for the template version.
fn overlay_header(src: &TemplateSource, table: &mut toml::Table) -> Result<String, TemplateErrors> {
    let fail = |path: &str, message: &str| {
        TemplateErrors(vec![TemplateError {
            file: src.name.clone(),
            path: path.to_string(),
            line: None,
            message: message.to_string(),
        }])
    };
    let Some(toml::Value::Table(header)) = table.get_mut("template") else {
        return Err(fail(
            "template",
            "an override needs a [template] table with at least `version`",
        ));
    };
    let version = match header.remove("version") {
        Some(toml::Value::String(v)) => v,
        Some(_) => return Err(fail("template.version", "must be a string")),
        None => {
            return Err(fail(
                "template.version",
                "an override must carry its own version",
            ));
        }
    };
    let name = match header.remove("name") {
        Some(toml::Value::String(n)) => n,
        Some(_) => return Err(fail("template.name", "must be a string")),
        None => header
            .get("customer")
            .and_then(|v| v.as_str())
            .unwrap_or("override")
            .to_string(),
    };
    for key in ["psa", "erp"] {
        if header.contains_key(key) {
            return Err(fail(
                &format!("template.{key}"),
                "an override cannot change the connectors of its base template",
            ));
        }
    }
    Ok(format!("{name}@{version}"))
}

fn base_header_version(table: &toml::Table) -> String {
    table
        .get("template")
        .and_then(|t| t.get("version"))
        .and_then(|v| v.as_str())
        .unwrap_or("?")
        .to_string()
}

/// Deep-merges `overlay` into `base`: tables merge, everything else is replaced.
fn merge(base: &mut toml::Table, overlay: &toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Whether a dotted path (as serde_path_to_error prints it) exists in a table.
fn has_path(table: &toml::Table, path: &str) -> bool {
    let mut current = table;
    for (i, part) in path_segments(path).iter().enumerate() {
        let found = current.get(part.as_str()).or_else(|| {
            // A quoted segment names the key it quotes.
            current
                .iter()
                .find(|(k, _)| format!("{k:?}") == *part)
                .map(|(_, v)| v)
        });
        match found {
            Some(toml::Value::Table(t)) => current = t,
            Some(_) => return true,
            None => return i > 0 && part.is_empty(),
        }
    }
    true
}

/// A key path's segments: split at `.` outside quotes, without `[n]` indices.
fn path_segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in path.chars() {
        if quoted {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                cur.push(c);
            }
            '.' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|p| match p.find('[') {
            Some(i) if !p.starts_with('"') => p[..i].to_string(),
            _ => p,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[template]
name = "cw-xero"
version = "1.0.0"
psa = "connectwise"
erp = "xero"

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
        assert!(t.version.starts_with("cw-xero@1.0.0#"), "{}", t.version);
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
            t.version.starts_with("cw-xero@1.0.0+acme@3#"),
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
        let errs =
            Template::load(&src("base.toml", BASE), Some(&src("acme.toml", ov))).unwrap_err();
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
        let ov = "[template]\nversion = \"1\"\nerp = \"quickbooks\"\n";
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
}
