//! The reconciliation report store's contract (see `stores`).

use super::*;
use chrono::NaiveDate;
use ferry_core::usecases::reconcile::{Attribution, Key, Report, Row, Totals};

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).expect("date")
}

fn totals(hours: i64) -> Totals {
    Totals {
        hours: rust_decimal::Decimal::new(hours, 1),
        billable: rust_decimal::Decimal::new(hours * 1_250, 2),
        ..Totals::default()
    }
}

/// A report of `rows` rows for `[from, to]`, run at `at`.
pub fn sample_report(
    t: &str,
    from: NaiveDate,
    to: NaiveDate,
    rows: usize,
    at: DateTime<Utc>,
) -> Report {
    let rows = (0..rows)
        .map(|i| Row {
            key: Key {
                project: format!("connectwise:{i} {}", "a long project reference ".repeat(4)),
                period: from.format("%Y-%m").to_string(),
                currency: if i % 2 == 0 { "EUR" } else { "USD" }.into(),
            },
            psa: totals(i as i64 + 10),
            erp: totals(i as i64),
            held: totals(10),
            in_flight: Totals::default(),
            held_by: vec![Attribution {
                by: format!("ex-{i:020}"),
                totals: totals(10),
            }],
            in_flight_by: Vec::new(),
            mismatches: Vec::new(),
            erp_tax_unchecked: rust_decimal::Decimal::ZERO,
            documents: Vec::new(),
        })
        .collect();
    Report {
        tenant: tenant(t),
        from,
        to,
        generated_at: at,
        template_version: "t@1".into(),
        rows,
        missing: Vec::new(),
        unaccounted: vec!["INV-9".into()],
        payments_written_back: 2,
        records_compared: 40,
        clean: false,
    }
}

/// Reports: kept per period, the latest run wins, listed latest period
/// first, exact on the way back (however large), and per tenant.
pub async fn reports(s: Arc<dyn Reports>) {
    let t = tenant("contract-a");
    let t0 = Utc
        .with_ymd_and_hms(2026, 3, 2, 7, 0, 0)
        .single()
        .expect("t0");
    assert_eq!(s.get(&t, day(1, 1), day(1, 31)).await.expect("get"), None);
    assert!(s.list(&t, 10).await.expect("list").is_empty());

    let jan = sample_report("contract-a", day(1, 1), day(1, 31), 3, t0);
    let feb = sample_report("contract-a", day(2, 1), day(2, 28), 2, t0);
    s.put(&jan).await.expect("put");
    s.put(&feb).await.expect("put");
    assert_eq!(
        s.get(&t, day(1, 1), day(1, 31)).await.expect("get"),
        Some(jan.clone())
    );
    let listed = s.list(&t, 10).await.expect("list");
    assert_eq!(
        listed.iter().map(|r| r.from).collect::<Vec<_>>(),
        vec![day(2, 1), day(1, 1)],
        "the latest period first"
    );
    assert_eq!(listed[1], ReportSummary::of(&jan));
    assert_eq!(listed[1].unexplained, 1);
    assert_eq!(
        s.list(&t, 1).await.expect("list").len(),
        1,
        "the limit holds"
    );

    // A later run of January replaces it; an older one arriving late does not.
    let mut rerun = sample_report("contract-a", day(1, 1), day(1, 31), 1, t0 + secs(3_600));
    rerun.unaccounted.clear();
    rerun.clean = true;
    s.put(&rerun).await.expect("put");
    s.put(&jan).await.expect("put late");
    assert_eq!(
        s.get(&t, day(1, 1), day(1, 31)).await.expect("get"),
        Some(rerun.clone())
    );
    assert!(s.list(&t, 10).await.expect("list")[1].clean);

    // A large firm's report (about 1.5 MB of JSON) comes back exactly.
    let big = sample_report("contract-a", day(3, 1), day(3, 31), 4_000, t0);
    s.put(&big).await.expect("put big");
    assert_eq!(
        s.get(&t, day(3, 1), day(3, 31)).await.expect("get big"),
        Some(big)
    );

    assert!(
        s.get(&tenant("contract-b"), day(1, 1), day(1, 31))
            .await
            .expect("get")
            .is_none(),
        "another tenant's reports are its own"
    );
    assert!(
        s.list(&tenant("contract-b"), 10)
            .await
            .expect("list")
            .is_empty()
    );
}
