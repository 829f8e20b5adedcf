//! `ferry run`: the whole product on a laptop. Starts the ConnectWise and Xero
//! simulators, seeds a 600-person firm, backfills it, then drives live changes
//! through signed webhooks (with duplicate and out-of-order deliveries), records
//! customer payments in Xero, reconciles, and reports. Anything unexplained makes
//! the run fail.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Days, NaiveDate};
use ferry_canon::{Domain, TenantId};
use ferry_core::ports::{
    Clock, ExceptionQuery, ExceptionRecord, ExceptionStatus, QueueName, SystemClock,
};
use ferry_core::report::{self, RunSummary};
use ferry_core::template::{Template, TemplateSource};
use ferry_core::usecases::{intake, reconcile};
use ferry_embedded::host::{HostConfig, LocalHost, serve_webhooks};
use ferry_sim::connectwise::{CwFaults, Kind};
use ferry_sim::demo::DemoSpec;
use indicatif::{ProgressBar, ProgressStyle};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;

use crate::local::{Local, LocalOptions, Simulators, repo_dir};

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
}

/// The demo's result.
#[derive(Debug, Serialize)]
pub struct DemoOutcome {
    pub tenant: TenantId,
    pub summary: RunSummary,
    pub reconciliation: reconcile::Report,
    pub exceptions: Vec<ExceptionRecord>,
    pub expected_bad_records: usize,
    pub unexplained: Vec<String>,
    pub elapsed_seconds: u64,
    pub phases: Vec<(String, u64)>,
    pub db: PathBuf,
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

/// Runs the demo.
pub async fn run(opts: &DemoOptions) -> anyhow::Result<DemoOutcome> {
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
    let sims = Simulators::start(&spec)
        .await
        .context("starting the simulators")?;
    let tenant = TenantId::parse("demo-firm").expect("valid slug");
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
    let repo = repo_dir();
    let base = TemplateSource::read(&repo.join("templates/connectwise-xero.toml"))?;
    let overlay = TemplateSource::read(&repo.join("tenants/demo-firm/template.toml"))?;
    let template = Template::load(&base, Some(&overlay))?;
    let cfg = sims.tenant_config(&tenant, &repo.join("templates"));
    local.add_tenant(&cfg, template, &sims.secrets()).await?;
    let edge = serve_webhooks(local.deps.clone(), "127.0.0.1:0".parse().expect("addr")).await?;
    sims.subscribe(
        &edge.url("connectwise", tenant.as_str()),
        &edge.url("xero", tenant.as_str()),
    )
    .await
    .context("subscribing to the simulators' webhooks")?;
    let host = LocalHost::start(local.deps.clone(), HostConfig::default());
    // The workers stop before any error is reported: a runtime shut down under
    // running workers panics instead of exiting with the error.
    let outcome = async {
        mark("start simulators and seed the firm", &mut phase_start);

        // Backfill: poll every domain from the beginning.
        let ctx = local.tenants.get(&tenant).expect("tenant wired");
        let total = (sims.firm.companies.len()
            + sims.firm.projects.len()
            + sims.firm.time.len()
            + sims.firm.expenses.len()
            + sims.firm.invoices.len()) as u64;
        let b = bar(opts.progress, total, "backfill: polling ConnectWise");
        for domain in ctx.psa.pollable() {
            let bb = b.clone();
            intake::poll(&local.deps, &tenant, domain, &move |n| bb.inc(n as u64))
                .await
                .with_context(|| format!("polling {domain}"))?;
        }
        b.finish_and_clear();
        settle(
            &host,
            &local,
            &tenant,
            opts.progress,
            "backfill: processing",
        )
        .await?;
        mark("backfill", &mut phase_start);

        // Live: changes in ConnectWise arrive as signed callbacks.
        let live_since = local.clock.now();
        let cw = &sims.cw;
        let mut rng = fastrand::Rng::with_seed(opts.seed ^ 0x5eed);
        let time = cw.all(Kind::Time);
        let pending: Vec<i64> = time
            .iter()
            .filter(|t| t["status"] == "PendingApproval")
            .filter_map(|t| t["id"].as_i64())
            .take(20)
            .collect();
        let month = sims.firm.period_start.format("%Y-%m").to_string();
        let bad: Vec<i64> = sims.firm.bad.iter().map(|b| b.id).collect();
        let approved: Vec<i64> = time
            .iter()
            .filter(|t| {
                t["status"] == "ApprovedByTierTwo"
                    && t["billableOption"] == "Billable"
                    && t["actualHours"].is_number()
            })
            .filter(|t| {
                t["timeStart"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(&month))
            })
            .filter_map(|t| t["id"].as_i64())
            .filter(|id| !bad.contains(id))
            .collect();
        let live = bar(opts.progress, 60, "live: webhooks");
        sims.firm.add_late(cw).await;
        cw.set_faults(CwFaults {
            duplicate_callbacks: true,
            ..CwFaults::default()
        });
        for id in &pending {
            cw.update(Kind::Time, *id, |t| {
                t["status"] = json!("ApprovedByTierTwo")
            })
            .await;
            live.inc(1);
        }
        cw.set_faults(CwFaults {
            reorder_callbacks: true,
            ..CwFaults::default()
        });
        for _ in 0..10 {
            let id = approved[rng.usize(0..approved.len())];
            cw.update(Kind::Time, id, |t| {
                let h = t["actualHours"]
                    .as_number()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                let h = Decimal::from_str(&h).unwrap_or(Decimal::ONE) + Decimal::new(5, 1);
                t["actualHours"] = ferry_sim::num(h.min(Decimal::from(12)));
            })
            .await;
            live.inc(1);
        }
        cw.flush_held().await;
        cw.set_faults(CwFaults::default());
        let templates: Vec<serde_json::Value> = approved
            .iter()
            .take(25)
            .filter_map(|id| cw.get(Kind::Time, *id))
            .collect();
        for t in templates {
            let mut n = t.clone();
            if let Some(o) = n.as_object_mut() {
                o.remove("id");
                o.remove("_info");
            }
            let day = sims.firm.period_end - Days::new(rng.u64(0..5));
            n["timeStart"] = json!(format!("{day}T16:00:00Z"));
            n["actualHours"] = ferry_sim::num(Decimal::new(100 + 25 * rng.i64(0..12), 2));
            n["notes"] = json!("late entry");
            cw.create(Kind::Time, n).await;
            live.inc(1);
        }
        for id in approved.iter().rev().take(3) {
            cw.delete(Kind::Time, *id).await;
            live.inc(1);
        }
        let fixed = sims
            .firm
            .bad
            .iter()
            .find(|b| b.expect_reason == "validation.hours_out_of_range")
            .map(|b| b.id);
        if let Some(id) = fixed {
            cw.update(Kind::Time, id, |t| t["actualHours"] = json!(2.5))
                .await;
            live.inc(1);
        }
        live.finish_and_clear();
        settle(
            &host,
            &local,
            &tenant,
            opts.progress,
            "live: processing webhooks",
        )
        .await?;
        mark("live webhooks", &mut phase_start);

        // Finance approves one project's summary invoice in Xero; then an entry
        // on it gains half an hour in ConnectWise. Xero keeps an approved invoice
        // as it is: the edit is an exception for finance in Xero's words, and
        // reconciliation holds back that half hour, nothing more.
        let refused_edit = finance_approves_then_time_changes(&sims, &approved).await?;
        if refused_edit.is_some() {
            settle(
                &host,
                &local,
                &tenant,
                opts.progress,
                "an edit to an invoice finance approved",
            )
            .await?;
        }
        mark("finance approves, time changes", &mut phase_start);

        // Customers pay: most PSA invoices in full, a few in part. Xero's webhooks carry
        // the status back to ConnectWise.
        let payable: Vec<serde_json::Value> = sims
            .xero
            .invoices()
            .into_iter()
            .filter(|i| i["Status"] == "AUTHORISED")
            .collect();
        let pay = bar(
            opts.progress,
            payable.len().min(18) as u64,
            "payments recorded in Xero",
        );
        for (n, inv) in payable.iter().take(18).enumerate() {
            let total = inv["Total"]
                .as_number()
                .and_then(|x| Decimal::from_str(&x.to_string()).ok())
                .unwrap_or_default();
            let amount = if n % 6 == 5 {
                (total / Decimal::from(2)).round_dp(2)
            } else {
                total
            };
            if let Some(id) = inv["InvoiceID"].as_str() {
                sims.xero
                    .pay_invoice(id, amount, sims.firm.period_end)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("recording a payment in the Xero simulator: {e}")
                    })?;
            }
            pay.inc(1);
        }
        pay.finish_and_clear();
        settle(
            &host,
            &local,
            &tenant,
            opts.progress,
            "payments flowing back",
        )
        .await?;
        mark("payments", &mut phase_start);

