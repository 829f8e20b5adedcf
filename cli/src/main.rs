//! `ferry`: run Ferry locally, preview, validate templates, work exceptions,
//! reconcile. Every command that reads state takes `--db` (default
//! `.ferry/ferry.db`); tenant commands take the tenant file.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
    Run(commands::demos::RunArgs),
    /// The flow against real software (`make run-real`): Redmine and Tryton on loopback, seeded, synced, reconciled.
    RunReal(commands::demos::RunRealArgs),
    /// Start the ConnectWise and Xero simulators with the demo firm, write a tenant file for them, and wait.
    Sim(commands::sim::SimArgs),
    /// Sync one tenant locally: poll every domain, process until settled, print the summary.
    Sync(commands::sync::SyncArgs),
    /// Show the ERP documents a sync would post, without posting anything.
    Preview(commands::preview::PreviewArgs),
    /// Mapping templates.
    #[command(subcommand)]
    Template(commands::template::TemplateCmd),
    /// Exceptions: list, show, replay.
    #[command(subcommand)]
    Exceptions(commands::exceptions::ExceptionsCmd),
    /// Reconcile a period: control totals from both systems, payment status back to the PSA.
    Reconcile(commands::reconciliation::ReconcileArgs),
    /// The partner console: serve it over a local database (`--db`), or manage its users and customers.
    Console(commands::console::ConsoleArgs),
    /// Store a tenant secret in the local database (Secrets Manager holds them on AWS).
    SecretSet(commands::admin::SecretArgs),
    /// Deploy one customer's stack from infra/partners/ (`--dry-run`: print the plan only).
    Deploy(commands::admin::DeployArgs),
    /// The connectors Ferry has: side, tenant-file table, secrets, webhooks.
    Connectors {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print (or `--write`) the canonical model's JSON Schema.
    Schema {
        /// Write it to `shared/canon/schema/canon.v1.schema.json` instead of printing it.
        #[arg(long)]
        write: bool,
    },
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

async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_format);
    match cli.cmd {
        Cmd::Run(a) => commands::demos::run(a).await,
        Cmd::RunReal(a) => commands::demos::run_real(a).await,
        Cmd::Sim(a) => commands::sim::sim(a).await,
        Cmd::Sync(a) => commands::sync::sync(a).await,
        Cmd::Preview(a) => commands::preview::preview(a).await,
        Cmd::Template(c) => commands::template::template(c).await,
        Cmd::Exceptions(c) => commands::exceptions::exceptions(c).await,
        Cmd::Reconcile(a) => commands::reconciliation::reconcile(a).await,
        Cmd::Console(a) => commands::console::console(a).await,
        Cmd::SecretSet(a) => commands::admin::secret_set(a).await,
        Cmd::Deploy(a) => commands::admin::deploy(a).await,
        Cmd::Connectors { json } => commands::admin::connectors(json),
        Cmd::Schema { write } => commands::admin::schema(write),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    ferry_cli::process::quiet_on_closed_stdout();
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A script that asked for JSON gets its failure as JSON too.
            if std::env::args_os().any(|a| a == "--json") {
                println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            }
            ExitCode::FAILURE
        }
    }
}
