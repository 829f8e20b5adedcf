//! What the demo must find, and what it found that nothing explains.

use ferry_core::ports::ExceptionRecord;
use ferry_core::report::RunSummary;
use ferry_core::usecases::reconcile;

use super::stage::Pair;

/// An exception the run must raise: record key, reason, what it is.
pub type Expectation = (String, &'static str, String);

/// One exception per seeded bad record the PSA holds (but the one fixed live,
/// and those only an ERP rule this ERP does not enforce makes bad), and the
/// edit finance's approval refused.
pub fn expected(
    pair: &Pair,
    fixed: Option<&str>,
    refused_edit: Option<String>,
) -> Vec<Expectation> {
    pair.psa
        .bad()
        .into_iter()
        .filter(|b| Some(b.id.as_str()) != fixed)
        .filter(|b| b.erp_rule.is_none_or(|r| pair.erp.enforces(r)))
        .map(|b| (b.key, b.reason, b.what))
        .chain(refused_edit.map(|doc| {
            (
                doc,
                "erp.validation",
                format!(
                    "an edit to a summary invoice finance approved in {}",
                    pair.erp.connector()
                ),
            )
        }))
        .collect()
}

/// Everything the run left unexplained: inputs in no final state, differences
/// reconciliation could not attribute, expected exceptions missing or of
/// another reason, and exceptions nobody expected.
pub fn unexplained(
    summary: &RunSummary,
    reconciliation: &reconcile::Report,
    exceptions: &[ExceptionRecord],
    expected: &[Expectation],
) -> Vec<String> {
    let mut out = Vec::new();
    let total = summary.total();
    if total.in_flight > 0 {
        out.push(format!(
            "{} inputs never reached a final state",
            total.in_flight
        ));
    }
    for m in &reconciliation.missing {
        out.push(format!("reconciliation: {m}"));
    }
    for u in &reconciliation.unaccounted {
        out.push(format!("reconciliation: {u}"));
    }
    for r in &reconciliation.rows {
        for m in &r.mismatches {
            out.push(format!(
                "reconciliation: {} {} {} {}: PSA {} vs ERP {} ({} unexplained)",
                r.key.project, r.key.period, r.key.currency, m.measure, m.psa, m.erp, m.unexplained
            ));
        }
    }
    for (key, reason, what) in expected {
        match exceptions.iter().find(|e| &e.source_key == key) {
            Some(e) if e.reason == *reason => {}
            Some(e) => out.push(format!(
                "{what}: expected {reason} but got {} ({})",
                e.reason, e.message
            )),
            None => out.push(format!("{what}: no exception was raised")),
        }
    }
    for e in exceptions {
        if !expected.iter().any(|(key, _, _)| key == &e.source_key) {
            out.push(format!(
                "unexpected exception {} on {}: {}",
                e.reason, e.source_key, e.message
            ));
        }
    }
    out
}
