//! Human-readable output: the run summary, exceptions, the reconciliation report.

use std::fmt::Write;

use ferry_core::ports::ExceptionRecord;
use ferry_core::report::RunSummary;
use ferry_core::usecases::reconcile::Report;

use crate::demo::{DemoOutcome, summary_domains};

fn rule(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{title}\n{}", "─".repeat(title.chars().count()));
}

/// The per-domain table, skip reasons and exceptions by reason and owner.
pub fn summary(out: &mut String, s: &RunSummary) {
    rule(out, "Records by domain");
    let _ = writeln!(
        out,
        "{:<14} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "domain", "seen", "posted", "skipped", "exceptions", "in flight"
    );
    let mut domains = summary_domains();
    for d in s.domains.keys() {
        if !domains.contains(d) {
            domains.push(*d);
        }
    }
    for d in domains {
        let Some(x) = s.domains.get(&d) else { continue };
        let _ = writeln!(
            out,
            "{:<14} {:>8} {:>8} {:>8} {:>10} {:>9}",
            d.as_str(),
            x.seen,
            x.posted,
            x.skipped,
            x.exceptions,
            x.in_flight
        );
    }
    let t = s.total();
    let _ = writeln!(
        out,
        "{:<14} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "total", t.seen, t.posted, t.skipped, t.exceptions, t.in_flight
    );

    rule(out, "Skipped, with reasons");
    for (d, x) in &s.domains {
        for (reason, n) in &x.skipped_by_reason {
            let _ = writeln!(out, "{:>8}  {:<14} {reason}", n, d.as_str());
        }
    }
    rule(out, "Exceptions, by reason (owner)");
    let mut any = false;
    for (d, x) in &s.domains {
        for (reason, n) in &x.exceptions_by_reason {
            any = true;
            let _ = writeln!(out, "{:>8}  {:<14} {reason}", n, d.as_str());
        }
    }
    if !any {
        let _ = writeln!(out, "   none");
    }
    rule(out, "ERP API and latency");
    let _ = writeln!(
        out,
        "ERP calls: {} in the last day of a {} daily budget ({}%), {} in the last minute",
        s.erp_calls.last_day,
        s.erp_daily_limit,
        percent(s.erp_calls.last_day, s.erp_daily_limit),
        s.erp_calls.last_minute
    );
    let _ = writeln!(
        out,
        "Change to ERP latency (from when Ferry heard of it, by webhook or poll) over {} live records: p50 {} s, p95 {} s, max {} s",
        s.latency.samples,
        ms(s.latency.p50_ms),
        ms(s.latency.p95_ms),
        ms(s.latency.max_ms)
    );
}

/// A share as `12.3` (one decimal, integer arithmetic).
fn percent(n: u32, of: u32) -> String {
    if of == 0 {
        return "0.0".into();
    }
    let tenths = u64::from(n) * 1000 / u64::from(of);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Milliseconds as seconds with one decimal.
fn ms(v: u64) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 100)
}

