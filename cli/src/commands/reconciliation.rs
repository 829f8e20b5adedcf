//! `ferry reconcile`: a period's report from both systems.

use super::*;

#[derive(Args)]
pub(crate) struct ReconcileArgs {
    #[command(flatten)]
    pub(crate) tenant: TenantArgs,
    /// The period's first day (YYYY-MM-DD).
    #[arg(long)]
    pub(crate) from: NaiveDate,
    /// The period's last day (YYYY-MM-DD).
    #[arg(long)]
    pub(crate) to: NaiveDate,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) async fn reconcile(a: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let local = open_existing(&a.tenant.db)?;
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