        let s = spinner(opts.progress, "reconciling");
        let reconciliation = reconcile::run(
            &local.deps,
            &tenant,
            sims.firm.period_start,
            sims.firm.period_end,
        )
        .await
        .context("reconciling")?;
        s.finish_and_clear();
        settle(
            &host,
            &local,
            &tenant,
            opts.progress,
            "reconciliation write-backs",
        )
        .await?;
        mark("reconciliation", &mut phase_start);

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

        // Everything must be explained.
        let mut unexplained = Vec::new();
        let total = summary.total();
        if total.in_flight > 0 {
            unexplained.push(format!(
                "{} inputs never reached a final state",
                total.in_flight
            ));
        }
        for m in &reconciliation.missing {
            unexplained.push(format!("reconciliation: {m}"));
        }
        for u in &reconciliation.unaccounted {
            unexplained.push(format!("reconciliation: {u}"));
        }
        for r in &reconciliation.rows {
            for m in &r.mismatches {
                unexplained.push(format!(
                    "reconciliation: {} {} {} {}: PSA {} vs ERP {} ({} unexplained)",
                    r.key.project,
                    r.key.period,
                    r.key.currency,
                    m.measure,
                    m.psa,
                    m.erp,
                    m.unexplained
                ));
            }
        }
        // Every exception the run should raise: one per seeded bad record (but
        // the one fixed live), and the edit finance's approval refused.
        let expected: Vec<(String, &str, String)> = sims
            .firm
            .bad
            .iter()
            .filter(|b| Some(b.id) != fixed)
            .map(|b| (b.record_key(), b.expect_reason, b.what.clone()))
            .chain(refused_edit.map(|doc| {
                (
                    doc,
                    "erp.validation",
                    "an edit to a summary invoice finance approved in Xero".to_string(),
                )
            }))
            .collect();
        for (key, reason, what) in &expected {
            match exceptions.iter().find(|e| &e.source_key == key) {
                Some(e) if e.reason == *reason => {}
                Some(e) => unexplained.push(format!(
                    "{what}: expected {reason} but got {} ({})",
                    e.reason, e.message
                )),
                None => unexplained.push(format!("{what}: no exception was raised")),
            }
        }
        for e in &exceptions {
            let known = expected.iter().any(|(key, _, _)| key == &e.source_key);
            if !known {
                unexplained.push(format!(
                    "unexpected exception {} on {}: {}",
                    e.reason, e.source_key, e.message
                ));
            }
        }