/// Open exceptions, one line each.
pub fn exceptions(out: &mut String, list: &[ExceptionRecord]) {
    for e in list {
        let held = match (&e.amount, &e.hours) {
            (Some(m), Some(h)) => format!(" — holds {m} ({h} h)"),
            (Some(m), None) => format!(" — holds {m}"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{}  {:<9} {:<18} {:<32} {}{held}\n    {}",
            e.id,
            e.status.as_str(),
            e.owner.as_str(),
            e.reason,
            e.source_key,
            e.message
        );
    }
}

/// The reconciliation report: totals, then every difference.
pub fn reconciliation(out: &mut String, r: &Report) {
    rule(
        out,
        &format!(
            "Reconciliation {} to {} ({} records compared)",
            r.from, r.to, r.records_compared
        ),
    );
    let psa = r.totals_by_currency(|x| &x.psa);
    let erp = r.totals_by_currency(|x| &x.erp);
    let held = r.totals_by_currency(|x| &x.held);
    let fly = r.totals_by_currency(|x| &x.in_flight);
    // One table per currency: a sum across currencies means nothing.
    for (currency, p) in &psa {
        let (e, h, f) = (&erp[currency], &held[currency], &fly[currency]);
        let _ = writeln!(
            out,
            "{:<10} {:>14} {:>14} {:>14} {:>14}",
            format!("{currency}"),
            "PSA",
            "ERP",
            "held back",
            "in flight"
        );
        let timesheets = [p, e, h, f].iter().any(|t| !t.timesheet_hours.is_zero());
        for (name, a, b, c, d) in [
            ("hours", p.hours, e.hours, h.hours, f.hours),
            ("billable", p.billable, e.billable, h.billable, f.billable),
            ("invoiced", p.invoiced, e.invoiced, h.invoiced, f.invoiced),
            ("tax", p.tax, e.tax, h.tax, f.tax),
            ("paid", p.paid, e.paid, h.paid, f.paid),
            (
                "timesheets",
                p.timesheet_hours,
                e.timesheet_hours,
                h.timesheet_hours,
                f.timesheet_hours,
            ),
        ]
        .into_iter()
        .filter(|(name, ..)| *name != "timesheets" || timesheets)
        {
            let _ = writeln!(
                out,
                "  {name:<10} {:>12} {:>14} {:>14} {:>14}",
                a.round_dp(2),
                b.round_dp(2),
                c.round_dp(2),
                d.round_dp(2)
            );
        }
    }
    let mut unchecked: std::collections::BTreeMap<&str, rust_decimal::Decimal> = Default::default();
    for row in &r.rows {
        *unchecked.entry(row.key.currency.as_str()).or_default() += row.erp_tax_unchecked;
    }
    for (currency, tax) in unchecked.iter().filter(|(_, t)| !t.is_zero()) {
        let _ = writeln!(
            out,
            "  tax the ERP added by its own rules (shown, not checked): {currency} {}",
            tax.round_dp(2)
        );
    }
    let _ = writeln!(
        out,
        "(every comparison is per project, period and currency; these are their sums per currency)"
    );
    let _ = writeln!(
        out,
        "{} keys (project × period × currency); PSA invoices whose paid amount reconciliation had to correct: {}",
        r.rows.len(),
        r.payments_written_back
    );
    let docs: Vec<_> = r.rows.iter().flat_map(|x| &x.documents).collect();
    if !docs.is_empty() {
        let mut by_status: std::collections::BTreeMap<&str, usize> = Default::default();
        // Per currency: paid, and what customers still owe (credit notes take away).
        let mut money: std::collections::BTreeMap<
            &str,
            (rust_decimal::Decimal, rust_decimal::Decimal),
        > = Default::default();
        for d in &docs {
            *by_status.entry(d.state.as_str()).or_default() += 1;
            let m = money.entry(d.currency.as_str()).or_default();
            m.0 += d.sign() * d.amount_paid;
            m.1 += d.sign() * d.amount_due;
        }
        let statuses: Vec<String> = by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let amounts: Vec<String> = money
            .iter()
            .map(|(c, (paid, due))| {
                format!("{c}: paid {}, due {}", paid.round_dp(2), due.round_dp(2))
            })
            .collect();
        let _ = writeln!(
            out,
            "ERP documents Ferry wrote: {} ({}); {}",
            docs.len(),
            statuses.join(", "),
            amounts.join("; ")
        );
        if docs.len() <= 10 {
            for d in &docs {
                let _ = writeln!(
                    out,
                    "  {} {} {} {}: total {} {}, paid {}, due {}",
                    d.doc_key,
                    d.kind,
                    d.number.as_deref().unwrap_or("(no number)"),
                    d.state,
                    d.currency,
                    d.total.round_dp(2),
                    d.amount_paid.round_dp(2),
                    d.amount_due.round_dp(2)
                );
            }
        }
    }
    // What each exception holds back, in hours and money (billable and invoiced).
    let amounts = |t: &ferry_core::usecases::reconcile::Totals| {
        format!("{} h / {}", t.hours, (t.billable + t.invoiced).round_dp(2))
    };
    for row in r.rows.iter().filter(|x| !x.held_by.is_empty()) {
        let by: Vec<String> = row
            .held_by
            .iter()
            .map(|a| format!("{} ({})", a.by, amounts(&a.totals)))
            .collect();
        let _ = writeln!(
            out,
            "  explained: {} {} {}: {} held back by {}",
            row.key.project,
            row.key.period,
            row.key.currency,
            amounts(&row.held),
            by.join(", ")
        );
    }
    let mut bad = 0;
    for row in &r.rows {
        for m in &row.mismatches {
            bad += 1;
            let _ = writeln!(
                out,
                "  UNEXPLAINED: {} {} {} {}: PSA {} ERP {} held {} in flight {} ({} unexplained)",
                row.key.project,
                row.key.period,
                row.key.currency,
                m.measure,
                m.psa,
                m.erp,
                m.held,
                m.in_flight,
                m.unexplained
            );
        }
        if !row.mismatches.is_empty() && !row.in_flight_by.is_empty() {
            let fly: Vec<String> = row
                .in_flight_by
                .iter()
                .map(|a| format!("{} ({})", a.by, amounts(&a.totals)))
                .collect();
            let _ = writeln!(out, "    in flight: {}", fly.join(", "));
        }
    }
    for m in r.missing.iter().chain(&r.unaccounted) {
        bad += 1;
        let _ = writeln!(out, "  UNEXPLAINED: {m}");
    }
    let _ = writeln!(
        out,
        "{}",
        if bad == 0 {
            "Result: clean — every difference is held by an exception with a reason and an owner."
        } else {
            "Result: MISMATCH"
        }
    );
}

/// The whole demo report.
pub fn demo(o: &DemoOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Ferry demo: {} → {} for tenant {} ({} s)",
        o.psa, o.erp, o.tenant, o.elapsed_seconds
    );
    let phases: Vec<String> = o.phases.iter().map(|(n, s)| format!("{n} {s} s")).collect();
    let _ = writeln!(out, "phases: {}", phases.join(" · "));
    summary(&mut out, &o.summary);
    rule(
        &mut out,
        &format!(
            "Open exceptions ({}; {} seeded bad records expected)",
            o.exceptions.len(),
            o.expected_bad_records
        ),
    );
    exceptions(&mut out, &o.exceptions);
    reconciliation(&mut out, &o.reconciliation);
    rule(&mut out, "Verdict");
    if o.unexplained.is_empty() {
        let _ = writeln!(
            out,
            "Everything is explained: every input is posted, skipped with a reason, or an exception with a reason and an owner."
        );
    } else {
        let _ = writeln!(out, "{} things are unexplained:", o.unexplained.len());
        for u in &o.unexplained {
            let _ = writeln!(out, "  - {u}");
        }
    }
    let _ = writeln!(
        out,
        "\nState kept in {}. Try: ferry exceptions list --db {} --tenant {}",
        o.db.display(),
        o.db.display(),
        o.tenant
    );
    if !o.console_users.is_empty() {
        let _ = writeln!(
            out,
            "The partner console over it: ferry console --db {} (http://127.0.0.1:8180), signing in as {} with password {}",
            o.db.display(),
            o.console_users
                .iter()
                .map(|u| format!("{} ({})", u.name, u.role.as_str().replace('_', " ")))
                .collect::<Vec<_>>()
                .join(", "),
            crate::demo::console::DEMO_PASSWORD
        );
    }
    out
}

