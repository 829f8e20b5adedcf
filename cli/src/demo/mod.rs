//! `ferry run`: the whole product on a laptop. Starts a PSA and an ERP
//! simulator (ConnectWise and Xero unless told otherwise; any pair on the
//! simulators' stage), seeds a 600-person firm, backfills it, then drives live
//! changes (through signed webhooks with duplicate and out-of-order deliveries
//! where the PSA sends them, by polling and sweeping where it does not),
//! records customer payments in the ERP, reconciles, and reports. Anything
//! unexplained makes the run fail.
//!
//! `stage` starts the pair and wires the tenant, `live` is what the firm's
//! people do during the run, `verdict` decides what is explained.

pub mod console;
mod live;
pub mod stage;
pub mod verdict;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{Datelike, Days, NaiveDate};
use ferry_canon::{Domain, TenantId};
use ferry_core::ports::{
    Clock, ExceptionQuery, ExceptionRecord, ExceptionStatus, QueueName, SystemClock,
};
use ferry_core::report::{self, RunSummary};
use ferry_core::template::Template;
use ferry_core::usecases::{intake, reconcile};
use ferry_embedded::host::{HostConfig, LocalHost, serve_webhooks};
use ferry_sim::demo::DemoSpec;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::local::{Local, LocalOptions};

/// What the demo does.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub members: usize,
    pub seed: u64,
    pub db: PathBuf,
    /// The month of the firm's time (its first day); `None`: the month before today's.
    pub month: Option<NaiveDate>,
    /// Progress bars on stderr.
    pub progress: bool,
    /// The PSA and ERP connectors to run on (simulated).
    pub psa: String,
    pub erp: String,
    /// Also leave the partner console's demo state in the database: two more
    /// customers synced beside the firm, the partners' directory, users.
    pub console_state: bool,
}

/// The pair `ferry run` runs on unless told otherwise.
pub const DEFAULT_PSA: &str = "connectwise";
pub const DEFAULT_ERP: &str = "xero";

/// The demo's result.
#[derive(Debug, Serialize)]
pub struct DemoOutcome {
    pub tenant: TenantId,
    pub psa: String,
    pub erp: String,
    pub summary: RunSummary,
    pub reconciliation: reconcile::Report,
    pub exceptions: Vec<ExceptionRecord>,
    pub expected_bad_records: usize,
    pub unexplained: Vec<String>,
    pub elapsed_seconds: u64,
    pub phases: Vec<(String, u64)>,
    pub db: PathBuf,
    /// Who can sign in to `ferry console --db <db>` (password
    /// [`console::DEMO_PASSWORD`]).
    pub console_users: Vec<console::DemoUser>,
}

fn bar(progress: bool, len: u64, msg: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{spinner} {msg:<28} [{bar:30}] {pos}/{len} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    b.set_message(msg.to_string());
    b.enable_steady_tick(Duration::from_millis(120));
    b
}

fn spinner(progress: bool, msg: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new_spinner();
    b.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
    );
    b.set_message(msg.to_string());
    b.enable_steady_tick(Duration::from_millis(120));
    b
}

/// Waits for the pipeline to settle, showing queue depths.
async fn settle(
    host: &LocalHost,
    local: &Local,
    tenant: &TenantId,
    progress: bool,
    what: &str,
) -> anyhow::Result<()> {
    let s = spinner(progress, what);
    let start = Instant::now();
    loop {
        let depths = host.depths().await;
        let get = |q: QueueName| {
            depths
                .iter()
                .find(|(n, _)| *n == q)
                .map(|(_, d)| d.total())
                .unwrap_or(0)
        };
        let counts = local.deps.ledger.counts(tenant).await?;
        let posted: u64 = counts
            .iter()
            .filter(|c| c.state == "posted")
            .map(|c| c.count)
            .sum();
        s.set_message(format!(
            "{what}: transform queue {}, post queue {}, posted {posted}",
            get(QueueName::Transform),
            get(QueueName::Post)
        ));
        if host.wait_idle(Duration::from_millis(600)).await.is_ok() {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the pipeline did not settle within 10 minutes: {depths:?}");
        }
    }
    s.finish_and_clear();
    Ok(())
}

/// The demo firm for `month` (its first day), or for the month before the
/// clock's today.
pub fn spec_for(month: Option<NaiveDate>, clock: &dyn Clock) -> DemoSpec {
    match month {
        Some(first) => DemoSpec {
            month: first,
            ..DemoSpec::for_today(first)
        },
        None => DemoSpec::for_today(clock.now().date_naive()),
    }
}

