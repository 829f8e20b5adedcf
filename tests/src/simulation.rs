//! The deterministic simulation: one seed drives a random sequence of PSA
//! changes, webhook deliveries (duplicated, reordered, late, lost), polls and
//! sweeps, pipeline steps, ERP faults, finance acting in the ERP, and process
//! crashes with a restart from the same database. After quiescence the checker
//! compares the outcome with a fault-free run of the final PSA state (what the
//! template makes of the newest PSA state) and checks the invariants.
//!
//! Determinism: the simulation drives every handler itself, one batch at a time
//! (no worker tasks), on a manual clock; webhooks are kept in the ConnectWise
//! simulator's outbox and delivered by the simulation; the Xero simulator's late
//! commits wait for the simulation to release them; a crash is a database
//! connection that refuses every write after the n-th; everything runs on one
//! thread whose random generator the seed also seeds. The same seed gives the
//! same sequence of operations, the same faults and the same outcome.
//!
//! The model's one timing assumption: Xero commits a write it received within
//! the unknown-outcome hold (half of it here); Ferry's exactly-once rule rests
//! on it, as its README says.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use ferry_canon::{Domain, TenantId};
use ferry_cli::local::{Local, LocalOptions, Simulators, repo_dir};
use ferry_connectors::tenant::TenantConfig;
use ferry_connectors::xero::XeroConfig;
use ferry_core::Deps;
use ferry_core::Settings;
use ferry_core::ports::Clock;
use ferry_core::ports::{Disposition, ExceptionQuery, ExceptionRecord, ExceptionStatus, QueueName};
use ferry_core::template::Template;
use ferry_core::usecases::{intake, reconcile, retry};
use ferry_embedded::host::{WebhookEdge, handle_and_settle, queue_depths, serve_webhooks};
use ferry_sim::connectwise::{CwFaults, CwSim, CwSimConfig, Kind, SignedCallback};
use ferry_sim::demo::{DemoFirm, DemoSpec, ROLES};
use ferry_sim::num;
use ferry_sim::xero::XeroSim;
use ferry_testkit::clock::ManualClock;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::dec;

/// What one simulation run does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    /// Operations before quiescence.
    pub steps: usize,
    /// The firm seeded into ConnectWise before Ferry connects.
    pub members: usize,
}

impl Plan {
    pub fn new(seed: u64) -> Plan {
        Plan {
            seed,
            steps: 300,
            members: 6,
        }
    }
}

/// What a run did and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    /// Record versions the PSA produced (seeded records, creates, edits, deletions).
    pub records: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    pub violations: Vec<String>,
    /// Every operation, in order: the minimal story of a failure.
    pub trace: Vec<String>,
}

impl Report {
    /// The seed, the violations and the trace, for a failed assertion.
    pub fn explain(&self) -> String {
        format!(
            "simulation seed {} (rerun: make sim FERRY_SIM_SEED={} FERRY_SIM_SEEDS=1)\nviolations:\n  {}\ntrace ({} operations):\n  {}",
            self.seed,
            self.seed,
            self.violations.join("\n  "),
            self.trace.len(),
            self.trace.join("\n  ")
        )
    }
}

/// One Ferry process: its store connection, handlers and webhook edge.
struct Process {
    local: Local,
    deps: Deps,
    edge: WebhookEdge,
    /// Set when an armed crash has happened (the connection refused a write).
    dead: Option<Arc<AtomicBool>>,
}

impl Process {
    fn is_dead(&self) -> bool {
        self.dead.as_ref().is_some_and(|d| d.load(Ordering::SeqCst))
    }
}

/// How long a simulated Xero call may take before Ferry gives up (a stalled write).
const XERO_TIMEOUT_SECONDS: u64 = 2;

fn settings() -> Settings {
    Settings {
        // The budget never waits in-process: time only moves when the simulation says.
        budget_max_wait: Duration::ZERO,
        reconcile_budget_wait: Duration::ZERO,
        ..ferry_cli::local::local_settings()
    }
}

struct World {
    rng: fastrand::Rng,
    clock: Arc<ManualClock>,
    sims: Simulators,
    cfg: TenantConfig,
    template: Template,
    tenant: TenantId,
    _dir: tempfile::TempDir,
    db: PathBuf,
    proc: Option<Process>,
    http: reqwest::Client,
    /// Callbacks ConnectWise has sent that have not reached Ferry yet.
    pending: Vec<SignedCallback>,
    /// When the oldest stalled Xero write arrived (it must commit within the hold).
    stalled_since: Option<DateTime<Utc>>,
    /// Xero documents finance acted on (authorised or paid).
    moved_on: BTreeSet<String>,
    report: Report,
    settings: Settings,
}

fn start_of(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(9, 0, 0).expect("valid"))
}

/// Starts both simulators for the firm, ConnectWise seeded by `seed` and its
/// callbacks handled as `faults` say, Xero's limits out of the way of a
/// simulated clock (Ferry's own budget, on the manual clock, still applies).
async fn simulators(
    firm: DemoFirm,
    clock: &Arc<ManualClock>,
    seed: impl FnOnce(&CwSim),
    faults: CwFaults,
) -> Simulators {
    let cw = CwSim::start(CwSimConfig::default())
        .await
        .expect("ConnectWise simulator");
    // ConnectWise stamps records with the simulation's time, from the first seeded one.
    let vendor = clock.clone();
    cw.set_clock(Arc::new(move || vendor.now()));
    let mut xc = firm.xero_config();
    xc.per_minute = 1_000_000;
    xc.per_day = 1_000_000_000;
    xc.concurrent = 1_000;
    let xero = XeroSim::start(xc).await.expect("Xero simulator");
    seed(&cw);
    cw.set_faults(faults);
    Simulators { cw, xero, firm }
}

