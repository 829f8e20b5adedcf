//! The deterministic simulation against real systems: Redmine 5.0 (the PSA) into
//! Tryton 8.2 (the ERP), both on loopback. Smaller than the simulator one (no
//! webhooks to disturb: Redmine is polled), but the same promise under the same
//! kind of faults: one seed drives a random sequence of Redmine time logged,
//! edited, approved, unapproved and deleted; polls and deletion sweeps; Tryton
//! answers lost after Tryton committed, answers arriving after the client gave
//! up, and process crashes between Tryton's commit and Ferry's bookkeeping (every
//! id-map commit fails while the crash lasts). After quiescence it checks:
//!
//! - one live Tryton invoice per Ferry reference, and one timesheet line per
//!   approved, billable entry, with the entry's current hours (none for others);
//! - every record in a final state, and no open exception (no fault here is one
//!   a person must act on);
//! - reconciliation of the month is clean (Redmine and Tryton agree).
//!
//! `real.rs` runs it (`FERRY_REAL_SIM_SEEDS`, default 2, from
//! `FERRY_REAL_SIM_SEED`); a failure prints the seed and the trace. Redmine ids
//! and Tryton's timing are not the seed's, so a rerun follows the same sequence
//! of operations but not byte for byte the same interleaving.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferry_core::usecases::reconcile;

use crate::LostCommits;
use crate::lossy::LossyErp;
use crate::real::{Real, october, template, timesheets};

/// Set while a simulated crash lasts: Ferry's id-map commits fail.
static CRASHED: AtomicBool = AtomicBool::new(false);

fn crash_wrap(mut d: ferry_core::Deps) -> ferry_core::Deps {
    d.idmap = Arc::new(LostCommits::while_set(d.idmap.clone(), &CRASHED));
    d
}

/// One Redmine time entry as the simulation last left it.
#[derive(Debug, Clone)]
struct Entry {
    hours: String,
    billable: bool,
    approved: bool,
    deleted: bool,
}

/// What a run did and found.
#[derive(Debug, Clone, Default)]
pub struct RealReport {
    pub seed: u64,
    pub records: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub violations: Vec<String>,
    pub trace: Vec<String>,
}

impl RealReport {
    pub fn explain(&self) -> String {
        format!(
            "real-systems simulation seed {} (rerun: FERRY_REAL_SIM_SEED={} FERRY_REAL_SIM_SEEDS=1 scripts/with-real-systems.sh cargo test -p ferry-tests --test real simulation)\nviolations:\n  {}\ntrace:\n  {}",
            self.seed,
            self.seed,
            self.violations.join("\n  "),
            self.trace.join("\n  ")
        )
    }
}

/// A quarter-hour multiple from 0.25 to 8 h, as Redmine is given it.
fn quarter_hours(rng: &mut fastrand::Rng) -> String {
    (rust_decimal::Decimal::from(rng.u32(1..=32)) / rust_decimal::Decimal::from(4))
        .normalize()
        .to_string()
}

fn fault(report: &mut RealReport, kind: &'static str) {
    *report.faults.entry(kind).or_default() += 1;
}

fn trace(report: &mut RealReport, line: String) {
    report.trace.push(line);
}