/// The `ferry run-real` report.
pub fn real(o: &crate::real::RealOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Ferry against real software: Redmine at {} (PSA) into Tryton at {} (ERP)\n{} time entries entered in Redmine through its REST API; October 2026 billed.",
        o.redmine_url, o.tryton_url, o.seeded_entries
    );
    summary(&mut out, &o.summary);
    rule(&mut out, "Projects and timesheets in Tryton");
    let _ = writeln!(
        out,
        "  {} projects; {} timesheet lines, {} h",
        o.tryton_projects, o.timesheet_lines, o.timesheet_hours
    );
    rule(&mut out, "Invoices in Tryton");
    for (reference, number, state, total) in &o.tryton_invoices {
        let _ = writeln!(
            out,
            "  {reference:<40} {:<6} {state:<8} {:>12}",
            number.as_deref().unwrap_or("-"),
            total.round_dp(2)
        );
    }
    rule(&mut out, "Reconciliation, October 2026");
    reconciliation(&mut out, &o.reconciliation);
    rule(&mut out, "Time");
    for (name, ms) in &o.phases {
        let seconds =
            rust_decimal::Decimal::new(i64::try_from(*ms).unwrap_or(i64::MAX), 3).round_dp(1);
        let _ = writeln!(out, "  {name:<24} {seconds:>8} s");
    }
    if o.unexplained.is_empty() {
        let _ = writeln!(
            out,
            "\nEverything is explained: every input is posted, skipped with a reason, or an exception with an owner."
        );
    } else {
        let _ = writeln!(out, "\nUNEXPLAINED:");
        for u in &o.unexplained {
            let _ = writeln!(out, "  {u}");
        }
    }
    out
}