/// A process's store (a file, or memory) with the tenant wired on `clock`.
async fn open_local(
    db: Option<PathBuf>,
    settings: &Settings,
    clock: &Arc<ManualClock>,
    cfg: &TenantConfig,
    template: &Template,
    sims: &Simulators,
) -> Local {
    let local = Local::open(&LocalOptions {
        db,
        settings: settings.clone(),
        max_receives: 6,
        clock: Some(clock.clone()),
    })
    .expect("store opens");
    local
        .add_tenant(cfg, template.clone(), &sims.secrets())
        .await
        .expect("tenant wires");
    local
}

/// Runs the handlers until every queue is empty, moving the clock over delays
/// and backoffs and parking dead letters; the depths left if it never settles.
async fn drain(
    deps: &Deps,
    clock: &ManualClock,
) -> Result<(), Vec<(QueueName, ferry_core::ports::QueueDepth)>> {
    for _ in 0..3_000 {
        let mut moved = 0;
        for (queue, batch) in [(QueueName::Transform, 10), (QueueName::Post, 50)] {
            let msgs = deps
                .queue
                .receive(queue, batch, deps.settings.visibility_timeout)
                .await
                .unwrap_or_default();
            moved += msgs.len();
            if !msgs.is_empty() {
                handle_and_settle(deps, queue, &msgs).await;
            }
        }
        for dlq in [QueueName::TransformDlq, QueueName::PostDlq] {
            if let Ok(r) = retry::drain_dead_letters(deps, dlq, 1_000).await {
                moved += r.parked + r.unreadable + r.superseded;
            }
        }
        if moved > 0 {
            continue;
        }
        if queue_depths(deps).await.iter().all(|(_, d)| d.total() == 0) {
            return Ok(());
        }
        clock.advance(Duration::from_secs(5));
    }
    Err(queue_depths(deps).await)
}

impl World {
    async fn new(plan: &Plan) -> World {
        let spec = DemoSpec {
            seed: plan.seed,
            members: plan.members.max(3),
            companies: 4,
            projects: 8,
            month: NaiveDate::from_ymd_opt(2026, 10, 1).expect("valid"),
        };
        let month = spec.month;
        let clock = Arc::new(ManualClock::at(
            start_of(month + chrono::Months::new(1)) + Days::new(2),
        ));
        let firm = ferry_sim::demo::generate(&spec);
        let sims = simulators(
            firm.clone(),
            &clock,
            |cw| firm.seed(cw),
            CwFaults {
                outbox: true,
                ..CwFaults::default()
            },
        )
        .await;
        let seeded = (sims.firm.time.len()
            + sims.firm.expenses.len()
            + sims.firm.invoices.len()
            + sims.firm.companies.len()
            + sims.firm.projects.len()) as u64;
        let tenant = TenantId::parse("sim-firm").expect("valid");
        let mut cfg = sims.tenant_config(&tenant, &repo_dir().join("templates"));
        cfg.erp
            .update(|x: &mut XeroConfig| x.timeout_seconds = XERO_TIMEOUT_SECONDS);
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("ferry.db");
        let mut w = World {
            rng: fastrand::Rng::with_seed(plan.seed),
            clock,
            sims,
            cfg,
            template: crate::demo_template(),
            tenant,
            _dir: dir,
            db,
            proc: None,
            http: reqwest::Client::new(),
            pending: Vec::new(),
            stalled_since: None,
            moved_on: BTreeSet::new(),
            report: Report {
                seed: plan.seed,
                records: seeded,
                ..Report::default()
            },
            settings: Settings {
                // Small pages, so polls page across records sharing one second.
                poll_page_size: 2 + (plan.seed % 39) as u32,
                ..settings()
            },
        };
        w.boot().await;
        let url = w.proc().edge.url("connectwise", w.tenant.as_str());
        // ConnectWise callbacks only: Xero's payment changes are found by the sweep.
        subscribe_connectwise(&w.sims.cw, &url).await;
        w
    }

    fn proc(&self) -> &Process {
        self.proc.as_ref().expect("a process is running")
    }

    fn deps(&self) -> Deps {
        self.proc().deps.clone()
    }

    fn trace(&mut self, s: impl Into<String>) {
        let line = format!("{} {}", self.clock.now().format("%H:%M:%S"), s.into());
        self.report.trace.push(line);
    }

    fn fault(&mut self, kind: &'static str) {
        *self.report.faults.entry(kind).or_default() += 1;
    }

    /// Starts a process on the database (after a crash: the same file, a new connection).
    async fn boot(&mut self) {
        self.proc = None;
        let local = open_local(
            Some(self.db.clone()),
            &self.settings,
            &self.clock,
            &self.cfg,
            &self.template,
            &self.sims,
        )
        .await;
        let deps = local.deps.clone();
        let edge = serve_webhooks(deps.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("edge starts");
        self.proc = Some(Process {
            local,
            deps,
            edge,
            dead: None,
        });
    }

    /// Restarts if the process died.
    async fn reap(&mut self, during: &str) {
        if self.proc().is_dead() {
            self.fault("crash");
            self.trace(format!("  process died during {during}; restart"));
            self.boot().await;
        }
    }

    // --- the operations ----------------------------------------------------

    async fn step(&mut self) {
        match self.rng.u32(0..100) {
            0..=13 => self.create_time().await,
            14..=21 => self.edit_time().await,
            22..=24 => self.reparent_time().await,
            25..=27 => self.delete_time().await,
            28..=29 => self.toggle_approval().await,
            30..=31 => self.edit_invoice().await,
            32..=45 => self.deliver_callbacks().await,
            46..=49 => self.poll_one().await,
            50..=51 => self.sweeps().await,
            52..=66 => self.work(QueueName::Transform).await,
            67..=81 => self.work(QueueName::Post).await,
            82..=86 => self.pass_time().await,
            87..=91 => self.erp_fault().await,
            92..=93 => self.arm_crash(),
            94..=96 => self.finance().await,
            _ => self.fix_and_replay().await,
        }
    }

    fn billable_projects(&self) -> Vec<Value> {
        self.sims
            .cw
            .all(Kind::Project)
            .into_iter()
            .filter(|p| {
                p["billingMethod"] == "ActualRates"
                    && p["type"]["name"] != "Internal"
                    && p["department"].is_object()
            })
            .collect()
    }

    fn pick<T: Clone>(&mut self, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[self.rng.usize(0..v.len())].clone())
    }

