//! Canonical records → posting documents, as the tenant's template says.
//! Pure functions: no I/O. Every refusal is a [`Violation`] naming the field,
//! the rule and who must fix it.

mod documents;
mod lines;
mod references;
mod resolve;
mod summaries;

pub use documents::*;
pub use lines::*;
pub use references::*;
pub use resolve::*;
pub use summaries::*;

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use ferry_canon::{
    Account, ActiveStatus, ApprovalStatus, CanonicalRecord, Currency, DimensionValue, Dimensions,
    Domain, Invoice, InvoiceKind, InvoiceStatus, LineKind, Money, Project, SourceRef,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ReasonCode;
use crate::keys::{DocKey, RecordKey};
use crate::ports::Owner;
use crate::posting::{
    ContactDoc, DocBody, DocKind, DocStatus, InvoiceDoc, PostingDoc, PostingLine, ProjectDoc,
    TaskDoc, TimesheetDoc, Tracking,
};
use crate::template::{CompiledRule, CompiledSource, Scope, SummaryKey, Template};

/// Why a record cannot be posted as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: ReasonCode,
    pub message: String,
    pub field: Option<String>,
    pub rule: Option<String>,
    pub owner: Owner,
}

impl Violation {
    pub fn new(reason: ReasonCode, owner: Owner, message: impl Into<String>) -> Self {
        Violation {
            reason,
            message: message.into(),
            field: None,
            rule: None,
            owner,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }
}

/// Records a record is mapped together with.
#[derive(Debug, Clone, Default)]
pub struct Related {
    pub project: Option<Project>,
    pub account: Option<Account>,
}

impl Related {
    /// The expression scope for a record and its related records.
    pub fn scope(&self, record: &CanonicalRecord) -> Scope {
        let record_json = record_json(record);
        let project = self.project.as_ref().map(to_json);
        let account = self.account.as_ref().map(to_json);
        Scope::new(&record_json, project.as_ref(), account.as_ref())
    }
}

fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("canonical records serialise")
}

/// The record's own JSON (without the domain tag), as expressions see it.
pub fn record_json(record: &CanonicalRecord) -> serde_json::Value {
    let mut v = to_json(record);
    v.get_mut("record")
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null)
}

/// The document key of a customer.
pub fn customer_key(account: &SourceRef) -> DocKey {
    DocKey::record(&RecordKey::new(Domain::Customers, account))
}

/// Gives a record the firm's local accounting date: a time entry the PSA
/// stamped with an instant belongs to that instant's date in `tz`. Applied once,
/// where a PSA record becomes canonical, so every rule downstream (documents,
/// periods, the closed-period gate, reconciliation) reads the same date.
pub fn localise(record: &mut CanonicalRecord, tz: chrono_tz::Tz) {
    if let CanonicalRecord::TimeEntries(t) = record
        && let Some(at) = t.started_at
    {
        t.date = at.with_timezone(&tz).date_naive();
    }
}

/// The customer's ERP contact: its id and document key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRef {
    pub erp_id: String,
    pub key: DocKey,
}

/// Money and hours a record holds back (for exception reports).
pub fn at_stake(record: &CanonicalRecord) -> (Option<Money>, Option<Decimal>) {
    match record {
        CanonicalRecord::TimeEntries(t) => (
            t.bill_rate.and_then(|r| r.checked_mul(t.hours).ok()),
            Some(t.hours),
        ),
        CanonicalRecord::Expenses(e) => (Some(e.amount), None),
        CanonicalRecord::BillingEvents(b) => (Some(b.amount), None),
        CanonicalRecord::Invoices(i) | CanonicalRecord::CreditMemos(i) => (Some(i.total), None),
        _ => (None, None),
    }
}