/// Runs one seed of `steps` operations against freshly restored systems.
pub async fn run(seed: u64, steps: usize) -> RealReport {
    let mut report = RealReport {
        seed,
        ..RealReport::default()
    };
    CRASHED.store(false, Ordering::SeqCst);
    let settings = ferry_core::Settings {
        // Tryton answers only after it committed: a short hold is enough.
        unknown_outcome_hold: Duration::from_secs(2),
        post_lease: Duration::from_secs(10),
        ..crate::real::real_settings()
    };
    let r = Real::start_with(template(None), crash_wrap, settings).await;
    let ctx = r.local.tenants.get(&r.tenant).expect("tenant");
    let lossy = Arc::new(LossyErp::new(ctx.erp.clone()));
    r.local
        .tenants
        .insert(ctx.with_erp(lossy.clone()).expect("fits"));
    let mut entries: BTreeMap<i64, Entry> = BTreeMap::new();
    for (id, e) in r.firm.entries.iter().zip(crate::real::ENTRIES) {
        entries.insert(
            *id,
            Entry {
                hours: e.3.to_string(),
                billable: e.5,
                approved: e.6,
                deleted: false,
            },
        );
    }
    report.records = entries.len() as u64;
    let mut rng = fastrand::Rng::with_seed(seed);
    trace(
        &mut report,
        format!(
            "seed {seed}: {} entries seeded, {steps} steps",
            entries.len()
        ),
    );
    r.sync().await;
    let projects = [r.firm.web, r.firm.app, r.firm.rollout];
    let users = [r.firm.jane, r.firm.raj];
    for _ in 0..steps {
        let live: Vec<i64> = entries
            .iter()
            .filter(|(_, e)| !e.deleted)
            .map(|(id, _)| *id)
            .collect();
        let pick =
            |rng: &mut fastrand::Rng| (!live.is_empty()).then(|| live[rng.usize(..live.len())]);
        match rng.u32(0..100) {
            0..=21 => {
                let hours = quarter_hours(&mut rng);
                let (billable, approved) = (rng.u32(0..10) < 8, rng.u32(0..10) < 7);
                let project = projects[rng.usize(..projects.len())];
                let activity = ["Design", "Development"][rng.usize(..2)];
                let day = october(rng.u32(1..=28));
                let id = r
                    .redmine
                    .log(&ferry_cli::real::Time {
                        project,
                        user: users[rng.usize(..users.len())],
                        day,
                        hours: &hours,
                        activity,
                        comments: "simulated work",
                        billable,
                        approved,
                        issue: None,
                    })
                    .await
                    .expect("log time");
                report.records += 1;
                trace(
                    &mut report,
                    format!(
                        "Redmine: log {id} ({hours} h {activity} on project {project} {day}, billable {billable}, approved {approved})"
                    ),
                );
                entries.insert(
                    id,
                    Entry {
                        hours,
                        billable,
                        approved,
                        deleted: false,
                    },
                );
            }
            22..=39 => {
                let Some(id) = pick(&mut rng) else { continue };
                let hours = quarter_hours(&mut rng);
                r.redmine.set_hours(id, &hours).await.expect("edit");
                report.records += 1;
                trace(&mut report, format!("Redmine: {id} now {hours} h"));
                entries.get_mut(&id).expect("known").hours = hours;
            }
            40..=49 => {
                let Some(id) = pick(&mut rng) else { continue };
                let e = entries.get_mut(&id).expect("known");
                e.approved = !e.approved;
                r.redmine
                    .set_approved(id, e.billable, e.approved)
                    .await
                    .expect("approve");
                report.records += 1;
                let what = format!("Redmine: {id} approved {}", e.approved);
                trace(&mut report, what);
            }
            50..=56 => {
                let Some(id) = pick(&mut rng) else { continue };
                r.redmine.delete_time(id).await.expect("delete");
                report.records += 1;
                trace(&mut report, format!("Redmine: delete {id}"));
                entries.get_mut(&id).expect("known").deleted = true;
            }
            57..=65 => {
                let n = rng.u32(1..=3);
                lossy.lose(n);
                fault(&mut report, "tryton_answer_lost_after_commit");
                trace(
                    &mut report,
                    format!("fault: the next {n} Tryton answers are lost"),
                );
            }
            66..=71 => {
                lossy.late(1);
                fault(&mut report, "tryton_commit_after_client_timeout");
                trace(
                    &mut report,
                    "fault: the next Tryton answer comes after the client gave up".into(),
                );
            }
            72..=79 => {
                // A crash: what is in flight reaches Tryton and Ferry's bookkeeping
                // of it is lost; then the process comes back on the same store.
                CRASHED.store(true, Ordering::SeqCst);
                fault(&mut report, "crash");
                trace(&mut report, "crash: bookkeeping lost during a sync".into());
                r.sync().await;
                CRASHED.store(false, Ordering::SeqCst);
            }
            _ => {
                trace(&mut report, "sync".into());
                r.sync().await;
            }
        }
    }
    // Quiescence: no more faults; a sync brings every change, a second one
    // shows nothing is left to do.
    lossy.calm();
    CRASHED.store(false, Ordering::SeqCst);
    r.sync().await;
    tokio::time::sleep(Duration::from_secs(3)).await; // past the unknown-outcome hold
    // What the faults parked (a document that met a lost answer at every
    // delivery) is replayed, as support would: it must then converge.
    let replayed = ferry_core::usecases::retry::replay_all(&r.deps, &r.tenant, None, None).await;
    trace(
        &mut report,
        format!(
            "quiescence: replayed {}",
            replayed
                .map(|n| n.to_string())
                .unwrap_or_else(|e| e.to_string())
        ),
    );
    r.settle().await;
    r.sync().await;
    report.violations = check(&r, &entries).await;
    r.stop().await;
    report
}