    fn firm_day(&mut self) -> NaiveDate {
        let f = &self.sims.firm;
        let days = (f.period_end - f.period_start).num_days().max(0) as u64;
        f.period_start + Days::new(self.rng.u64(0..=days))
    }

    fn hours(&mut self) -> Decimal {
        Decimal::new(25 * self.rng.i64(1..=32), 2)
    }

    async fn create_time(&mut self) {
        let Some(p) = self.pick(&self.billable_projects()) else {
            return;
        };
        let (role, rate, _) = ROLES[self.rng.usize(0..ROLES.len())];
        let day = self.firm_day();
        let hours = self.hours();
        let member = self.rng.i64(1..=3);
        let rate: Decimal = rate.parse().expect("the demo's rates are decimals");
        let r = self
            .sims
            .cw
            .create(
                Kind::Time,
                json!({
                    "company": p["company"], "chargeToType": "ProjectTicket", "chargeToId": p["id"],
                    "project": { "id": p["id"], "name": p["name"] },
                    "member": { "id": member, "identifier": format!("m{member}"), "name": format!("Member {member}") },
                    "workType": { "id": 1, "name": "Regular" },
                    "workRole": { "id": 1, "name": role },
                    "timeStart": format!("{day}T14:00:00Z"), "actualHours": num(hours),
                    "billableOption": "Billable", "hourlyRate": num(rate),
                    "status": "ApprovedByTierTwo", "notes": "simulated",
                }),
            )
            .await;
        self.report.records += 1;
        self.trace(format!(
            "PSA: create time {} ({hours} h {role} on project {} {day})",
            r["id"], p["id"]
        ));
    }

    /// A live time entry picked at random: its id, and the record as it is.
    fn pick_time(&mut self) -> Option<(i64, Value)> {
        let t = self.pick(&self.sims.cw.all(Kind::Time))?;
        Some((t["id"].as_i64()?, t))
    }

    /// Changes a time entry as a user would (a callback follows), and says so in the trace.
    async fn update_time(&mut self, id: i64, change: impl FnOnce(&mut Value), what: String) {
        self.sims.cw.update(Kind::Time, id, change).await;
        self.report.records += 1;
        self.trace(format!("PSA: time {id} {what}"));
    }

    async fn edit_time(&mut self) {
        let Some((id, t)) = self.pick_time() else {
            return;
        };
        let hours = self.hours();
        let what = format!(
            "on project {} now {hours} h (was {})",
            t["chargeToId"], t["actualHours"]
        );
        self.update_time(id, |r| r["actualHours"] = num(hours), what)
            .await;
    }

    async fn reparent_time(&mut self) {
        let Some((id, t)) = self.pick_time() else {
            return;
        };
        let Some(p) = self.pick(&self.billable_projects()) else {
            return;
        };
        let what = format!(
            "({} h) moved from project {} to project {}",
            t["actualHours"], t["chargeToId"], p["id"]
        );
        let change = |r: &mut Value| {
            r["chargeToId"] = p["id"].clone();
            r["project"] = json!({ "id": p["id"], "name": p["name"] });
            r["company"] = p["company"].clone();
        };
        self.update_time(id, change, what).await;
    }

    async fn delete_time(&mut self) {
        let Some((id, t)) = self.pick_time() else {
            return;
        };
        self.sims.cw.delete(Kind::Time, id).await;
        self.report.records += 1;
        self.trace(format!(
            "PSA: delete time {id} ({} h on project {})",
            t["actualHours"], t["chargeToId"]
        ));
    }

    async fn toggle_approval(&mut self) {
        let Some((id, t)) = self.pick_time() else {
            return;
        };
        let to = if t["status"] == "ApprovedByTierTwo" {
            "PendingApproval"
        } else {
            "ApprovedByTierTwo"
        };
        let what = format!(
            "({} h on project {}) status {to}",
            t["actualHours"], t["chargeToId"]
        );
        self.update_time(id, |r| r["status"] = json!(to), what)
            .await;
    }

