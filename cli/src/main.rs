//! `ferry`: run Ferry locally, preview, validate templates, work exceptions,
//! reconcile. Every command that reads state takes `--db` (default
//! `.ferry/ferry.db`); tenant commands take the tenant file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};
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

#[derive(Parser)]
#[command(name = "ferry", version, about = "Ferry: PSA-to-ERP integration, exactly once in effect.", long_about = None)]
struct Cli {
    /// Log filter (tracing env-filter syntax), e.g. `info` or `ferry_core=debug`.
    #[arg(long, global = true, env = "FERRY_LOG", default_value = "warn")]
    log: String,
    /// Log format.
    #[arg(long, global = true, env = "FERRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// The demo (`make run`): simulators, a 600-person firm, backfill, live webhooks, payments, reconciliation, summary.
    Run(RunArgs),
    /// The flow against real software (`make run-real`): Redmine and Tryton on loopback, seeded, synced, reconciled.
    RunReal(RunRealArgs),
    /// Start the ConnectWise and Xero simulators with the demo firm, write a tenant file for them, and wait.
    Sim(SimArgs),
    /// Sync one tenant locally: poll every domain, process until settled, print the summary.
    Sync(SyncArgs),
    /// Show the ERP documents a sync would post, without posting anything.
    Preview(PreviewArgs),
    /// Mapping templates.
    #[command(subcommand)]
    Template(TemplateCmd),
    /// Exceptions: list, show, replay.
    #[command(subcommand)]
    Exceptions(ExceptionsCmd),
    /// Reconcile a period: control totals from both systems, payment status back to the PSA.
    Reconcile(ReconcileArgs),
    /// Store a tenant secret in the local database (Secrets Manager holds them on AWS).
    SecretSet(SecretArgs),
    /// Deploy one customer's stack from infra/partners/ (`--dry-run`: print the plan only).
    Deploy(DeployArgs),
    /// The connectors Ferry has: side, tenant-file table, secrets, webhooks.
    Connectors {
        #[arg(long)]
        json: bool,
    },
    /// Print (or `--write`) the canonical model's JSON Schema.
    Schema {
        #[arg(long)]
        write: bool,
    },
}

#[derive(Args)]
struct RunRealArgs {
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
    /// Keep Ferry's state in this SQLite file (in memory when absent).
    #[arg(long)]
    db: Option<PathBuf>,
}