/// The accounting date of a record, for the closed-period gate.
pub fn accounting_date(record: &CanonicalRecord) -> Option<NaiveDate> {
    match record {
        CanonicalRecord::TimeEntries(t) => Some(t.date),
        CanonicalRecord::Expenses(e) => Some(e.date),
        CanonicalRecord::BillingEvents(b) => Some(b.date),
        CanonicalRecord::Invoices(i) | CanonicalRecord::CreditMemos(i) => Some(i.issue_date),
        CanonicalRecord::Payments(p) => Some(p.date),
        _ => None,
    }
}

/// The customer a record bills, directly or through its project.
pub fn billed_account(record: &CanonicalRecord, related: &Related) -> Option<SourceRef> {
    let from_project = || related.project.as_ref().map(|p| p.account.clone());
    match record {
        CanonicalRecord::TimeEntries(t) => t.account.clone().or_else(from_project),
        CanonicalRecord::Expenses(e) => e.account.clone().or_else(from_project),
        CanonicalRecord::BillingEvents(_) => from_project(),
        CanonicalRecord::Invoices(i) | CanonicalRecord::CreditMemos(i) => Some(i.account.clone()),
        CanonicalRecord::Customers(a) => Some(a.meta.source.clone()),
        CanonicalRecord::Projects(p) => Some(p.account.clone()),
        _ => None,
    }
}