    async fn edit_invoice(&mut self) {
        let Some(i) = self.pick(&self.sims.cw.all(Kind::Invoice)) else {
            return;
        };
        let id = i["id"].as_i64().unwrap_or(0);
        let shift = self.rng.u64(1..=20);
        let due = i["dueDate"]
            .as_str()
            .and_then(|s| s.get(..10))
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|d| d + Days::new(shift));
        let Some(due) = due else { return };
        self.sims
            .cw
            .update(Kind::Invoice, id, |r| {
                r["dueDate"] = json!(format!("{due}T00:00:00Z"))
            })
            .await;
        self.report.records += 1;
        self.trace(format!("PSA: invoice {id} due {due}"));
    }

    /// Delivers some of the callbacks ConnectWise has sent, in a random order:
    /// each arrives, arrives twice, arrives later, or is lost.
    async fn deliver_callbacks(&mut self) {
        self.pending.extend(self.sims.cw.take_outbox());
        if self.pending.is_empty() {
            return;
        }
        let n = self.rng.usize(1..=self.pending.len().min(6));
        for _ in 0..n {
            if self.pending.is_empty() {
                break;
            }
            let i = self.rng.usize(0..self.pending.len());
            let cb = self.pending.remove(i);
            match self.rng.u32(0..100) {
                0..=7 => {
                    self.fault("callback_lost");
                    self.trace("webhook: lost".to_string());
                }
                8..=17 => {
                    self.fault("callback_duplicated");
                    self.send(&cb).await;
                    self.send(&cb).await;
                }
                18..=29 => {
                    self.fault("callback_delayed");
                    self.pending.push(cb);
                }
                _ => self.send(&cb).await,
            }
            self.reap("webhook intake").await;
        }
    }

    /// Posts a callback to the running process's edge; its HTTP status (0: no answer).
    async fn post_callback(&self, cb: &SignedCallback) -> u16 {
        let url = self.proc().edge.url("connectwise", self.tenant.as_str());
        self.http
            .post(url)
            .header("content-type", "application/json")
            .header("x-content-signature", &cb.signature)
            .body(cb.body.clone())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    async fn send(&mut self, cb: &SignedCallback) {
        let status = self.post_callback(cb).await;
        let what = callback_summary(&cb.body);
        self.trace(format!("webhook: {what} -> {status}"));
        if !(200..300).contains(&status) && self.rng.bool() {
            // ConnectWise tries a failed callback again later.
            self.pending.push(cb.clone());
        }
    }

    async fn poll_one(&mut self) {
        let domains = {
            let ctx = self.proc().local.tenants.get(&self.tenant).expect("tenant");
            ctx.psa.pollable()
        };
        let Some(d) = self.pick(&domains) else { return };
        let r = intake::poll(&self.deps(), &self.tenant, d, &|_| {}).await;
        self.trace(format!(
            "poll {d}: {}",
            r.map(|r| format!("{} enqueued", r.enqueued))
                .unwrap_or_else(|e| e.to_string())
        ));
        self.reap("poll").await;
    }

    async fn sweeps(&mut self) {
        let domains = {
            let ctx = self.proc().local.tenants.get(&self.tenant).expect("tenant");
            ctx.psa.swept()
        };
        let since = self.sims.firm.period_start - Days::new(365);
        for d in domains {
            let r = intake::sweep_deletions(&self.deps(), &self.tenant, d, since).await;
            if let Err(e) = r {
                self.trace(format!("sweep {d}: {e}"));
            }
            self.reap("deletion sweep").await;
        }
        let r = intake::poll_erp_payments(&self.deps(), &self.tenant).await;
        self.trace(format!(
            "sweeps: {}",
            r.map(|r| format!("payments {} enqueued", r.enqueued))
                .unwrap_or_else(|e| e.to_string())
        ));
        self.reap("payment sweep").await;
    }

    /// One handler invocation over a batch of one queue, settled as the SQS
    /// event source settles it (unless the process died meanwhile).
    async fn work(&mut self, queue: QueueName) {
        let deps = self.deps();
        let batch = match queue {
            QueueName::Post => self.rng.usize(1..=50),
            _ => self.rng.usize(1..=10),
        };
        let msgs = match deps
            .queue
            .receive(queue, batch, deps.settings.visibility_timeout)
            .await
        {
            Ok(m) => m,
            Err(e) => {
                self.trace(format!("{queue}: receive failed: {e}"));
                self.reap(&format!("{queue} receive")).await;
                return;
            }
        };
        if msgs.is_empty() {
            return;
        }
        let settled = handle_and_settle(&deps, queue, &msgs).await;
        self.trace(format!(
            "{queue}: {} messages, {} done, {} to retry",
            msgs.len(),
            settled.done,
            settled.retried
        ));
        self.reap(&format!("{queue} handler")).await;
    }

    async fn pass_time(&mut self) {
        let secs = match self.rng.u32(0..10) {
            0..=5 => self.rng.u64(1..=10),
            6..=8 => self.rng.u64(10..=90),
            _ => self.rng.u64(90..=900),
        };
        self.advance(Duration::from_secs(secs)).await;
    }

    /// Moves the clock; a stalled Xero write commits first if the move would
    /// take it past the time Xero is assumed to commit within.
    async fn advance(&mut self, d: Duration) {
        if let Some(since) = self.stalled_since {
            let limit =
                since + ferry_core::deps::chrono_duration(self.settings.unknown_outcome_hold / 2);
            if self.clock.now() + ferry_core::deps::chrono_duration(d) >= limit {
                self.release_stalled().await;
            }
        }
        self.clock.advance(d);
        self.trace(format!("clock +{}s", d.as_secs()));
    }

    async fn release_stalled(&mut self) {
        if self.sims.xero.stalled() > 0 {
            self.sims.xero.release_stalled().await;
            self.trace("Xero: the stalled write commits now".to_string());
        }
        self.stalled_since = None;
    }

    /// Notes when an armed stall has caught a write (the hold's clock starts then).
    fn watch_stall(&mut self) {
        if self.stalled_since.is_none() && self.sims.xero.stalled() > 0 {
            self.stalled_since = Some(self.clock.now());
        }
    }

    async fn erp_fault(&mut self) {
        let mut f = self.sims.xero.faults();
        let kind = match self.rng.u32(0..8) {
            0 => {
                f.fail_next += 1;
                "xero_500"
            }
            1 => {
                f.throttle_next += 1;
                f.retry_after_secs = self.rng.u64(1..=5);
                "xero_429"
            }
            2 => {
                f.lose_next_responses += 1;
                "xero_response_lost_after_commit"
            }
            3 if f.stall_next == 0 && self.sims.xero.stalled() == 0 => {
                f.stall_next = 1;
                "xero_commit_after_client_timeout"
            }
            4 => {
                f.day_cap_next += 1;
                f.retry_after_secs = self.rng.u64(60..=3_600);
                "xero_daily_cap"
            }
            5 => {
                f.malformed_next += 1;
                "xero_malformed_answer"
            }
            6 => {
                let refs: Vec<String> = self
                    .sims
                    .xero
                    .invoices()
                    .iter()
                    .filter_map(|i| i["Reference"].as_str().map(String::from))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let Some(r) = self.pick(&refs) else { return };
                self.trace(format!("Xero: refuses {r} (archived account) until fixed"));
                f.refuse_references.insert(r);
                "xero_validation_refusal"
            }
            _ => {
                self.release_stalled().await;
                return;
            }
        };
        self.sims.xero.set_faults(f);
        self.fault(kind);
        self.trace(format!("Xero fault armed: {kind}"));
    }

    fn arm_crash(&mut self) {
        let Some(p) = self.proc.as_mut() else { return };
        if p.dead.is_some() {
            return;
        }
        let after = self.rng.u64(0..40);
        p.dead = Some(p.local.store.db.die_after_writes(after));
        self.trace(format!(
            "crash armed: the process dies at its write {}",
            after + 1
        ));
    }

    async fn finance(&mut self) {
        let invoices = self.sims.xero.invoices();
        if self.rng.u32(0..3) < 2 {
            let drafts: Vec<Value> = invoices
                .iter()
                .filter(|i| i["Status"] == "DRAFT")
                .cloned()
                .collect();
            let drafts = by_reference(drafts);
            let Some(i) = self.pick(&drafts) else { return };
            let id = i["InvoiceID"].as_str().unwrap_or_default().to_string();
            let r = self.sims.xero.authorise(&id).await;
            if r.is_ok() {
                self.moved_on.insert(id);
                self.fault("finance_authorised");
            }
            self.trace(format!("finance: authorise {} -> {r:?}", i["Reference"]));
        } else {
            let open: Vec<Value> = invoices
                .iter()
                .filter(|i| i["Status"] == "AUTHORISED" && dec(&i["AmountDue"]) > Decimal::ZERO)
                .cloned()
                .collect();
            let open = by_reference(open);
            let Some(i) = self.pick(&open) else { return };
            let id = i["InvoiceID"].as_str().unwrap_or_default().to_string();
            let due = dec(&i["AmountDue"]);
            let amount = if self.rng.bool() {
                due
            } else {
                (due / Decimal::from(2)).round_dp(2)
            };
            let day = self.sims.firm.period_end;
            let r = self.sims.xero.pay_invoice(&id, amount, day).await;
            if r.is_ok() {
                self.moved_on.insert(id);
                self.fault("finance_paid");
            }
            self.trace(format!(
                "finance: pay {amount} on {} -> {}",
                i["Reference"],
                r.map(|_| "ok".to_string()).unwrap_or_else(|e| e)
            ));
        }
    }

    /// Finance restores what Xero refused, and someone replays the open exceptions.
    async fn fix_and_replay(&mut self) {
        let mut f = self.sims.xero.faults();
        let fixed = std::mem::take(&mut f.refuse_references);
        self.sims.xero.set_faults(f);
        let r = retry::replay_all(&self.deps(), &self.tenant, None, None).await;
        self.trace(format!(
            "fixed {} refusals; replayed {}",
            fixed.len(),
            r.map(|n| n.to_string()).unwrap_or_else(|e| e.to_string())
        ));
        self.reap("replay").await;
    }

    // --- quiescence --------------------------------------------------------

    /// Faults end, every callback still on its way arrives, and the pipeline
    /// runs until nothing is left: syncs, handlers, dead letters, time passing.
    async fn quiesce(&mut self) {
        self.trace("--- quiescence ---".to_string());
        let mut f = self.sims.xero.faults();
        f.fail_next = 0;
        f.throttle_next = 0;
        f.lose_next_responses = 0;
        f.day_cap_next = 0;
        f.malformed_next = 0;
        f.stall_next = 0;
        self.sims.xero.set_faults(f);
        self.release_stalled().await;
        if self.proc().dead.is_some() {
            self.trace("restart (a crash was armed)".to_string());
            self.boot().await;
        }
        self.pending.extend(self.sims.cw.take_outbox());
        while !self.pending.is_empty() {
            let i = self.rng.usize(0..self.pending.len());
            let cb = self.pending.remove(i);
            self.post_callback(&cb).await;
        }
        self.drain().await;
        for _ in 0..2 {
            self.full_sync().await;
            self.drain().await;
        }
        // Finance has restored everything Xero refused; the exceptions are replayed.
        self.fix_and_replay().await;
        self.drain().await;
        self.full_sync().await;
        self.drain().await;
    }

    async fn full_sync(&mut self) {
        let deps = self.deps();
        let (pollable, swept) = {
            let ctx = self.proc().local.tenants.get(&self.tenant).expect("tenant");
            (ctx.psa.pollable(), ctx.psa.swept())
        };
        for d in pollable {
            if let Err(e) = intake::poll(&deps, &self.tenant, d, &|_| {}).await {
                self.report
                    .violations
                    .push(format!("a poll of {d} failed with no fault left: {e}"));
            }
        }
        let since = self.sims.firm.period_start - Days::new(365);
        for d in swept {
            if let Err(e) = intake::sweep_deletions(&deps, &self.tenant, d, since).await {
                self.report
                    .violations
                    .push(format!("a sweep of {d} failed with no fault left: {e}"));
            }
        }
        if let Err(e) = intake::poll_erp_payments(&deps, &self.tenant).await {
            self.report
                .violations
                .push(format!("the payment sweep failed with no fault left: {e}"));
        }
    }

    async fn drain(&mut self) {
        if let Err(depths) = drain(&self.deps(), &self.clock).await {
            self.report
                .violations
                .push(format!("the pipeline did not settle: {depths:?}"));
        }
    }
}

