//! The seeded fault simulation on any pair of the simulators' stage (Harvest,
//! NetSuite and Business Central included), through the stage's traits only, so
//! a connector added to the stage runs in it without a line here.
//!
//! One seed drives a random sequence of the firm's people at work in the PSA
//! (hours corrected, time logged, approved, deleted), webhook deliveries
//! duplicated and reordered (where the PSA sends webhooks), malformed, failed
//! and throttled answers from either simulator, ERP answers lost after the ERP
//! committed or arriving after the client gave up, and crashes between the
//! ERP's commit and Ferry's bookkeeping (every id-map commit fails while one
//! lasts), with syncs (poll, deletion sweep, the pipeline settling) in between.
//! After quiescence customers pay, and the checker asks:
//!
//! - one live ERP document per Ferry reference (read through the ERP connector);
//! - every input in a final state;
//! - the exceptions are exactly the firm's seeded bad records, each with its
//!   reason (no fault here is one a person must act on);
//! - reconciliation of the month explains every difference between the PSA
//!   and the ERP (the demo's verdict, so the same bar as `ferry run`).
//!
//! Each seed runs against simulators that keep real time, like the
//! real-systems simulation: a rerun of a seed follows the same sequence of
//! operations and faults, not byte for byte the same interleaving. The
//! ConnectWise → Xero pair has its own simulation on a manual clock, checked
//! against a fault-free run (`simulation`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use ferry_canon::TenantId;
use ferry_cli::demo::stage::Pair;
use ferry_cli::demo::verdict;
use ferry_cli::local::{Local, local_settings};
use ferry_core::Deps;
use ferry_core::error::RetryClass;
use ferry_core::ports::{ErpConnector, ErpState, ErpWriter, ExceptionQuery, ExceptionStatus};
use ferry_core::posting::DocKind;
use ferry_core::report;
use ferry_core::usecases::{intake, reconcile, retry};
use ferry_embedded::host::{HostConfig, LocalHost, WebhookEdge, serve_webhooks};
use ferry_sim::demo::DemoSpec;
use ferry_sim::stage::{Delivery, Fault, SimTime};
use rust_decimal::Decimal;

use crate::LostCommits;
use crate::lossy::LossyErp;
use crate::wired::Wired;

/// What a run did and found.
#[derive(Debug, Clone, Default)]
pub struct PairReport {
    pub psa: String,
    pub erp: String,
    pub seed: u64,
    /// Record versions the people made (seeded time entries, then each change).
    pub records: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub violations: Vec<String>,
    pub trace: Vec<String>,
    started: Option<std::time::Instant>,
}

impl PairReport {
    pub fn explain(&self) -> String {
        format!(
            "{} → {} simulation seed {} (rerun: FERRY_PAIR_SIM_SEED={} FERRY_PAIR_SIM_SEEDS=1 FERRY_PAIR_SIM_PAIRS={}-{} cargo test -p ferry-tests --test simulation pair)\nviolations:\n  {}\ntrace:\n  {}",
            self.psa,
            self.erp,
            self.seed,
            self.seed,
            self.psa,
            self.erp,
            self.violations.join("\n  "),
            self.trace.join("\n  ")
        )
    }

    /// A trace line, stamped with the seconds since the run started.
    fn note(&mut self, line: impl Into<String>) {
        let at = self.started.get_or_insert_with(std::time::Instant::now);
        let line = format!("{:>6.1}s {}", at.elapsed().as_secs_f64(), line.into());
        self.trace.push(line);
    }

    fn fault(&mut self, kind: &'static str, what: String) {
        *self.faults.entry(kind).or_default() += 1;
        self.note(format!("fault: {what}"));
    }
}

/// The pipeline's settings: a short unknown-outcome hold (the simulators
/// answer only after they committed), otherwise the local defaults.
fn settings() -> ferry_core::Settings {
    ferry_core::Settings {
        unknown_outcome_hold: Duration::from_secs(2),
        post_lease: Duration::from_secs(10),
        ..local_settings()
    }
}