        anyhow::Ok((
            summary,
            reconciliation,
            exceptions,
            expected.len(),
            unexplained,
        ))
    }
    .await;
    host.shutdown().await;
    drop(edge);
    let (summary, reconciliation, exceptions, expected_bad_records, unexplained) = outcome?;
    Ok(DemoOutcome {
        tenant,
        summary,
        reconciliation,
        exceptions,
        expected_bad_records,
        unexplained,
        elapsed_seconds: started.elapsed().as_secs(),
        phases,
        db: opts.db.clone(),
    })
}

/// Approves the summary invoice of the first live-approved entry's project in
/// Xero, as finance would, then adds half an hour to that entry in ConnectWise.
/// Returns the summary's document key, whose edit Xero will refuse.
async fn finance_approves_then_time_changes(
    sims: &crate::local::Simulators,
    approved: &[i64],
) -> anyhow::Result<Option<String>> {
    let cw = &sims.cw;
    let Some((entry, project)) = approved.iter().find_map(|id| {
        let t = cw.get(Kind::Time, *id)?;
        Some((*id, t["project"]["id"].as_i64()?))
    }) else {
        return Ok(None);
    };
    let month = sims.firm.period_start;
    let reference = format!("FERRY-S-project_billing-{project}-{}", month.format("%Y%m"));
    let Some(invoice) = sims
        .xero
        .invoices()
        .into_iter()
        .find(|i| i["Reference"] == reference.as_str() && i["Status"] == "DRAFT")
    else {
        return Ok(None);
    };
    let id = invoice["InvoiceID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    sims.xero
        .authorise(&id)
        .await
        .map_err(|e| anyhow::anyhow!("approving {reference} in the Xero simulator: {e}"))?;
    cw.update(Kind::Time, entry, |t| {
        let h = t["actualHours"]
            .as_number()
            .and_then(|n| Decimal::from_str(&n.to_string()).ok())
            .unwrap_or(Decimal::ONE);
        t["actualHours"] = ferry_sim::num(h + Decimal::new(5, 1));
    })
    .await;
    Ok(Some(format!(
        "summary/project_billing/connectwise:{project}/{}",
        month.format("%Y-%m")
    )))
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