/// The months the demo can run on with `template` on the clock's today: from
/// the first whose every day the template's date bounds accept
/// (`bounds.max_days_back`) to the current one (a later month's time would be
/// dated in the future). Outside them the run could only end in exceptions
/// nobody can explain.
pub fn demo_months(template: &Template, clock: &dyn Clock) -> (NaiveDate, NaiveDate) {
    let today = clock.now().date_naive();
    let current = today.with_day(1).expect("the first of a month exists");
    let earliest = today
        .checked_sub_days(Days::new(template.bounds.max_days_back.into()))
        .unwrap_or(NaiveDate::MIN);
    let first = if earliest.day() == 1 {
        earliest
    } else {
        earliest.with_day(1).expect("a first day") + chrono::Months::new(1)
    };
    (first.min(current), current)
}

/// Refuses a demo month outside [`demo_months`], naming the ones it takes.
pub fn check_month(
    month: Option<NaiveDate>,
    template: &Template,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let (first, last) = demo_months(template, clock);
    match month {
        Some(m) if m > last => bail!(
            "--month {} is after the current month: the firm's time would be dated in the future; pick a month from {} to {}",
            m.format("%Y-%m"),
            first.format("%Y-%m"),
            last.format("%Y-%m"),
        ),
        Some(m) if m < first => bail!(
            "--month {} is older than the template accepts (bounds.max_days_back = {} days before today); pick a month from {} to {}",
            m.format("%Y-%m"),
            template.bounds.max_days_back,
            first.format("%Y-%m"),
            last.format("%Y-%m"),
        ),
        _ => Ok(()),
    }
}

/// Runs the demo.
pub async fn run(opts: &DemoOptions) -> anyhow::Result<DemoOutcome> {
    let template = stage::template(&opts.psa, &opts.erp)?;
    check_month(opts.month, &template, &SystemClock)?;
    // One process on a database at a time: a second demo would remove the
    // first one's state under it.
    let _lock = crate::process::WorkerLock::acquire(&opts.db)?;
    let started = Instant::now();
    let mut phases = Vec::new();
    let mut phase_start = Instant::now();
    let mut mark = |name: &str, at: &mut Instant| {
        phases.push((name.to_string(), at.elapsed().as_secs()));
        *at = Instant::now();
    };

    let spec = DemoSpec {
        members: opts.members,
        seed: opts.seed,
        ..spec_for(opts.month, &SystemClock)
    };
    let tenant = TenantId::parse("demo-firm").expect("valid slug");
    let pair = stage::Pair::start(&opts.psa, &opts.erp, &spec).await?;
    if opts.db.exists() {
        std::fs::remove_file(&opts.db).with_context(|| {
            format!("removing the previous demo database {}", opts.db.display())
        })?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", opts.db.display()));
        }
    }
    let local = Local::open(&LocalOptions {
        db: Some(opts.db.clone()),
        ..LocalOptions::default()
    })?;
    let cfg = pair.tenant_config(&tenant)?;
    local.add_tenant(&cfg, template, &pair.secrets()).await?;
    let edge = serve_webhooks(local.deps.clone(), "127.0.0.1:0".parse().expect("addr")).await?;
    let psa_pushes = pair
        .psa
        .subscribe(&edge.url(&opts.psa, tenant.as_str()))
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let erp_pushes = pair
        .erp
        .subscribe(&edge.url(&opts.erp, tenant.as_str()))
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    // Vendors whose subscriptions Ferry keeps itself are subscribed now.
    intake::subscribe_webhooks(&local.deps, &tenant, &edge.origin())
        .await
        .context("subscribing to the ERP's and PSA's webhooks")?;
    let host = LocalHost::start(local.deps.clone(), HostConfig::default());
    let run = Run {
        local: &local,
        host: &host,
        tenant: &tenant,
        pair: &pair,
        progress: opts.progress,
    };
    // The workers stop before any error is reported: a runtime shut down under
    // running workers panics instead of exiting with the error.
    let outcome = async {
        mark("start simulators and seed the firm", &mut phase_start);

        // Backfill: poll every domain from the beginning.
        let b = bar(
            opts.progress,
            pair.psa.records(),
            &format!("backfill: polling {}", opts.psa),
        );
        run.poll(Some(&b)).await?;
        b.finish_and_clear();
        run.settle("backfill: processing").await?;
        mark("backfill", &mut phase_start);

        // Live: the firm's people change things in the PSA.
        let live_since = local.clock.now();
        let fixed = live::people_work(&run, opts.seed).await?;
        if !psa_pushes {
            // A PSA without webhooks is read again, and swept for deletions.
            run.poll(None).await?;
            run.sweep().await?;
        }
        run.settle("live: processing changes").await?;
        mark("live changes", &mut phase_start);

        // Finance approves one project's summary invoice in the ERP; then an
        // entry on it gains half an hour in the PSA. An ERP that keeps an
        // approved invoice as it is (Xero) refuses the edit: an exception for
        // finance in the ERP's words, and reconciliation holds back that half
        // hour, nothing more. One that does not (NetSuite) takes it.
        let refused_edit = live::finance_approves_then_time_changes(&run).await?;
        if !psa_pushes {
            run.poll(None).await?;
        }
        run.settle("an edit to an invoice finance approved").await?;
        mark("finance approves, time changes", &mut phase_start);

        // Customers pay: most PSA invoices in full, a few in part. The ERP's
        // webhooks carry the status back to the PSA.
        live::customers_pay(&run).await?;
        if !erp_pushes {
            // An ERP without webhooks is swept for payments.
            intake::poll_erp_payments(&local.deps, &tenant)
                .await
                .context("sweeping the ERP for payments")?;
        }
        run.settle("payments flowing back").await?;
        mark("payments", &mut phase_start);

        let s = spinner(opts.progress, "reconciling");
        let reconciliation = reconcile::run(
            &local.deps,
            &tenant,
            pair.firm.period_start,
            pair.firm.period_end,
        )
        .await
        .context("reconciling")?;
        s.finish_and_clear();
        run.settle("reconciliation write-backs").await?;
        mark("reconciliation", &mut phase_start);

        let ctx = local.tenants.get(&tenant).expect("tenant wired");
        let erp = ctx.erp.as_ref();
        let summary = report::summarise(
            &local.deps,
            &tenant,
            live_since,
            &erp.account_key(),
            erp.limits().per_day,
        )
        .await?;
        let exceptions = local
            .deps
            .exceptions
            .list(&ExceptionQuery {
                tenant: Some(tenant.clone()),
                statuses: vec![
                    ExceptionStatus::Open,
                    ExceptionStatus::Retrying,
                    ExceptionStatus::Replayed,
                ],
                ..ExceptionQuery::default()
            })
            .await?;
        let expected = verdict::expected(&pair, fixed.as_deref(), refused_edit);
        let unexplained = verdict::unexplained(&summary, &reconciliation, &exceptions, &expected);

        let console_users = if opts.console_state {
            let users = console::leave_console_state(
                &local,
                &host,
                &opts.db,
                &tenant,
                (&opts.psa, &opts.erp),
                spec.clone(),
                opts.progress,
            )
            .await
            .context("leaving the console's demo state")?;
            mark("console: two more customers, users", &mut phase_start);
            users
        } else {
            Vec::new()
        };
        anyhow::Ok((
            summary,
            reconciliation,
            exceptions,
            expected.len(),
            unexplained,
            console_users,
        ))
    }
    .await;
    host.shutdown().await;
    drop(edge);
    let (summary, reconciliation, exceptions, expected_bad_records, unexplained, console_users) =
        outcome?;
    Ok(DemoOutcome {
        tenant,
        psa: opts.psa.clone(),
        erp: opts.erp.clone(),
        summary,
        reconciliation,
        exceptions,
        expected_bad_records,
        unexplained,
        elapsed_seconds: started.elapsed().as_secs(),
        phases,
        db: opts.db.clone(),
        console_users,
    })
}