async fn subscribe_connectwise(cw: &CwSim, url: &str) {
    let http = reqwest::Client::new();
    let c = cw.config();
    for kind in ["company", "project", "time", "expense", "invoice"] {
        http.post(format!("{}/system/callbacks", cw.base_url()))
            .basic_auth(
                format!("{}+{}", c.company_id, c.public_key),
                Some(&c.private_key),
            )
            .header("clientId", &c.client_id)
            .json(&json!({ "url": url, "type": kind, "level": "owner", "objectId": 1, "description": "Ferry" }))
            .send()
            .await
            .expect("subscribe")
            .error_for_status()
            .expect("subscribed");
    }
}

/// Xero's documents in a stable order (its ids are random), so a seed picks the same one.
fn by_reference(mut docs: Vec<Value>) -> Vec<Value> {
    docs.sort_by(|a, b| {
        (a["Reference"].as_str(), a["InvoiceNumber"].as_str())
            .cmp(&(b["Reference"].as_str(), b["InvoiceNumber"].as_str()))
    });
    docs
}

fn callback_summary(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    format!(
        "{} {} {}",
        v["Action"].as_str().unwrap_or("?"),
        v["Type"].as_str().unwrap_or("?"),
        v["ID"]
    )
}

// --- the checker -------------------------------------------------------------