/// One running pair with Ferry wired to it through the fault wrappers.
struct World {
    pair: Pair,
    local: Local,
    deps: Deps,
    host: LocalHost,
    _edge: WebhookEdge,
    tenant: TenantId,
    lossy: Arc<LossyErp>,
    crashed: Arc<AtomicBool>,
    psa_pushes: bool,
    erp_pushes: bool,
    /// Entries seeded bad: the people leave them alone, so each must stay an exception.
    bad: Vec<String>,
}

impl World {
    async fn start(psa: &str, erp: &str, seed: u64) -> World {
        let spec = DemoSpec {
            seed,
            members: 8,
            ..crate::small_firm()
        };
        let Wired {
            pair,
            local,
            tenant,
            erp: connector,
        } = Wired::start_with(psa, erp, "sim-firm", &spec, settings()).await;
        let ctx = local.tenants.get(&tenant).expect("tenant");
        let lossy = Arc::new(LossyErp::new(connector));
        local
            .tenants
            .insert(ctx.with_erp(lossy.clone()).expect("fits"));
        let crashed = Arc::new(AtomicBool::new(false));
        let mut deps = local.deps.clone();
        let down = crashed.clone();
        deps.idmap = Arc::new(LostCommits::when(deps.idmap.clone(), move || {
            down.load(Ordering::SeqCst)
        }));
        let edge = serve_webhooks(deps.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("webhook edge");
        let psa_pushes = pair
            .psa
            .subscribe(&edge.url(psa, tenant.as_str()))
            .await
            .expect("PSA subscription");
        let erp_pushes = pair
            .erp
            .subscribe(&edge.url(erp, tenant.as_str()))
            .await
            .expect("ERP subscription");
        intake::subscribe_webhooks(&deps, &tenant, &edge.origin())
            .await
            .expect("Ferry's own subscriptions");
        let host = LocalHost::start(deps.clone(), HostConfig::default());
        let bad = pair.psa.bad().into_iter().map(|b| b.id).collect();
        World {
            pair,
            local,
            deps,
            host,
            _edge: edge,
            tenant,
            lossy,
            crashed,
            psa_pushes,
            erp_pushes,
            bad,
        }
    }

    /// The firm's entries in its month that the people may change.
    fn workable(&self) -> Vec<SimTime> {
        let firm = &self.pair.firm;
        self.pair
            .psa
            .time()
            .into_iter()
            .filter(|t| t.date >= firm.period_start && t.date <= firm.period_end)
            .filter(|t| !self.bad.contains(&t.id))
            .collect()
    }

    /// Polls, sweeps and lets the pipeline settle; a failed read is traced (the
    /// next sync reads again), a pipeline that never settles is a violation.
    async fn sync(&self, report: &mut PairReport) {
        self.read(report, false).await;
        self.settle(report).await;
    }

    /// Reads every domain and sweeps for deletions. Patient: waits out the
    /// PSA's throttling and tries a failed read again, as the next scheduled
    /// poll would; a read that still fails is a violation.
    async fn read(&self, report: &mut PairReport, patient: bool) {
        let ctx = self.local.tenants.get(&self.tenant).expect("tenant");
        let since = self.pair.firm.period_start - Days::new(31);
        let swept = if self.psa_pushes {
            Vec::new()
        } else {
            ctx.psa.swept()
        };
        let reads = ctx
            .psa
            .pollable()
            .into_iter()
            .map(|d| (d, false))
            .chain(swept.into_iter().map(|d| (d, true)));
        for (domain, sweep) in reads {
            let what = if sweep { "sweep" } else { "poll" };
            for attempt in 0.. {
                let r = if sweep {
                    intake::sweep_deletions(&self.deps, &self.tenant, domain, since)
                        .await
                        .map(|_| ())
                } else {
                    intake::poll(&self.deps, &self.tenant, domain, &|_| {})
                        .await
                        .map(|_| ())
                };
                let Err(e) = r else { break };
                report.note(format!("  {what} {domain}: {e}"));
                if !patient {
                    break;
                }
                if attempt == 8 {
                    report.violations.push(format!(
                        "{what} {domain} still failed after quiescence: {e}"
                    ));
                    break;
                }
                let wait = match e.class() {
                    RetryClass::Throttled { retry_after } => retry_after
                        .unwrap_or(Duration::from_secs(1))
                        .min(Duration::from_secs(30)),
                    _ => Duration::from_millis(500),
                };
                tokio::time::sleep(wait).await;
            }
        }
    }

    async fn settle(&self, report: &mut PairReport) {
        if let Err(e) = self.host.wait_idle(Duration::from_secs(120)).await {
            report
                .violations
                .push(format!("the pipeline did not settle: {e:?}"));
        }
    }
}

/// A quarter-hour multiple from 0.25 to 8 h.
fn quarter_hours(rng: &mut fastrand::Rng) -> Decimal {
    Decimal::from(rng.u32(1..=32)) / Decimal::from(4)
}

fn pick<T: Clone>(rng: &mut fastrand::Rng, v: &[T]) -> Option<T> {
    (!v.is_empty()).then(|| v[rng.usize(..v.len())].clone())
}

fn any_fault(rng: &mut fastrand::Rng) -> Fault {
    Fault::ALL[rng.usize(..Fault::ALL.len())]
}

/// One operation of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    SetHours,
    LogTime,
    Approve,
    Delete,
    Deliver,
    PsaFault,
    ErpFault,
    LoseAnswers,
    LateAnswer,
    Crash,
    Sync,
}

