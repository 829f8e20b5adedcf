//! One module per `ferry` command: its arguments and what it does. Shared
//! helpers (opening the store, polling, printing) live here.

pub(crate) mod admin;
pub(crate) mod console;
pub(crate) mod demos;
pub(crate) mod exceptions;
pub(crate) mod preview;
pub(crate) mod reconciliation;
pub(crate) mod sim;
pub(crate) mod sync;
pub(crate) mod template;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use ferry_canon::{Domain, TenantId};
use ferry_cli::demo::{self, DemoOptions};
use ferry_cli::local::{Local, LocalOptions, Simulators, repo_dir};
use ferry_cli::preview::RecordingErp;
use ferry_cli::render;
use ferry_connectors::tenant::TenantConfig;
use ferry_core::ports::{ExceptionQuery, ExceptionStatus, Owner, SystemClock};
use ferry_core::template::{Template, TemplateSource};
use ferry_core::usecases::{intake, reconcile, retry};
use ferry_embedded::host::{HostConfig, LocalHost, serve_webhooks};
use ferry_sim::demo::DemoSpec;

pub(crate) fn parse_domain(s: &str) -> Result<Domain, String> {
    Domain::parse(s).ok_or_else(|| {
        format!(
            "unknown domain {s:?}; one of {}",
            Domain::ALL.map(|d| d.as_str()).join(", ")
        )
    })
}

pub(crate) fn parse_month(s: &str) -> Result<NaiveDate, String> {
    let shaped = s.len() == 7
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shaped
        .then(|| NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| format!("not a month {s:?}; write it as YYYY-MM, e.g. 2026-10"))
}

pub(crate) fn parse_owner(s: &str) -> Result<Owner, String> {
    Owner::parse(s)
        .ok_or_else(|| format!("unknown owner {s:?}; one of project_operations, finance, support"))
}

pub(crate) fn parse_status(s: &str) -> Result<ExceptionStatus, String> {
    ExceptionStatus::parse(s)
        .ok_or_else(|| format!("unknown status {s:?}; one of retrying, open, replayed, resolved"))
}

pub(crate) fn open(db: &std::path::Path) -> anyhow::Result<Local> {
    Local::open(&LocalOptions {
        db: Some(db.to_path_buf()),
        ..LocalOptions::default()
    })
    .with_context(|| format!("opening {}", db.display()))
}

/// Opens a database that must already hold Ferry's state (commands that read
/// it or a tenant's secrets): a path that names no database is a typo to
/// report, not an empty database to create.
pub(crate) fn open_existing(db: &std::path::Path) -> anyhow::Result<Local> {
    if !db.is_file() {
        anyhow::bail!(
            "no Ferry database at {} (`ferry sync`, `ferry sim` or `ferry secret-set` creates one; --db names another)",
            db.display()
        );
    }
    open(db)
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(crate) async fn settle(host: &LocalHost) -> anyhow::Result<()> {
    host.wait_idle(Duration::from_secs(1800))
        .await
        .map_err(|b| anyhow::anyhow!("the pipeline did not settle: {b}"))
}

pub(crate) async fn poll_all(
    local: &Local,
    tenant: &TenantId,
    domains: &[Domain],
    progress: bool,
) -> anyhow::Result<()> {
    let ctx = local.tenants.get(tenant).context("tenant not wired")?;
    let domains = if domains.is_empty() {
        ctx.psa.pollable()
    } else {
        domains.to_vec()
    };
    // A poll or sweep the vendor or the shared budget throttles waits the
    // time named, up to this much in all: a sync on a busy account finishes
    // late rather than failing.
    let mut patience = ferry_core::gate::Patience::new(local.deps.settings.reconcile_budget_wait);
    for d in domains {
        let bar = if progress {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_message(format!("polling {d}"));
        let b = bar.clone();
        let count = std::sync::atomic::AtomicU64::new(0);
        let on_page = move |n: usize| {
            let total = count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed) + n as u64;
            b.set_message(format!("polling {d}: {total} records"));
            b.tick();
        };
        let r = patience
            .call("polling", || intake::poll(&local.deps, tenant, d, &on_page))
            .await
            .with_context(|| format!("polling {d}"))?;
        bar.finish_and_clear();
        eprintln!("polled {d}: {} records in {} pages", r.enqueued, r.pages);
    }
    let since = local.clock.now().date_naive() - chrono::Days::new(intake::DELETION_SWEEP_DAYS);
    for d in ctx.psa.swept() {
        let r = patience
            .call("sweeping for deletions", || {
                intake::sweep_deletions(&local.deps, tenant, d, since)
            })
            .await
            .with_context(|| format!("sweeping {d} for deletions"))?;
        eprintln!(
            "swept {d} for deletions: {} compared, {} gone from the PSA",
            r.compared, r.enqueued
        );
    }
    let r = patience
        .call("sweeping ERP payments", || {
            intake::poll_erp_payments(&local.deps, tenant)
        })
        .await
        .context("sweeping ERP payments")?;
    eprintln!(
        "swept ERP invoices for payments: {} to write back",
        r.enqueued
    );
    Ok(())
}

#[derive(Args)]
pub(crate) struct TenantArgs {
    /// The tenant file (`tenant.toml`).
    #[arg(long, short = 't')]
    pub(crate) tenant_config: PathBuf,
    /// The local database (SQLite): Ferry's state and the tenant's secrets.
    #[arg(long, default_value = ".ferry/ferry.db")]
    pub(crate) db: PathBuf,
}
