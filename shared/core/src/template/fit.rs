//! Whether a template fits the ERP it is wired to: every document kind its
//! rules would post is one the ERP connector writes, and Ferry's references
//! fit the ERP's reference field. Checked when a tenant is wired, so a
//! mismatch is refused at load, never discovered at post time.

use ferry_canon::Domain;

use crate::mapping::References;
use crate::ports::ErpCapabilities;
use crate::posting::DocKind;
use crate::template::{Direction, Template};

/// The kinds of document a domain's records become, under this template.
fn kinds_of(template: &Template, domain: Domain) -> Vec<DocKind> {
    let Some(rule) = template.rule(domain) else {
        return Vec::new();
    };
    if rule.spec.direction != Direction::PsaToErp {
        return Vec::new();
    }
    let mut kinds = match domain {
        Domain::Customers => vec![DocKind::Contact],
        Domain::Projects => vec![DocKind::Project],
        Domain::Invoices => vec![DocKind::Invoice],
        Domain::CreditMemos => vec![DocKind::CreditNote],
        Domain::TimeEntries | Domain::Expenses | Domain::BillingEvents => vec![DocKind::Invoice],
        _ => Vec::new(),
    };
    if rule.spec.timesheets {
        kinds.push(DocKind::Timesheet);
    }
    kinds
}

impl Template {
    /// Ferry's reference rule for an ERP with these capabilities, if the
    /// template fits them; otherwise every reason it does not.
    pub fn fit(&self, erp: &ErpCapabilities) -> Result<References, Vec<String>> {
        let mut errors = Vec::new();
        for domain in Domain::ALL {
            for kind in kinds_of(self, domain) {
                if !erp.posts(kind) {
                    errors.push(format!(
                        "domains.{domain}: this ERP connector does not write {} documents \
                         (it writes: {})",
                        kind.as_str(),
                        erp.kinds
                            .iter()
                            .map(DocKind::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        let refs = References::new(&self.spec.defaults.reference_prefix, erp.reference_len)
            .map_err(|e| errors.push(e))
            .ok();
        match refs {
            Some(r) if errors.is_empty() => Ok(r),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::TemplateSource;

    fn template(extra: &str) -> Template {
        let text = format!(
            r#"
[template]
name = "t"
version = "1.0.0"
psa = "p"
erp = "e"

[defaults]
currency = "USD"
reference_prefix = "FERRY"

[domains.customers]
direction = "psa_to_erp"

[domains.projects]
direction = "psa_to_erp"
{extra}
"#
        );
        Template::load(&TemplateSource::new("t.toml", text), None).expect("loads")
    }

    fn caps(kinds: &'static [DocKind], reference_len: usize) -> ErpCapabilities {
        ErpCapabilities {
            kinds,
            reference_len,
            max_batch: 1,
            unit_price_decimals: 2,
        }
    }

    #[test]
    fn a_template_posting_what_the_erp_does_not_write_is_refused_with_each_reason() {
        let t = template(
            "[domains.time_entries]\ndirection = \"psa_to_erp\"\ntimesheets = true\naccount = { value = \"200\" }\n",
        );
        let doc_kinds: std::collections::BTreeSet<DocKind> = Domain::ALL
            .into_iter()
            .flat_map(|d| kinds_of(&t, d))
            .collect();
        assert_eq!(
            doc_kinds.into_iter().collect::<Vec<_>>(),
            vec![
                DocKind::Contact,
                DocKind::Invoice,
                DocKind::Project,
                DocKind::Timesheet
            ]
        );
        let errs = t
            .fit(&caps(
                &[DocKind::Contact, DocKind::Invoice, DocKind::CreditNote],
                50,
            ))
            .expect_err("projects and timesheets are not written");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("domains.projects:"), "{errs:?}");
        assert!(errs[1].contains("timesheet"), "{errs:?}");
        assert!(
            t.fit(&caps(
                &[
                    DocKind::Contact,
                    DocKind::Invoice,
                    DocKind::Project,
                    DocKind::Timesheet
                ],
                50
            ))
            .is_ok()
        );
    }

    #[test]
    fn references_fit_the_erp_field_at_every_length_around_the_limit() {
        let t = template("");
        let all = &[DocKind::Contact, DocKind::Project];
        // "FERRY" + "-" + 12 hex = 18: the shortest field that can hold every reference.
        assert!(t.fit(&caps(all, 17)).is_err());
        for len in [18, 20, 30, 31] {
            let refs = t.fit(&caps(all, len)).expect("fits");
            for id in [
                "1",
                "123456789012345678901",
                "a-much-longer-id-than-any-field-holds",
            ] {
                let r = refs.make("C", id);
                assert!(r.len() <= len, "{r} in {len}");
                assert!(r.starts_with("FERRY-"), "{r}");
            }
        }
        let refs = t.fit(&caps(all, 30)).expect("fits exactly");
        for id in [
            "1",
            "123456789012345678901",
            "a-much-longer-id-than-any-field-holds",
        ] {
            let r = refs.make("C", id);
            assert!(r.len() <= 30, "{r}");
            assert!(r.starts_with("FERRY-"), "{r}");
        }
        // Short ids stay readable, long ones are hashed, and the same id always
        // gives the same reference.
        assert_eq!(refs.make("C", "19"), "FERRY-C-19");
        assert_eq!(
            refs.make("C", &"9".repeat(40)),
            refs.make("C", &"9".repeat(40))
        );
        assert_ne!(
            refs.make("C", &"9".repeat(40)),
            refs.make("C", &"8".repeat(40))
        );
        let wide = t.fit(&caps(all, 50)).expect("fits");
        let at = "x".repeat(50 - "FERRY-C-".len());
        assert_eq!(wide.make("C", &at), format!("FERRY-C-{at}"));
        assert_ne!(wide.make("C", &format!("{at}x")), format!("FERRY-C-{at}x"));
    }
}
