//! What the firm's people do while Ferry runs: approve time, correct it, log
//! late entries, delete some, fix a bad one; finance approves an invoice in the
//! ERP; customers pay. Each is done through the simulators' stage, in any PSA
//! and ERP.

use chrono::Days;
use ferry_sim::stage::{Delivery, SimTime};
use rust_decimal::Decimal;

use super::{Run, bar};

/// Entries of the firm's month that are approved, billable and not seeded bad.
fn approved_in_month(run: &Run<'_>, time: &[SimTime]) -> Vec<SimTime> {
    let firm = &run.pair.firm;
    let bad: Vec<String> = run.pair.psa.bad().into_iter().map(|b| b.id).collect();
    time.iter()
        .filter(|t| t.approved && t.billable)
        .filter(|t| t.date >= firm.period_start && t.date <= firm.period_end)
        .filter(|t| !bad.contains(&t.id))
        .cloned()
        .collect()
}

/// Approvals (delivered twice), corrections (delivered out of order), late
/// entries, deletions and the fix of the 25-hour entry. Returns the id of the
/// entry fixed, whose exception must be gone.
pub(crate) async fn people_work(run: &Run<'_>, seed: u64) -> anyhow::Result<Option<String>> {
    let psa = &run.pair.psa;
    let firm = &run.pair.firm;
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    let time = psa.time();
    let pending: Vec<String> = time
        .iter()
        .filter(|t| !t.approved)
        .map(|t| t.id.clone())
        .take(20)
        .collect();
    let approved = approved_in_month(run, &time);
    let live = bar(run.progress, 60, "live: people at work");
    psa.add_late().await;
    psa.deliver(Delivery::Duplicated).await;
    for id in &pending {
        psa.approve_time(id).await;
        live.inc(1);
    }
    psa.deliver(Delivery::Reordered).await;
    if !approved.is_empty() {
        for _ in 0..10 {
            let t = &approved[rng.usize(0..approved.len())];
            let now = psa
                .time()
                .into_iter()
                .find(|x| x.id == t.id)
                .map_or(t.hours, |x| x.hours);
            psa.set_hours(&t.id, (now + Decimal::new(5, 1)).min(Decimal::from(12)))
                .await;
            live.inc(1);
        }
    }
    psa.deliver(Delivery::Normal).await;
    for t in approved.iter().take(25) {
        let day = firm.period_end - Days::new(rng.u64(0..5));
        psa.log_time(&t.id, day, Decimal::new(100 + 25 * rng.i64(0..12), 2))
            .await;
        live.inc(1);
    }
    for t in approved.iter().rev().take(3) {
        psa.delete_time(&t.id).await;
        live.inc(1);
    }
    let fixed = psa
        .bad()
        .into_iter()
        .find(|b| b.reason == "validation.hours_out_of_range")
        .map(|b| b.id);
    if let Some(id) = &fixed {
        psa.set_hours(id, Decimal::new(25, 1)).await;
        live.inc(1);
    }
    live.finish_and_clear();
    Ok(fixed)
}

/// Approves the summary invoice of the first approved entry's project in the
/// ERP, as finance would, then adds half an hour to that entry in the PSA.
/// Returns the summary's document key when the ERP will refuse the edit.
pub(crate) async fn finance_approves_then_time_changes(
    run: &Run<'_>,
) -> anyhow::Result<Option<String>> {
    let psa = &run.pair.psa;
    let month = run.pair.firm.period_start;
    let time = psa.time();
    // The summary's reference as Ferry wrote it in this ERP (shortened where
    // the ERP's field is short).
    let refs = run
        .local
        .tenants
        .get(run.tenant)
        .expect("tenant wired")
        .references
        .clone();
    for t in approved_in_month(run, &time) {
        let reference = refs.make(
            "S-project_billing",
            &format!("{}-{}", t.project, month.format("%Y%m")),
        );
        let approved = run
            .pair
            .erp
            .approve(&reference)
            .await
            .map_err(|e| anyhow::anyhow!("approving {reference} in the ERP simulator: {e}"))?;
        if !approved {
            continue;
        }
        psa.set_hours(&t.id, t.hours + Decimal::new(5, 1)).await;
        if !run.pair.erp.refuses_edits_after_approval() {
            // This ERP takes the edit: nothing to explain.
            return Ok(None);
        }
        return Ok(Some(format!(
            "summary/project_billing/{}:{}/{}",
            psa.connector(),
            t.project,
            month.format("%Y-%m")
        )));
    }
    Ok(None)
}

/// Customers pay 18 posted invoices: most in full, every sixth in half.
pub(crate) async fn customers_pay(run: &Run<'_>) -> anyhow::Result<()> {
    let erp = &run.pair.erp;
    let payable = erp.payable();
    let pay = bar(
        run.progress,
        payable.len().min(18) as u64,
        "payments recorded in the ERP",
    );
    for (n, (id, total)) in payable.iter().take(18).enumerate() {
        let amount = if n % 6 == 5 {
            (*total / Decimal::from(2)).round_dp(2)
        } else {
            *total
        };
        erp.pay(id, amount, run.pair.firm.period_end)
            .await
            .map_err(|e| anyhow::anyhow!("recording a payment in the ERP simulator: {e}"))?;
        pay.inc(1);
    }
    pay.finish_and_clear();
    Ok(())
}