/// What the ERP and the store hold after quiescence.
struct Outcome {
    /// Live Xero documents (invoices and credit notes) by Ferry's reference.
    documents: BTreeMap<String, Vec<Value>>,
    contacts: BTreeMap<String, usize>,
    /// Each ConnectWise record's final state in the ledger.
    states: BTreeMap<String, String>,
    /// The exception each record in the exception state names.
    held_by: BTreeMap<String, String>,
    exceptions: Vec<ExceptionRecord>,
    /// Reconciliation's unexplained differences, in words.
    differences: Vec<String>,
    /// InvoiceID → Ferry's document key.
    doc_keys: BTreeMap<String, String>,
}

async fn outcome(deps: &Deps, tenant: &TenantId, sims: &Simulators) -> Outcome {
    let mut documents: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let docs = sims
        .xero
        .invoices()
        .into_iter()
        .chain(sims.xero.credit_notes());
    for d in docs.filter(|d| d["Status"] != "DELETED" && d["Status"] != "VOIDED") {
        if let Some(r) = d["Reference"].as_str().filter(|r| r.starts_with("FERRY-")) {
            documents.entry(r.to_string()).or_default().push(d.clone());
        }
    }
    let mut contacts: BTreeMap<String, usize> = BTreeMap::new();
    for c in sims.xero.contacts() {
        if c["ContactStatus"] != "ARCHIVED" {
            *contacts
                .entry(c["Name"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    let mut states = BTreeMap::new();
    let mut held_by = BTreeMap::new();
    for (kind, domain) in [
        (Kind::Time, Domain::TimeEntries),
        (Kind::Expense, Domain::Expenses),
        (Kind::Invoice, Domain::Invoices),
    ] {
        for r in sims.cw.all(kind) {
            let domain = if r["type"] == "CreditMemo" {
                Domain::CreditMemos
            } else {
                domain
            };
            let key = format!("{domain}/connectwise:{}", r["id"]);
            let state = match deps.ledger.get(tenant, &key).await.expect("ledger") {
                None => "absent".to_string(),
                Some(e) => match e.disposition {
                    Disposition::Skipped { reason } => format!("skipped ({reason})"),
                    Disposition::Exception {
                        reason,
                        exception_id,
                        ..
                    } => {
                        held_by.insert(key.clone(), exception_id);
                        format!("exception ({reason})")
                    }
                    other => other.state().to_string(),
                },
            };
            states.insert(key, state);
        }
    }
    let exceptions = deps
        .exceptions
        .list(&ExceptionQuery {
            tenant: Some(tenant.clone()),
            statuses: vec![ExceptionStatus::Open],
            ..ExceptionQuery::default()
        })
        .await
        .expect("exceptions");
    let f = &sims.firm;
    let differences = match reconcile::run(deps, tenant, f.period_start, f.period_end).await {
        Ok(r) => {
            let mut d: Vec<String> = r
                .rows
                .iter()
                .flat_map(|row| {
                    row.mismatches.iter().map(move |m| {
                        format!(
                            "{} {} {}: PSA {} ERP {} held {} in flight {} (exceptions {:?})",
                            row.key.project,
                            row.key.period,
                            m.measure,
                            m.psa,
                            m.erp,
                            m.held,
                            m.in_flight,
                            row.exceptions()
                        )
                    })
                })
                .collect();
            d.extend(r.missing.iter().map(|m| format!("missing: {m}")));
            d.extend(r.unaccounted.iter().map(|m| format!("unaccounted: {m}")));
            d
        }
        Err(e) => vec![format!("reconciliation failed: {e}")],
    };
    let mut doc_keys = BTreeMap::new();
    for prefix in ["summary/", "invoices/", "credit_memos/", "customers/"] {
        for e in deps.idmap.list(tenant, prefix).await.expect("id map") {
            if let Some(id) = e.erp_id.clone() {
                doc_keys.insert(id, e.doc_key.clone());
            }
        }
    }
    Outcome {
        documents,
        contacts,
        states,
        held_by,
        exceptions,
        differences,
        doc_keys,
    }
}

/// A Xero invoice's or credit note's id.
fn xero_id(d: &Value) -> &str {
    d["InvoiceID"]
        .as_str()
        .or_else(|| d["CreditNoteID"].as_str())
        .unwrap_or_default()
}

/// The exception is about the document `doc_key` (raised for it, or for one of
/// its records on its way there).
fn about(e: &ExceptionRecord, doc_key: &str) -> bool {
    e.doc_key.as_deref() == Some(doc_key) || e.source_key == doc_key
}

/// Ferry's document key for one of its references (its naming, as a reader of
/// the id map would rebuild it).
fn doc_key_of(reference: &str) -> Option<String> {
    if let Some(rest) = reference.strip_prefix("FERRY-S-project_billing-") {
        let (project, month) = rest.split_once('-')?;
        let period = format!("{}-{}", month.get(..4)?, month.get(4..)?);
        return Some(format!(
            "summary/project_billing/connectwise:{project}/{period}"
        ));
    }
    if let Some(id) = reference.strip_prefix("FERRY-I-") {
        return Some(format!("invoices/connectwise:{id}"));
    }
    reference
        .strip_prefix("FERRY-CN-")
        .map(|id| format!("credit_memos/connectwise:{id}"))
}

/// The time entries of a summary group and their final states, for a violation.
fn group_records(sims: &Simulators, reference: &str, run: &Outcome, want: &Outcome) -> String {
    let Some(project) = reference
        .strip_prefix("FERRY-S-project_billing-")
        .and_then(|r| r.split('-').next())
    else {
        return String::new();
    };
    let mut out = String::new();
    for t in sims.cw.all(Kind::Time) {
        if t["chargeToId"].as_i64().map(|id| id.to_string()).as_deref() != Some(project) {
            continue;
        }
        let k = format!("time_entries/connectwise:{}", t["id"]);
        out.push_str(&format!(
            "\n      {} {} h {} {} {}: run {} / fault-free {}",
            t["id"],
            t["actualHours"],
            t["status"],
            t["billableOption"],
            t["timeStart"],
            run.states.get(&k).map(String::as_str).unwrap_or("-"),
            want.states.get(&k).map(String::as_str).unwrap_or("-"),
        ));
    }
    out
}

fn norm(v: &Value) -> String {
    dec(v).normalize().to_string()
}

/// What the template decides about a document: its lines, totals, party and dates.
fn content(d: &Value) -> Value {
    let mut lines: Vec<String> = d["LineItems"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    format!(
                        "{} | {} | {} x {} | {} | {} | {}",
                        l["Description"].as_str().unwrap_or_default(),
                        l["ItemCode"].as_str().unwrap_or_default(),
                        norm(&l["Quantity"]),
                        norm(&l["UnitAmount"]),
                        l["AccountCode"].as_str().unwrap_or_default(),
                        l["TaxType"].as_str().unwrap_or_default(),
                        l["Tracking"],
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    lines.sort();
    json!({
        "type": d["Type"], "contact": d["Contact"]["Name"], "currency": d["CurrencyCode"],
        "date": d["DateString"], "due": d["DueDateString"], "total": norm(&d["Total"]),
        "lines": lines,
    })
}

impl World {
    /// Runs the final PSA state through a fresh pipeline with no faults: what the
    /// template makes of the newest PSA state.
    async fn reference(&self) -> (Outcome, Simulators) {
        let clock = Arc::new(ManualClock::at(self.clock.now()));
        let sims = simulators(
            self.sims.firm.clone(),
            &clock,
            |cw| {
                for kind in [
                    Kind::Company,
                    Kind::Project,
                    Kind::Time,
                    Kind::Expense,
                    Kind::Invoice,
                ] {
                    cw.seed(kind, self.sims.cw.all(kind));
                }
            },
            CwFaults {
                drop_callbacks: true,
                ..CwFaults::default()
            },
        )
        .await;
        let mut cfg = sims.tenant_config(&self.tenant, &repo_dir().join("templates"));
        cfg.erp.update(|x: &mut XeroConfig| x.timeout_seconds = 30);
        let local = open_local(None, &self.settings, &clock, &cfg, &self.template, &sims).await;
        let deps = local.deps.clone();
        let ctx = local.tenants.get(&self.tenant).expect("tenant");
        for d in ctx.psa.pollable() {
            intake::poll(&deps, &self.tenant, d, &|_| {})
                .await
                .expect("reference poll");
        }
        drain(&deps, &clock)
            .await
            .expect("the fault-free run settles");
        let out = outcome(&deps, &self.tenant, &sims).await;
        (out, sims)
    }

    async fn check(&mut self) {
        let deps = self.deps();
        let run = outcome(&deps, &self.tenant, &self.sims).await;
        let (want, _ref_sims) = self.reference().await;
        // The documents finance acted on, by Ferry's document key.
        let moved: BTreeSet<String> = run
            .documents
            .iter()
            .filter(|(_, docs)| docs.iter().any(|d| self.moved_on.contains(xero_id(d))))
            .filter_map(|(r, _)| doc_key_of(r))
            .collect();
        // What staging holds for each summary group, to tell a stale line from a lost one.
        let mut staged: BTreeMap<String, String> = BTreeMap::new();
        for r in run.documents.keys() {
            if let Some(group) =
                doc_key_of(r).and_then(|k| k.strip_prefix("summary/").map(String::from))
                && let Ok(snap) = deps.staging.snapshot(&self.tenant, &group).await
            {
                let members: Vec<String> = snap
                    .members
                    .iter()
                    .map(|(m, line)| {
                        let l: Value = serde_json::from_str(line).unwrap_or_default();
                        format!(
                            "{} {}",
                            m.rsplit(':').next().unwrap_or(m),
                            norm(&l["quantity"])
                        )
                    })
                    .collect();
                staged.insert(
                    r.clone(),
                    format!(
                        "\n      staged (rev {}): {}",
                        snap.revision,
                        members.join(", ")
                    ),
                );
            }
        }
        let mut held = Vec::new();
        for (k, id) in &run.held_by {
            if !run.exceptions.iter().any(|e| &e.id == id) {
                let what = match deps.exceptions.get(&self.tenant, id).await {
                    Ok(Some(e)) => format!(
                        "{} ({} on {}, stage {}: {})",
                        e.status.as_str(),
                        e.reason,
                        e.source_key,
                        e.stage,
                        e.message
                    ),
                    Ok(None) => "unknown".to_string(),
                    Err(e) => format!("unreadable: {e}"),
                };
                held.push(format!(
                    "{k} is held by exception {id}, which is not open but {what}: nothing will move it"
                ));
            }
        }
        let v = &mut self.report.violations;
        v.append(&mut held);
        // Exactly one ERP document per source document and summary group.
        for (r, docs) in &run.documents {
            if docs.len() > 1 {
                v.push(format!(
                    "{} live Xero documents carry the reference {r}",
                    docs.len()
                ));
            }
        }
        for (name, n) in &run.contacts {
            if *n > 1 {
                v.push(format!("{n} Xero contacts are named {name}"));
            }
        }
        // Each document holds what the template makes of the newest PSA state,
        // unless finance moved it on and an exception says so.
        let refs: BTreeSet<&String> = run.documents.keys().chain(want.documents.keys()).collect();
        for r in refs {
            let got = run.documents.get(r).and_then(|d| d.first());
            let exp = want.documents.get(r).and_then(|d| d.first());
            let own = doc_key_of(r);
            let moved = own.as_ref().is_some_and(|k| moved.contains(k));
            if let (Some(g), Some(k)) = (got, &own) {
                let id = xero_id(g);
                if run.doc_keys.get(id) != Some(k) {
                    let points: Vec<&String> = run
                        .doc_keys
                        .iter()
                        .filter(|(_, d)| *d == k)
                        .map(|(erp, _)| erp)
                        .collect();
                    v.push(format!(
                        "Ferry's id map does not point {k} at the live Xero document {id} ({r}, {}); it points at {points:?}",
                        g["Status"]
                    ));
                }
            }
            let key = own.as_ref();
            let explained =
                moved && key.is_some_and(|k| run.exceptions.iter().any(|e| about(e, k)));
            match (got, exp) {
                (Some(g), Some(e)) if content(g) == content(e) => {}
                _ if explained => {}
                (Some(g), Some(e)) => v.push(format!(
                    "{r} differs from the newest PSA state{}:\n    Xero holds {}\n    template makes {}{}{}",
                    if moved {
                        format!(" (finance moved it on; no open exception about {key:?} says so)")
                    } else {
                        String::new()
                    },
                    content(g),
                    content(e),
                    group_records(&self.sims, r, &run, &want),
                    staged.get(r.as_str()).map(String::as_str).unwrap_or_default()
                )),
                (Some(g), None) => {
                    // A document nothing in the PSA accounts for any more may stay
                    // if it is empty; otherwise it is extra.
                    if !g["LineItems"].as_array().is_none_or(|l| l.is_empty()) {
                        v.push(format!(
                            "{r} is in Xero ({}) but the newest PSA state makes no such document{}",
                            g["Status"],
                            if moved { " (finance moved it on; no exception says so)" } else { "" }
                        ))
                    }
                }
                (None, Some(e)) => {
                    v.push(format!("{r} is missing from Xero: the template makes {}", content(e)))
                }
                (None, None) => {}
            }
        }
        // Every input ends in the state a fault-free run gives it.
        for (k, s) in &want.states {
            let got = run
                .states
                .get(k)
                .cloned()
                .unwrap_or_else(|| "absent".into());
            let same_kind = got.split(' ').next() == s.split(' ').next();
            if !same_kind && !got.starts_with("exception") {
                v.push(format!("{k} ended {got}; a fault-free run ends it {s}"));
            }
            if got == "pending" || got == "queued" || got == "absent" {
                v.push(format!("{k} has no final state ({got})"));
            }
        }
        for e in &run.exceptions {
            // The reason is a ReasonCode: never empty by its type.
            if e.message.trim().is_empty() {
                v.push(format!(
                    "exception {} on {} has no reason",
                    e.id, e.source_key
                ));
            }
        }
        // Exceptions a fault-free run does not raise must be about what finance did.
        let expected: BTreeSet<(&str, &str)> = want
            .exceptions
            .iter()
            .map(|e| (e.source_key.as_str(), e.reason.as_str()))
            .collect();
        for e in &run.exceptions {
            if expected.contains(&(e.source_key.as_str(), e.reason.as_str())) {
                continue;
            }
            if !moved.iter().any(|k| about(e, k)) {
                v.push(format!(
                    "an exception a fault-free run does not raise: {} on {} ({}): {}",
                    e.reason, e.source_key, e.stage, e.message
                ));
            }
        }
        if run.differences.len() > want.differences.len() {
            v.push(format!(
                "reconciliation leaves {} differences unexplained; a fault-free run {}:\n    {}",
                run.differences.len(),
                want.differences.len(),
                run.differences.join("\n    ")
            ));
        }
        // Payments reach the PSA once.
        for docs in run.documents.values() {
            for d in docs {
                let Some(id) = d["Reference"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("FERRY-I-"))
                    .and_then(|s| s.parse::<i64>().ok())
                else {
                    continue;
                };
                let written: Decimal = self
                    .sims
                    .cw
                    .payments(id)
                    .iter()
                    .map(|p| dec(&p["amount"]))
                    .sum();
                let paid = dec(&d["AmountPaid"]);
                if written != paid {
                    v.push(format!(
                        "invoice {id}: Xero has {paid} paid, ConnectWise was told {written}"
                    ));
                }
            }
        }
    }
}

/// Runs one seed to the end and checks it.
///
/// Run it on a current-thread runtime: every task (the HTTP servers too) then
/// shares one thread, and the thread's random generator — message ids, backoff
/// jitter, the simulators' ids — is seeded here, so a seed replays exactly.
pub async fn run(plan: &Plan) -> Report {
    fastrand::seed(plan.seed);
    let mut w = World::new(plan).await;
    w.trace(format!(
        "seed {}: {} records seeded, {} steps, poll pages of {}",
        plan.seed, w.report.records, plan.steps, w.settings.poll_page_size
    ));
    for _ in 0..plan.steps {
        w.step().await;
        w.watch_stall();
    }
    w.quiesce().await;
    w.check().await;
    w.report
}