impl Op {
    /// Every kind of fault once, then random operations (people's work most
    /// often), in a seeded order: a short run still meets every fault.
    fn plan(rng: &mut fastrand::Rng, steps: usize) -> Vec<Op> {
        let mut plan = vec![
            Op::PsaFault,
            Op::ErpFault,
            Op::LoseAnswers,
            Op::LateAnswer,
            Op::Crash,
        ];
        while plan.len() < steps {
            plan.push(match rng.u32(0..100) {
                0..=17 => Op::SetHours,
                18..=29 => Op::LogTime,
                30..=37 => Op::Approve,
                38..=43 => Op::Delete,
                44..=49 => Op::Deliver,
                50..=56 => Op::PsaFault,
                57..=63 => Op::ErpFault,
                64..=70 => Op::LoseAnswers,
                71..=74 => Op::LateAnswer,
                75..=80 => Op::Crash,
                _ => Op::Sync,
            });
        }
        rng.shuffle(&mut plan);
        plan
    }
}

/// Runs one seed of `steps` operations on `psa` → `erp`.
pub async fn run(psa: &str, erp: &str, seed: u64, steps: usize) -> PairReport {
    let w = World::start(psa, erp, seed).await;
    let mut report = PairReport {
        psa: psa.into(),
        erp: erp.into(),
        seed,
        records: w.pair.psa.time().len() as u64,
        ..PairReport::default()
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    report.note(format!(
        "seed {seed}: {psa} → {erp}, {} time entries seeded ({} bad), {steps} steps; PSA webhooks {}, ERP webhooks {}",
        report.records,
        w.bad.len(),
        w.psa_pushes,
        w.erp_pushes
    ));
    // The backfill meets a lost answer too: the ERP creates documents and
    // Ferry hears nothing, so a retry must find them rather than create twice.
    let kinds = w.lossy.capabilities().kinds;
    let kind = kinds[rng.usize(..kinds.len())];
    let n = rng.u32(1..=2);
    w.lossy.lose_of(Some(kind), n);
    report.fault(
        "erp_answer_lost_after_commit",
        format!(
            "backfill: the next {n} answers to {} writes are lost",
            kind.as_str()
        ),
    );
    w.sync(&mut report).await;
    w.lossy.calm();
    // Records created after the first sync: a customer named like another
    // one and its invoice (bad where the ERP wants unique names).
    w.pair.psa.add_late().await;
    report.note("PSA: late records added");
    let firm_days = (w.pair.firm.period_end - w.pair.firm.period_start).num_days() as u64;
    for op in Op::plan(&mut rng, steps) {
        let work = w.workable();
        match op {
            Op::SetHours => {
                let Some(t) = pick(&mut rng, &work) else {
                    continue;
                };
                let hours = quarter_hours(&mut rng);
                w.pair.psa.set_hours(&t.id, hours).await;
                report.records += 1;
                report.note(format!("PSA: {} now {hours} h", t.id));
            }
            Op::LogTime => {
                let Some(t) = pick(&mut rng, &work) else {
                    continue;
                };
                let day = w.pair.firm.period_start + Days::new(rng.u64(0..=firm_days));
                let hours = quarter_hours(&mut rng);
                w.pair.psa.log_time(&t.id, day, hours).await;
                report.records += 1;
                report.note(format!("PSA: logged {hours} h on {day} like {}", t.id));
            }
            Op::Approve => {
                let pending: Vec<SimTime> = work.into_iter().filter(|t| !t.approved).collect();
                let Some(t) = pick(&mut rng, &pending) else {
                    continue;
                };
                w.pair.psa.approve_time(&t.id).await;
                report.records += 1;
                report.note(format!("PSA: {} approved", t.id));
            }
            Op::Delete => {
                let Some(t) = pick(&mut rng, &work) else {
                    continue;
                };
                w.pair.psa.delete_time(&t.id).await;
                report.records += 1;
                report.note(format!("PSA: {} deleted", t.id));
            }
            Op::Deliver => {
                let how =
                    [Delivery::Normal, Delivery::Duplicated, Delivery::Reordered][rng.usize(..3)];
                w.pair.psa.deliver(how).await;
                report.note(format!("PSA delivers {how:?}"));
            }
            Op::PsaFault => {
                let f = any_fault(&mut rng);
                w.pair.psa.inject(f);
                report.fault("psa_answer", format!("the PSA's next answer is {f:?}"));
                w.sync(&mut report).await;
            }
            Op::ErpFault => {
                let f = any_fault(&mut rng);
                w.pair.erp.inject(f);
                report.fault("erp_answer", format!("the ERP's next answer is {f:?}"));
                w.sync(&mut report).await;
            }
            Op::LoseAnswers => {
                let n = rng.u32(1..=3);
                w.lossy.lose(n);
                report.fault(
                    "erp_answer_lost_after_commit",
                    format!("the next {n} ERP write answers are lost"),
                );
            }
            Op::LateAnswer => {
                w.lossy.late(1);
                report.fault(
                    "erp_commit_after_client_timeout",
                    "the next ERP write answer comes after the client gave up".into(),
                );
            }
            Op::Crash => {
                // The process dies a moment into a sync: what reaches the ERP
                // meanwhile is not recorded; it comes back on the same store.
                let down = Duration::from_millis(rng.u64(200..=1500));
                w.crashed.store(true, Ordering::SeqCst);
                report.fault(
                    "crash",
                    format!(
                        "crash: bookkeeping lost for {} ms of a sync",
                        down.as_millis()
                    ),
                );
                w.read(&mut report, false).await;
                tokio::time::sleep(down).await;
                w.crashed.store(false, Ordering::SeqCst);
                w.settle(&mut report).await;
            }
            Op::Sync => {
                report.note("sync");
                w.sync(&mut report).await;
            }
        }
    }
    quiesce(&w, &mut report).await;
    report.violations.extend(check(&w).await);
    w.host.shutdown().await;
    report
}

/// No more faults: every change is read, what the faults parked is replayed
/// as support would, and customers pay what was posted.
async fn quiesce(w: &World, report: &mut PairReport) {
    w.lossy.calm();
    w.crashed.store(false, Ordering::SeqCst);
    w.pair.psa.deliver(Delivery::Normal).await;
    w.read(report, true).await;
    w.settle(report).await;
    tokio::time::sleep(settings().unknown_outcome_hold + Duration::from_secs(1)).await;
    let replayed = retry::replay_all(&w.deps, &w.tenant, None, None).await;
    report.note(format!(
        "quiescence: replayed {}",
        replayed.map_or_else(|e| e.to_string(), |n| n.to_string())
    ));
    w.read(report, true).await;
    w.settle(report).await;
    let payable = w.pair.erp.payable();
    for (n, (id, total)) in payable.iter().take(6).enumerate() {
        let amount = if n % 3 == 2 {
            (*total / Decimal::from(2)).round_dp(2)
        } else {
            *total
        };
        if let Err(e) = w.pair.erp.pay(id, amount, w.pair.firm.period_end).await {
            report
                .violations
                .push(format!("paying {id} in the ERP simulator: {e}"));
        }
    }
    report.note(format!("finance: {} invoices paid", payable.len().min(6)));
    if !w.erp_pushes
        && let Err(e) = intake::poll_erp_payments(&w.deps, &w.tenant).await
    {
        report.violations.push(format!(
            "the ERP payment sweep failed after quiescence: {e}"
        ));
    }
    w.settle(report).await;
}

/// Every Ferry document the ERP holds, live, by reference.
async fn live_documents(
    erp: &dyn ErpConnector,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<String, usize>, String> {
    let mut refs = BTreeMap::new();
    for kind in [DocKind::Invoice, DocKind::CreditNote] {
        if !erp.capabilities().posts(kind) {
            continue;
        }
        let docs = erp
            .list_documents(kind, from, to)
            .await
            .map_err(|e| format!("listing the ERP's {kind:?} documents: {e}"))?;
        for d in docs {
            if matches!(d.state, ErpState::Voided | ErpState::Deleted) {
                continue;
            }
            if let Some(r) = d.reference {
                *refs.entry(r).or_default() += 1;
            }
        }
    }
    Ok(refs)
}

async fn check(w: &World) -> Vec<String> {
    let mut v = Vec::new();
    let ctx = w.local.tenants.get(&w.tenant).expect("tenant");
    let firm = &w.pair.firm;
    match live_documents(
        ctx.erp.as_ref(),
        firm.period_start - Days::new(62),
        firm.period_end + Days::new(62),
    )
    .await
    {
        // A reader that showed no references would make this check see nothing.
        Ok(refs) if refs.is_empty() => {
            v.push("the ERP showed no document carrying a Ferry reference".into());
        }
        Ok(refs) => {
            for (reference, n) in refs.iter().filter(|(_, n)| **n > 1) {
                v.push(format!("{n} live ERP documents carry {reference}"));
            }
        }
        Err(e) => v.push(e),
    }
    let reconciliation =
        match reconcile::run(&w.deps, &w.tenant, firm.period_start, firm.period_end).await {
            Ok(r) => r,
            Err(e) => {
                v.push(format!("reconciliation failed: {e}"));
                return v;
            }
        };
    w.host
        .wait_idle(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| {
            v.push(format!(
                "reconciliation's write-backs did not settle: {e:?}"
            ))
        });
    let summary = match report::summarise(
        &w.deps,
        &w.tenant,
        w.local.clock.now(),
        &ctx.erp.account_key(),
        ctx.erp.limits().per_day,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            v.push(format!("summary failed: {e}"));
            return v;
        }
    };
    let exceptions = w
        .deps
        .exceptions
        .list(&ExceptionQuery {
            tenant: Some(w.tenant.clone()),
            statuses: vec![
                ExceptionStatus::Open,
                ExceptionStatus::Retrying,
                ExceptionStatus::Replayed,
            ],
            ..ExceptionQuery::default()
        })
        .await
        .unwrap_or_default();
    let expected = verdict::expected(&w.pair, None, None);
    v.extend(verdict::unexplained(
        &summary,
        &reconciliation,
        &exceptions,
        &expected,
    ));
    v
}