/// The project a record belongs to.
pub fn project_of(record: &CanonicalRecord) -> Option<&SourceRef> {
    match record {
        CanonicalRecord::TimeEntries(t) => t.project.as_ref(),
        CanonicalRecord::Expenses(e) => e.project.as_ref(),
        CanonicalRecord::BillingEvents(b) => Some(&b.project),
        CanonicalRecord::Invoices(i) | CanonicalRecord::CreditMemos(i) => i.project.as_ref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::TemplateSource;
    use serde_json::json;

    const TEMPLATE: &str = r#"
[template]
name = "t"
version = "1"
psa = "some_psa"
erp = "some_erp"
[domains.time_entries]
direction = "psa_to_erp"
item = { from = "record.role", map = "roles" }
[value_maps.roles]
"Consultant" = "CONS"
"#;

    fn time_entry(extra: serde_json::Value) -> CanonicalRecord {
        let mut record = json!({
            "meta": {
                "tenant": "t1",
                "source": {"system": "some_psa", "id": "7"},
                "source_version": {"updated_at": "2026-11-02T10:00:00Z"}
            },
            "resource": {"system": "some_psa", "id": "m1"},
            "date": "2026-11-02", "hours": "2", "billable": true, "approval": "approved",
            "bill_rate": {"amount": "150", "currency": "USD"},
        });
        for (k, v) in extra.as_object().expect("object") {
            record[k] = v.clone();
        }
        serde_json::from_value(json!({"domain": "time_entries", "record": record}))
            .expect("a canonical time entry")
    }

    fn line_of(record: &CanonicalRecord) -> Result<StagedLine, Violation> {
        let t = Template::load(&TemplateSource::new("t.toml", TEMPLATE), None).expect("loads");
        let rule = t.rule(Domain::TimeEntries).expect("rule");
        let related = Related::default();
        line(&t, rule, record, &related, &related.scope(record))
    }

    #[test]
    fn a_line_whose_item_source_gives_nothing_is_refused_not_posted_without_an_item() {
        let ok = line_of(&time_entry(json!({"role": "Consultant"}))).expect("maps");
        assert_eq!(ok.item_code.as_deref(), Some("CONS"));
        let v = line_of(&time_entry(json!({}))).expect_err("no role, no default");
        assert_eq!(v.reason, "validation.unmapped_value");
        assert_eq!(v.field.as_deref(), Some("record.role"));
        assert_eq!(v.rule.as_deref(), Some("domains.time_entries.item"));
    }

    #[test]
    fn expected_tax_follows_the_erps_rounding_and_names_an_unknown_type() {
        use crate::ports::{TaxRounding, TaxRules};
        let usd = Currency::parse("USD").unwrap();
        let mut rules = TaxRules {
            rates: [("OUTPUT".to_string(), "8.875".parse::<Decimal>().unwrap())].into(),
            rounding: TaxRounding::PerTaxType,
        };
        let out = || Some("OUTPUT".to_string());
        // 3 × 0.05 at 8.875%: 0.0133125 (→ 0.01) per tax type, 3 × 0.00 per line.
        let lines = vec![
            (out(), "0.05".parse().unwrap()),
            (out(), "0.05".parse().unwrap()),
            (out(), "0.05".parse().unwrap()),
        ];
        assert_eq!(
            expected_tax(&lines, &rules, usd),
            Ok("0.01".parse().unwrap())
        );
        rules.rounding = TaxRounding::PerLine;
        assert_eq!(expected_tax(&lines, &rules, usd), Ok(Decimal::ZERO));
        let one = vec![(out(), "1000".parse().unwrap())];
        assert_eq!(
            expected_tax(&one, &rules, usd),
            Ok("88.75".parse().unwrap())
        );
        let unknown = vec![(Some("GST".to_string()), Decimal::ONE)];
        assert!(
            expected_tax(&unknown, &rules, usd)
                .unwrap_err()
                .contains("GST")
        );
        assert!(expected_tax(&[(None, Decimal::ONE)], &rules, usd).is_err());
    }

    mod properties {
        use super::*;
        use ferry_canon::Rounding;
        use proptest::prelude::*;

        fn amount() -> impl Strategy<Value = Decimal> {
            (-1_000_000_000i64..1_000_000_000, 0u32..6).prop_map(|(m, s)| Decimal::new(m, s))
        }

        fn rule() -> impl Strategy<Value = Rounding> {
            prop_oneof![
                Just(Rounding::HalfAwayFromZero),
                Just(Rounding::HalfEven),
                Just(Rounding::Truncate)
            ]
        }

        fn staged(label: usize, hundredths: i64, rate: usize, tax: usize) -> StagedLine {
            let rates = ["150", "172.5", "12.3456"];
            StagedLine {
                source_key: RecordKey::of(
                    Domain::TimeEntries,
                    &ferry_canon::SystemId::parse("cw").unwrap(),
                    &format!("{label}-{hundredths}"),
                ),
                domain: Domain::TimeEntries,
                kind: LineKind::Time,
                label: ["Consultant", "Architect", "Analyst"][label].into(),
                description: "work".into(),
                quantity: Decimal::new(hundredths, 2),
                unit_amount: rates[rate].parse().unwrap(),
                currency: Currency::parse("USD").unwrap(),
                item_code: Some(format!("ITEM-{label}")),
                account_code: None,
                tax_type: Some(["OUTPUT", "EXEMPT"][tax].into()),
                tracking: Vec::new(),
                date: NaiveDate::from_ymd_opt(2026, 10, 5).unwrap(),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn rounding_moves_an_amount_by_less_than_one_unit_and_is_stable(
                x in amount(), dp in 0u32..5, r in rule()
            ) {
                let y = r.round(x, dp);
                let unit = Decimal::new(1, dp);
                prop_assert!((y - x).abs() < unit, "{x} -> {y}");
                if r != Rounding::Truncate {
                    prop_assert!((y - x).abs() * Decimal::TWO <= unit, "{x} -> {y}");
                }
                prop_assert_eq!(r.round(y, dp), y, "rounding twice changes nothing");
                prop_assert_eq!(r.round(-x, dp), -y, "every rule is symmetric about zero");
                prop_assert!(y.scale() <= dp);
            }

            #[test]
            fn summarising_is_order_free_exact_per_line_and_rounds_each_merged_line_once(
                lines in proptest::collection::vec((0usize..3, 1i64..2400, 0usize..3, 0usize..2), 0..40),
                r in rule(),
                seed in any::<u64>(),
            ) {
                let t = Template::load(&TemplateSource::new("t.toml", format!(
                    "{TEMPLATE}\n[defaults]\nrounding = {:?}\n",
                    match r { Rounding::HalfAwayFromZero => "half_away_from_zero", Rounding::HalfEven => "half_even", Rounding::Truncate => "truncate" }
                )), None).expect("loads");
                let usd = Currency::parse("USD").unwrap();
                let end = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
                let members: Vec<StagedLine> =
                    lines.iter().map(|(l, h, rt, tx)| staged(*l, *h, *rt, *tx)).collect();
                let (out, subtotal) = summarise_lines(&t, &members, usd, end);

                // The subtotal is its lines; each line is its merged quantity at its
                // unit price, rounded once by the template's rule.
                prop_assert_eq!(subtotal, out.iter().map(|l| l.line_amount).sum::<Decimal>());
                for l in &out {
                    prop_assert_eq!(l.line_amount, r.round(l.quantity * l.unit_amount, 2));
                }
                // Nothing lost or doubled: every input's hours are on exactly one line.
                prop_assert_eq!(
                    out.iter().map(|l| l.quantity).sum::<Decimal>(),
                    members.iter().map(|m| m.quantity).sum::<Decimal>()
                );
                let merged: std::collections::BTreeSet<_> = members
                    .iter()
                    .map(|m| (m.label.clone(), m.unit_amount.normalize(), m.tax_type.clone()))
                    .collect();
                prop_assert_eq!(out.len(), merged.len(), "one line per label, rate and tax");
                // Within one rounding step per line of the exact amount.
                let exact: Decimal = members.iter().map(|m| m.quantity * m.unit_amount).sum();
                prop_assert!((subtotal - exact).abs() <= Decimal::new(out.len() as i64, 2));
                // The order records arrive in changes nothing.
                let mut shuffled = members.clone();
                fastrand::Rng::with_seed(seed).shuffle(&mut shuffled);
                let again = summarise_lines(&t, &shuffled, usd, end);
                prop_assert_eq!(again, (out, subtotal));
            }

            #[test]
            fn tax_per_tax_type_is_the_rounded_tax_of_the_sum_and_per_line_the_sum_of_rounded(
                amounts in proptest::collection::vec((0usize..2, 0i64..10_000_000), 0..30)
            ) {
                use crate::ports::{TaxRounding, TaxRules};
                let usd = Currency::parse("USD").unwrap();
                let rates: BTreeMap<String, Decimal> = [
                    ("OUTPUT".to_string(), "8.875".parse().unwrap()),
                    ("EXEMPT".to_string(), Decimal::ZERO),
                ].into();
                let lines: Vec<(Option<String>, Decimal)> = amounts
                    .iter()
                    .map(|(t, a)| (Some(["OUTPUT", "EXEMPT"][*t].to_string()), Decimal::new(*a, 2)))
                    .collect();
                let round = |d: Decimal| d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
                let output: Decimal = lines.iter().filter(|l| l.0.as_deref() == Some("OUTPUT")).map(|l| l.1).sum();
                let per_type = TaxRules { rates: rates.clone(), rounding: TaxRounding::PerTaxType };
                prop_assert_eq!(
                    expected_tax(&lines, &per_type, usd),
                    Ok(round(output * rates["OUTPUT"] / Decimal::from(100)))
                );
                let per_line = TaxRules { rates: rates.clone(), rounding: TaxRounding::PerLine };
                let tax = expected_tax(&lines, &per_line, usd).expect("known types");
                let by_line: Decimal = lines
                    .iter()
                    .map(|(t, a)| round(*a * rates[t.as_deref().unwrap()] / Decimal::from(100)))
                    .sum();
                prop_assert_eq!(tax, by_line);
                // The two rules differ by at most half a cent per line.
                let whole = expected_tax(&lines, &per_type, usd).unwrap();
                prop_assert!((tax - whole).abs() <= Decimal::new(lines.len() as i64 + 1, 2));
            }
        }
    }
}