#[derive(Args)]
struct DeployArgs {
    /// The partner (a folder under infra/partners/).
    #[arg(long)]
    partner: String,
    /// The customer (infra/partners/<partner>/customers/<customer>.toml).
    #[arg(long)]
    customer: String,
    /// The infrastructure folder.
    #[arg(long, default_value = "infra")]
    infra: PathBuf,
    /// Print what would be deployed, with the rendered parameters; touch nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RunArgs {
    /// People in the demo firm.
    #[arg(long, default_value_t = 600)]
    members: usize,
    /// Seed for the demo data.
    #[arg(long, default_value_t = 20261125)]
    seed: u64,
    /// Where the demo's state is kept (recreated on every run).
    #[arg(long, default_value = ".ferry/demo.db")]
    db: PathBuf,
    /// The month the firm's time and expenses fall in, as YYYY-MM (default: the
    /// month before today's, by the clock).
    #[arg(long, value_parser = parse_month, value_name = "YYYY-MM")]
    month: Option<chrono::NaiveDate>,
    /// Print the result as JSON instead of the report.
    #[arg(long)]
    json: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct SimArgs {
    /// Where to write `tenant.toml`.
    #[arg(long, default_value = ".ferry/sim")]
    dir: PathBuf,
    /// The local database that receives the tenant's secrets.
    #[arg(long, default_value = ".ferry/ferry.db")]
    db: PathBuf,
    #[arg(long, default_value_t = 600)]
    members: usize,
    /// The month the firm's time and expenses fall in, as YYYY-MM (default: the
    /// month before today's, by the clock).
    #[arg(long, value_parser = parse_month, value_name = "YYYY-MM")]
    month: Option<chrono::NaiveDate>,
    /// Serve the ConnectWise simulator on this address instead of a free port
    /// (`make invoke-intake` uses 127.0.0.1:8401, the key URL the sample callback names).
    #[arg(long, value_name = "ADDR")]
    connectwise_addr: Option<SocketAddr>,
    /// Also provision an AWS stack named PREFIX (table, queues, bus, the tenant's
    /// secret) where AWS_ENDPOINT_URL points (moto), and write `lambda.env` for
    /// `cargo lambda watch --env-file`. Used by `make invoke-<function>`.
    #[arg(long, value_name = "PREFIX")]
    aws: Option<String>,
}

#[derive(Args)]
struct TenantArgs {
    /// The tenant file (`tenant.toml`).
    #[arg(long, short = 't')]
    tenant_config: PathBuf,
    #[arg(long, default_value = ".ferry/ferry.db")]
    db: PathBuf,
}

#[derive(Args)]
struct SyncArgs {
    #[command(flatten)]
    tenant: TenantArgs,
    /// Only these domains (default: every domain the PSA can poll).
    #[arg(long, value_parser = parse_domain)]
    domain: Vec<Domain>,
    /// Also serve webhooks on this address and keep running (Ctrl-C to stop).
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PreviewArgs {
    #[command(flatten)]
    tenant: TenantArgs,
    #[arg(long, value_parser = parse_domain)]
    domain: Vec<Domain>,
    /// Show at most this many documents in full.
    #[arg(long, default_value_t = 5)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum TemplateCmd {
    /// Check a template (partner base, optionally with a customer override).
    /// With `-t tenant.toml`: the tenant's templates, and then the values its
    /// PSA uses (customers, and records dated from `--from` to `--to`, by
    /// default last month) that no value map covers; exit 1 if there are any.
    Validate {
        base: Option<PathBuf>,
        #[arg(long = "override")]
        overlay: Option<PathBuf>,
        /// The tenant file: check its templates against its PSA's data.
        #[arg(long = "tenant-config", short = 't')]
        tenant_config: Option<PathBuf>,
        #[arg(long, default_value = ".ferry/ferry.db")]
        db: PathBuf,
        #[arg(long)]
        from: Option<NaiveDate>,
        #[arg(long)]
        to: Option<NaiveDate>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct DbTenant {
    #[arg(long, default_value = ".ferry/ferry.db")]
    db: PathBuf,
    #[arg(long)]
    tenant: TenantId,
}

#[derive(Subcommand)]
enum ExceptionsCmd {
    /// List exceptions (open and retrying by default).
    List {
        #[command(flatten)]
        at: DbTenant,
        #[arg(long, value_parser = parse_status)]
        status: Vec<ExceptionStatus>,
        #[arg(long, value_parser = parse_owner)]
        owner: Option<Owner>,
        #[arg(long, value_parser = parse_domain)]
        domain: Option<Domain>,
        #[arg(long)]
        json: bool,
    },
    /// Show one exception with the message it will replay.
    Show {
        #[command(flatten)]
        at: DbTenant,
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Put exceptions back into the pipeline (the next `ferry sync` processes them).
    Replay {
        #[command(flatten)]
        at: DbTenant,
        /// The exception to replay; or use --all with optional filters.
        id: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, value_parser = parse_owner)]
        owner: Option<Owner>,
        #[arg(long, value_parser = parse_domain)]
        domain: Option<Domain>,
    },
}

#[derive(Args)]
struct ReconcileArgs {
    #[command(flatten)]
    tenant: TenantArgs,
    #[arg(long)]
    from: NaiveDate,
    #[arg(long)]
    to: NaiveDate,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SecretArgs {
    #[arg(long, default_value = ".ferry/ferry.db")]
    db: PathBuf,
    #[arg(long)]
    tenant: TenantId,
    /// e.g. `connectwise.private_key`, `xero.access_token`.
    name: String,
    value: String,
}

fn parse_domain(s: &str) -> Result<Domain, String> {
    Domain::parse(s).ok_or_else(|| {
        format!(
            "unknown domain {s:?}; one of {}",
            Domain::ALL.map(|d| d.as_str()).join(", ")
        )
    })
}

fn parse_month(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
        .map_err(|_| format!("not a month {s:?}; write it as YYYY-MM, e.g. 2026-10"))
}

fn parse_owner(s: &str) -> Result<Owner, String> {
    Owner::parse(s)
        .ok_or_else(|| format!("unknown owner {s:?}; one of project_operations, finance, support"))
}

fn parse_status(s: &str) -> Result<ExceptionStatus, String> {
    ExceptionStatus::parse(s)
        .ok_or_else(|| format!("unknown status {s:?}; one of retrying, open, replayed, resolved"))
}

fn init_logging(filter: &str, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// `ferry template validate -t tenant.toml`: the tenant's templates load, and
/// the PSA values no value map covers.
async fn template_coverage(
    path: &std::path::Path,
    db: &std::path::Path,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let local = open(db)?;
    let tenant = local.add_tenant_file(path).await?;
    let ctx = local.tenants.get(&tenant).context("tenant wired")?;
    let (first, last) = ferry_core::ports::previous_month(local.clock.now().date_naive());
    let (from, to) = (from.unwrap_or(first), to.unwrap_or(last));
    if !json {
        eprintln!(
            "{} is valid; reading {}'s PSA records from {from} to {to} …",
            ctx.template.version, tenant
        );
    }
    let coverage =
        ferry_core::usecases::coverage::unmapped_values(&local.deps, &ctx, from, to).await?;
    if json {
        print_json(&serde_json::json!({
            "valid": true,
            "version": ctx.template.version,
            "from": from,
            "to": to,
            "coverage": coverage,
        }))?;
    } else {
        let read: Vec<String> = coverage
            .records_read
            .iter()
            .map(|(d, n)| format!("{n} {d}"))
            .collect();
        println!("read {}", read.join(", "));
        if coverage.unmapped.is_empty() {
            println!("every value the PSA uses is covered by the value maps");
        } else {
            println!("PSA values no value map covers (each would be an exception at sync):");
            for u in &coverage.unmapped {
                println!(
                    "  {} {:?} (read by {}): {} record{}, e.g. {}",
                    u.map,
                    u.value,
                    u.used_by,
                    u.records,
                    if u.records == 1 { "" } else { "s" },
                    u.example
                );
            }
        }
    }
    Ok(if coverage.unmapped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn open(db: &std::path::Path) -> anyhow::Result<Local> {
    Local::open(&LocalOptions {
        db: Some(db.to_path_buf()),
        ..LocalOptions::default()
    })
    .with_context(|| format!("opening {}", db.display()))
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn settle(host: &LocalHost) -> anyhow::Result<()> {
    host.wait_idle(Duration::from_secs(1800))
        .await
        .map_err(|b| anyhow::anyhow!("the pipeline did not settle: {b}"))
}

async fn poll_all(
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
    for d in domains {
        let bar = if progress {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_message(format!("polling {d}"));
        let b = bar.clone();
        let count = std::sync::atomic::AtomicU64::new(0);
        let r = intake::poll(&local.deps, tenant, d, &move |n| {
            let total = count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed) + n as u64;
            b.set_message(format!("polling {d}: {total} records"));
            b.tick();
        })
        .await
        .with_context(|| format!("polling {d}"))?;
        bar.finish_and_clear();
        eprintln!("polled {d}: {} records in {} pages", r.enqueued, r.pages);
    }
    let since = local.clock.now().date_naive() - chrono::Days::new(intake::DELETION_SWEEP_DAYS);
    for d in ctx.psa.swept() {
        let r = intake::sweep_deletions(&local.deps, tenant, d, since)
            .await
            .with_context(|| format!("sweeping {d} for deletions"))?;
        eprintln!(
            "swept {d} for deletions: {} compared, {} gone from the PSA",
            r.compared, r.enqueued
        );
    }
    let r = intake::poll_erp_payments(&local.deps, tenant)
        .await
        .context("sweeping ERP payments")?;
    eprintln!(
        "swept ERP invoices for payments: {} to write back",
        r.enqueued
    );
    Ok(())
}

async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_format);
    match cli.cmd {
        Cmd::Run(a) => {
            let outcome = demo::run(&DemoOptions {
                members: a.members,
                seed: a.seed,
                month: a.month,
                db: a.db,
                progress: !a.quiet && !a.json,
            })
            .await?;
            if a.json {
                print_json(&outcome)?;
            } else {
                print!("{}", render::demo(&outcome));
            }
            Ok(if outcome.unexplained.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::RunReal(a) => {
            let outcome = ferry_cli::real::run(a.db, !a.json).await?;
            if a.json {
                print_json(&outcome)?;
            } else {
                print!("{}", render::real(&outcome));
            }
            Ok(if outcome.unexplained.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Sim(a) => {
            let spec = DemoSpec {
                members: a.members,
                ..demo::spec_for(a.month, &SystemClock)
            };
            let sims = Simulators::start_on(&spec, a.connectwise_addr)
                .await
                .with_context(|| match a.connectwise_addr {
                    Some(addr) => format!("starting the ConnectWise simulator on {addr}"),
                    None => "starting the simulators".into(),
                })?;
            let tenant = TenantId::parse("demo-firm").expect("valid");
            std::fs::create_dir_all(&a.dir)?;
            let repo = repo_dir();
            let mut cfg = sims.tenant_config(&tenant, &repo.join("templates"));
            cfg.template.overlay = Some(repo.join("tenants/demo-firm/template.toml"));
            let text = ferry_cli::local::tenant_file(&cfg);
            let path = a.dir.join("tenant.toml");
            std::fs::write(&path, text)?;
            let local = open(&a.db)?;
            for (name, value) in sims.secrets() {
                local.store.secrets.set(&tenant, name, &value)?;
            }
            if let Some(prefix) = &a.aws {
                let env_file = aws_sim_stack(prefix, &tenant, &sims, &path, &a.dir).await?;
                println!("AWS stack {prefix}:   {}", env_file.display());
            }
            println!("ConnectWise simulator: {}", sims.cw.base_url());
            println!("Xero simulator:        {}", sims.xero.base_url());
            println!("Tenant file:           {}", path.display());
            println!("Secrets stored in:     {}", a.db.display());
            println!(
                "\nIn another shell: ferry sync --tenant-config {} --db {}",
                path.display(),
                a.db.display()
            );
            println!("Ctrl-C stops the simulators.");
            tokio::signal::ctrl_c().await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sync(a) => {
            let _lock = ferry_cli::process::WorkerLock::acquire(&a.tenant.db)?;
            let local = open(&a.tenant.db)?;
            let tenant = local.add_tenant_file(&a.tenant.tenant_config).await?;
            let host = LocalHost::start(local.deps.clone(), HostConfig::default());
            let since = local.clock.now();
            let work = async {
                poll_all(&local, &tenant, &a.domain, !a.json).await?;
                settle(&host).await?;
                if let Some(addr) = a.listen {
                    let edge = serve_webhooks(local.deps.clone(), addr).await?;
                    eprintln!(
                        "listening for webhooks on {}/webhooks/{{connector}}/{tenant}; Ctrl-C or SIGTERM stops",
                        edge.origin()
                    );
                    std::future::pending::<()>().await;
                }
                anyhow::Ok(())
            };
            // A stop request ends intake at once; the workers finish the batch in
            // hand and what is still queued stays in the database for the next run.
            let outcome = tokio::select! {
                r = work => r,
                signal = ferry_cli::process::stop_requested() => {
                    eprintln!("{signal}: stopping intake; the workers finish their current batch");
                    Ok(())
                }
            };
            let left: u64 = host.shutdown().await.iter().map(|(_, d)| d.total()).sum();
            outcome?;
            if left > 0 {
                eprintln!(
                    "{left} messages are still queued in {}; the next `ferry sync` continues them",
                    a.tenant.db.display()
                );
            }
            let ctx = local.tenants.get(&tenant).context("tenant")?;
            let summary = ferry_core::report::summarise(
                &local.deps,
                &tenant,
                since,
                &ctx.erp.account_key(),
                ctx.erp.limits().per_day,
            )
            .await?;
            if a.json {
                print_json(&summary)?;
            } else {
                let mut out = String::new();
                render::summary(&mut out, &summary);
                print!("{out}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Preview(a) => {
            let secrets = open(&a.tenant.db)?;
            let (cfg, dir) = TenantConfig::read(&a.tenant.tenant_config)?;
            let template = cfg.load_template(&dir)?;
            let local = Local::open(&LocalOptions::default())?;
            for name in cfg.secret_names() {
                let v = ferry_core::ports::Secrets::get(
                    secrets.store.secrets.as_ref(),
                    &cfg.tenant.id,
                    name,
                )
                .await?;
                local.store.secrets.set(&cfg.tenant.id, name, v.expose())?;
            }
            local.add_tenant(&cfg, template, &[]).await?;
            let real = local.tenants.get(&cfg.tenant.id).context("tenant")?;
            let recording = Arc::new(RecordingErp::new(real.erp.clone()));
            local.tenants.insert(real.with_erp(recording.clone())?);
            let host = LocalHost::start(local.deps.clone(), HostConfig::default());
            let work = async {
                poll_all(&local, &cfg.tenant.id, &a.domain, !a.json).await?;
                settle(&host).await
            };
            let outcome = tokio::select! {
                r = work => r,
                signal = ferry_cli::process::stop_requested() => {
                    Err(anyhow::anyhow!("{signal}: preview stopped before it finished"))
                }
            };
            // The workers stop before any error is reported: a runtime shutting
            // down under running workers would panic instead of exiting cleanly.
            host.shutdown().await;
            outcome?;
            let docs = recording.documents();
            let summary = ferry_core::report::summarise(
                &local.deps,
                &cfg.tenant.id,
                local.clock.now(),
                "none",
                0,
            )
            .await?;
            if a.json {
                print_json(&serde_json::json!({ "documents": docs, "summary": summary }))?;
            } else {
                println!(
                    "A sync would write {} documents (nothing was written):",
                    docs.len()
                );
                for d in docs.iter().take(a.limit) {
                    println!(
                        "\n{} {}\n{}",
                        d.kind.as_str(),
                        d.key,
                        serde_json::to_string_pretty(&d.request)?
                    );
                }
                if docs.len() > a.limit {
                    println!(
                        "\n… and {} more (use --limit or --json)",
                        docs.len() - a.limit
                    );
                }
                let mut out = String::new();
                render::summary(&mut out, &summary);
                print!("{out}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Template(TemplateCmd::Validate {
            base: None,
            tenant_config: Some(path),
            db,
            from,
            to,
            json,
            ..
        }) => template_coverage(&path, &db, from, to, json).await,
        Cmd::Template(TemplateCmd::Validate {
            base,
            overlay,
            json,
            ..
        }) => {
            let base = base.context(
                "give the template to check (BASE), or the tenant file whose templates to check (-t tenant.toml)",
            )?;
            // A file that cannot be read is reported like any other problem
            // (in JSON with --json).
            let loaded = TemplateSource::read(&base).and_then(|b| {
                let o = overlay
                    .as_ref()
                    .map(|p| TemplateSource::read(p))
                    .transpose()?;
                Template::load(&b, o.as_ref())
            });
            match loaded {
                Ok(t) => {
                    if json {
                        print_json(&serde_json::json!({ "valid": true, "version": t.version }))?;
                    } else {
                        println!("valid: {}", t.version);
                        for (d, r) in &t.rules {
                            println!(
                                "  {:<14} {:?}{}",
                                d.as_str(),
                                r.spec.direction,
                                if r.spec.summary.is_some() {
                                    " (summarised)"
                                } else {
                                    ""
                                }
                            );
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    if json {
                        let errors: Vec<_> = e.0.iter().map(|x| serde_json::json!({ "file": x.file, "path": x.path, "line": x.line, "message": x.message })).collect();
                        print_json(&serde_json::json!({ "valid": false, "errors": errors }))?;
                    } else {
                        eprintln!("{e}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Cmd::Exceptions(c) => exceptions(c).await,
        Cmd::Reconcile(a) => {
            let local = open(&a.tenant.db)?;
            let tenant = local.add_tenant_file(&a.tenant.tenant_config).await?;
            let report = reconcile::run(&local.deps, &tenant, a.from, a.to).await?;
            if a.json {
                print_json(&report)?;
            } else {
                let mut out = String::new();
                render::reconciliation(&mut out, &report);
                print!("{out}");
            }
            Ok(if report.clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::SecretSet(a) => {
            let local = open(&a.db)?;
            local.store.secrets.set(&a.tenant, &a.name, &a.value)?;
            eprintln!("stored {} for {}", a.name, a.tenant);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Deploy(a) => {
            let plan = ferry_cli::deploy::plan(&a.infra, &a.partner, &a.customer)?;
            // The config layer's content (local files only; checked by loading it back).
            let tenant_file = ferry_cli::deploy::render_bundle(
                &plan,
                &repo_dir(),
                &a.infra.join(".build/config"),
            )?;
            let build = [
                "build",
                "--beta-features",
                "--template-file",
                "infra/template.yaml",
                "--build-dir",
                "infra/.aws-sam/build",
            ];
            let deploy = plan.sam_deploy_args();
            if a.json {
                let build_cmd: Vec<&str> = std::iter::once("sam")
                    .chain(build.iter().copied())
                    .collect();
                let deploy_cmd: Vec<&str> = std::iter::once("sam")
                    .chain(deploy.iter().map(String::as_str))
                    .collect();
                print_json(
                    &serde_json::json!({ "plan": plan, "tenant_file": tenant_file, "commands": [build_cmd, deploy_cmd] }),
                )?;
            } else {
                println!("stack      {}", plan.stack_name);
                println!(
                    "partner    {}    customer {}    tier {}",
                    plan.partner, plan.customer, plan.tier
                );
                println!("account    {}    region {}", plan.account, plan.region);
                println!(
                    "template   {}{}",
                    plan.template.display(),
                    plan.template_override
                        .as_ref()
                        .map(|o| format!(" + {}", o.display()))
                        .unwrap_or_default()
                );
                println!(
                    "config     {} (the layer mounted at /opt)",
                    tenant_file.display()
                );
                println!("parameters");
                for (k, v) in &plan.parameters {
                    println!("  {k:<22} {v}");
                }
                // Quoted for a shell, so the lines can be copied.
                let quoted: Vec<String> = deploy
                    .iter()
                    .map(|a| {
                        if a.contains([' ', '(', ')', '*', '?']) {
                            format!("'{a}'")
                        } else {
                            a.clone()
                        }
                    })
                    .collect();
                println!(
                    "would run\n  sam {}\n  sam {}",
                    build.join(" "),
                    quoted.join(" ")
                );
            }
            if a.dry_run {
                return Ok(ExitCode::SUCCESS);
            }
            let sdk = ferry_aws::sdk_config().await;
            let account = ferry_aws::caller_account(&sdk)
                .await
                .context("reading the AWS account of the current credentials")?;
            plan.check_account(&account).map_err(anyhow::Error::msg)?;
            let sam = repo_dir().join(".venv-iac/bin/sam");
            anyhow::ensure!(
                sam.exists(),
                "{} not found: run `make tools` first",
                sam.display()
            );
            let path = format!(
                "{}:{}",
                repo_dir().join(".venv/bin").display(),
                std::env::var("PATH").unwrap_or_default()
            );
            for args in [
                build.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                deploy,
            ] {
                let status = std::process::Command::new(&sam)
                    .args(&args)
                    .current_dir(repo_dir())
                    .env("PATH", &path)
                    .env("SAM_CLI_TELEMETRY", "0")
                    .status()?;
                anyhow::ensure!(status.success(), "sam {} failed ({status})", args[0]);
            }
            println!(
                "deployed {}; put the customer's credentials in secret ferry/{}/{} (README, Deploying a customer)",
                plan.stack_name, plan.partner, plan.customer
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Connectors { json } => {
            let rows: Vec<serde_json::Value> = ferry_connectors::registry::CONNECTORS
                .iter()
                .map(|e| {
                    let a = e.about();
                    serde_json::json!({
                        "name": a.name,
                        "side": e.side(),
                        "table": format!("[{}.{}]", e.side().as_str(), a.name),
                        "secrets": a.secrets,
                        "webhook": a.webhooks.then(|| format!("POST /webhooks/{}/{{tenant}}", a.name)),
                    })
                })
                .collect();
            if json {
                print_json(&serde_json::json!({ "connectors": rows }))?;
            } else {
                for r in &rows {
                    println!(
                        "{:<12} {:<4} {:<20} secrets: {}; webhooks: {}",
                        r["name"].as_str().unwrap_or_default(),
                        r["side"].as_str().unwrap_or_default(),
                        r["table"].as_str().unwrap_or_default(),
                        r["secrets"]
                            .as_array()
                            .map(|s| s
                                .iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(", "))
                            .unwrap_or_default(),
                        r["webhook"].as_str().unwrap_or("none (polled)")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Schema { write } => {
            let text = ferry_canon::schema::export();
            if write {
                let path = repo_dir().join("shared/canon/schema/canon.v1.schema.json");
                std::fs::write(&path, text)?;
                eprintln!("wrote {}", path.display());
            } else {
                print!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn exceptions(c: ExceptionsCmd) -> anyhow::Result<ExitCode> {
    match c {
        ExceptionsCmd::List {
            at,
            status,
            owner,
            domain,
            json,
        } => {
            let local = open(&at.db)?;
            let statuses = if status.is_empty() {
                vec![ExceptionStatus::Open, ExceptionStatus::Retrying]
            } else {
                status
            };
            let list = local
                .deps
                .exceptions
                .list(&ExceptionQuery {
                    tenant: Some(at.tenant),
                    statuses,
                    owner,
                    domain,
                    first_seen_before: None,
                    limit: None,
                })
                .await?;
            if json {
                print_json(&list)?;
            } else {
                let mut out = String::new();
                render::exceptions(&mut out, &list);
                print!("{out}");
                eprintln!("{} exceptions", list.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        ExceptionsCmd::Show { at, id, json } => {
            let local = open(&at.db)?;
            let Some(e) = local.deps.exceptions.get(&at.tenant, &id).await? else {
                bail!("no exception {id} for tenant {}", at.tenant);
            };
            if json {
                print_json(&e)?;
            } else {
                let mut out = String::new();
                render::exceptions(&mut out, std::slice::from_ref(&e));
                print!("{out}");
                println!(
                    "    field: {}  rule: {}",
                    e.field.as_deref().unwrap_or("-"),
                    e.rule.as_deref().unwrap_or("-")
                );
                if let Some(m) = &e.erp_message {
                    println!("    ERP said: {m}");
                }
                println!(
                    "    first seen {}  last seen {}  attempts {}",
                    e.first_seen, e.last_seen, e.attempts
                );
                println!("    replays to {}: {}", e.replay_queue, e.replay_body);
            }
            Ok(ExitCode::SUCCESS)
        }
        ExceptionsCmd::Replay {
            at,
            id,
            all,
            owner,
            domain,
        } => {
            let local = open(&at.db)?;
            match (id, all) {
                (Some(id), false) => {
                    retry::replay(&local.deps, &at.tenant, &id).await?;
                    eprintln!("replayed {id}; run `ferry sync` to process it");
                }
                (None, true) => {
                    let n = retry::replay_all(&local.deps, &at.tenant, owner, domain).await?;
                    eprintln!("replayed {n} exceptions; run `ferry sync` to process them");
                }
                _ => {
                    bail!("give one exception id, or --all (optionally with --owner and --domain)")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A tenant file for a wired config (used by `ferry sim`).
/// Provisions a stack on the emulator for the simulated tenant and writes the
/// functions' environment (`lambda.env`).
async fn aws_sim_stack(
    prefix: &str,
    tenant: &TenantId,
    sims: &Simulators,
    tenant_file: &std::path::Path,
    dir: &std::path::Path,
) -> anyhow::Result<PathBuf> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    anyhow::ensure!(
        !endpoint.is_empty(),
        "--aws creates resources and is meant for an emulator: set AWS_ENDPOINT_URL (e.g. moto on http://127.0.0.1:5005)"
    );
    let sdk = ferry_aws::sdk_config().await;
    let r = ferry_aws::provision::create(&sdk, prefix, 5).await?;
    let secrets = sims
        .secrets()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    ferry_aws::provision::put_secret(&sdk, &r, tenant, &secrets).await?;
    let mut lines = vec![
        "FERRY_STORE=aws".to_string(),
        format!(
            "FERRY_TENANT_FILES={}",
            std::path::absolute(tenant_file)?.display()
        ),
        format!("FERRY_TABLE={}", r.table),
        format!("FERRY_EVENT_BUS={}", r.event_bus),
        format!("FERRY_SECRET_PREFIX={}", r.secret_prefix),
        format!("AWS_ENDPOINT_URL={endpoint}"),
    ];
    for (q, var) in ferry_lambda::config::QUEUE_VARS {
        lines.push(format!("{var}={}", r.queues[&q]));
    }
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        if let Ok(v) = std::env::var(var) {
            lines.push(format!("{var}={v}"));
        }
    }
    let path = dir.join("lambda.env");
    std::fs::write(&path, lines.join("\n") + "\n")?;
    Ok(path)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    ferry_cli::process::quiet_on_closed_stdout();
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