async fn check(r: &Real, entries: &BTreeMap<i64, Entry>) -> Vec<String> {
    let mut v = Vec::new();
    // One live invoice per reference.
    let mut refs: BTreeMap<String, usize> = BTreeMap::new();
    for i in r.invoices().await {
        if i["state"] != "cancelled" {
            *refs
                .entry(i["reference"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    for (reference, n) in &refs {
        if *n > 1 {
            v.push(format!("{n} live Tryton invoices carry {reference}"));
        }
    }
    // One timesheet line per approved, billable, live entry, with its hours.
    let lines = timesheets(r).await;
    let mut by_entry: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (entry, _, _, hours, _) in &lines {
        by_entry.entry(*entry).or_default().push(hours.clone());
    }
    for (id, e) in entries {
        let want = !e.deleted && e.billable && e.approved;
        let have = by_entry.get(id).cloned().unwrap_or_default();
        let hours = rust_decimal::Decimal::from_str_exact(&e.hours)
            .expect("hours")
            .normalize()
            .to_string();
        match (want, have.as_slice()) {
            (true, [h]) if *h == hours => {}
            (false, []) => {}
            (true, found) => v.push(format!(
                "entry {id} ({hours} h, approved and billable) has timesheet lines {found:?}"
            )),
            (false, found) => v.push(format!(
                "entry {id} (deleted {}, billable {}, approved {}) still has timesheet lines {found:?}",
                e.deleted, e.billable, e.approved
            )),
        }
    }
    // Every record final; no open exception.
    let counts = r.deps.ledger.counts(&r.tenant).await.expect("counts");
    for c in counts
        .iter()
        .filter(|c| c.state == "pending" || c.state == "queued")
    {
        v.push(format!("{} {} records left {}", c.count, c.domain, c.state));
    }
    for e in r.open_exceptions().await {
        v.push(format!(
            "open exception {} on {} ({}): {}",
            e.reason, e.source_key, e.stage, e.message
        ));
    }
    // Redmine and Tryton agree on the month.
    match reconcile::run(&r.deps, &r.tenant, october(1), october(31)).await {
        Ok(report) if report.clean => {}
        Ok(report) => v.push(format!(
            "reconciliation is not clean: missing {:?}, unaccounted {:?}, rows {:?}",
            report.missing,
            report.unaccounted,
            report
                .rows
                .iter()
                .filter(|row| !row.mismatches.is_empty())
                .map(|row| (&row.key, &row.mismatches))
                .collect::<Vec<_>>()
        )),
        Err(e) => v.push(format!("reconciliation failed: {e}")),
    }
    v
}
