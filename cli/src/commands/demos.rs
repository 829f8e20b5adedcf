//! `ferry run` and `ferry run-real`: the demos.

use super::*;

#[derive(Args)]
pub(crate) struct RunArgs {
    /// People in the demo firm.
    #[arg(long, default_value_t = 600)]
    pub(crate) members: usize,
    /// Seed for the demo data.
    #[arg(long, default_value_t = 20261125)]
    pub(crate) seed: u64,
    /// Where the demo's state is kept (recreated on every run).
    #[arg(long, default_value = ".ferry/demo.db")]
    pub(crate) db: PathBuf,
    /// The month the firm's time and expenses fall in, as YYYY-MM (default: the
    /// month before today's, by the clock); from the oldest the template's date
    /// bounds accept whole (about three years back) to the current one.
    #[arg(long, value_parser = parse_month, value_name = "YYYY-MM")]
    pub(crate) month: Option<chrono::NaiveDate>,
    /// Print the result as JSON instead of the report.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bars.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// The PSA to simulate (`ferry connectors` lists them; the demo runs on
    /// every pair with a simulator on both sides and a partner template).
    #[arg(long, default_value = demo::DEFAULT_PSA)]
    pub(crate) psa: String,
    /// The ERP to simulate.
    #[arg(long, default_value = demo::DEFAULT_ERP)]
    pub(crate) erp: String,
    /// Do not leave the partner console's demo state (two more customers
    /// synced beside the firm, the partners' directory, console users).
    #[arg(long)]
    pub(crate) no_console: bool,
}

#[derive(Args)]
pub(crate) struct RunRealArgs {
    /// Print the outcome as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Keep Ferry's state in this SQLite file (in memory when absent).
    #[arg(long)]
    pub(crate) db: Option<PathBuf>,
}

pub(crate) async fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let outcome = demo::run(&DemoOptions {
        members: a.members,
        seed: a.seed,
        month: a.month,
        db: a.db,
        progress: !a.quiet && !a.json,
        psa: a.psa,
        erp: a.erp,
        console_state: !a.no_console,
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

pub(crate) async fn run_real(a: RunRealArgs) -> anyhow::Result<ExitCode> {
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