/// One demo run's parts, for the phases to share.
pub(crate) struct Run<'a> {
    local: &'a Local,
    host: &'a LocalHost,
    tenant: &'a TenantId,
    pair: &'a stage::Pair,
    progress: bool,
}

impl Run<'_> {
    async fn settle(&self, what: &str) -> anyhow::Result<()> {
        settle(self.host, self.local, self.tenant, self.progress, what).await
    }

    /// Polls every domain from the tenant's cursors; `bar` counts the records.
    async fn poll(&self, bar: Option<&ProgressBar>) -> anyhow::Result<()> {
        let ctx = self.local.tenants.get(self.tenant).expect("tenant wired");
        for domain in ctx.psa.pollable() {
            let b = bar.cloned().unwrap_or_else(ProgressBar::hidden);
            intake::poll(&self.local.deps, self.tenant, domain, &move |n| {
                b.inc(n as u64)
            })
            .await
            .with_context(|| format!("polling {domain}"))?;
        }
        Ok(())
    }

    /// Sweeps the PSA for records deleted since the month before the firm's.
    async fn sweep(&self) -> anyhow::Result<()> {
        let ctx = self.local.tenants.get(self.tenant).expect("tenant wired");
        let since = self.pair.firm.period_start - Days::new(31);
        for domain in ctx.psa.swept() {
            intake::sweep_deletions(&self.local.deps, self.tenant, domain, since)
                .await
                .with_context(|| format!("sweeping {domain} for deletions"))?;
        }
        Ok(())
    }
}

/// Domains in the order the summary lists them.
pub fn summary_domains() -> Vec<Domain> {
    vec![
        Domain::Customers,
        Domain::Projects,
        Domain::TimeEntries,
        Domain::Expenses,
        Domain::Invoices,
        Domain::CreditMemos,
        Domain::Payments,
    ]
}
