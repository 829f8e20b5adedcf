//! `ferry sync`: one tenant, polled and processed until settled.

use super::*;

#[derive(Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    pub(crate) tenant: TenantArgs,
    /// Only these domains (default: every domain the PSA can poll).
    #[arg(long, value_parser = parse_domain)]
    pub(crate) domain: Vec<Domain>,
    /// Also serve webhooks on this address and keep running (Ctrl-C to stop).
    #[arg(long)]
    pub(crate) listen: Option<SocketAddr>,
    /// Where vendors reach `--listen` from (a tunnel's or proxy's URL), for the
    /// webhook subscriptions Ferry keeps itself; default: the listen address.
    #[arg(long, requires = "listen")]
    pub(crate) public_url: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) async fn sync(a: SyncArgs) -> anyhow::Result<ExitCode> {
    // A tenant file that cannot be read leaves no database or lock behind.
    let (cfg, dir) = TenantConfig::read(&a.tenant.tenant_config)?;
    let _lock = ferry_cli::process::WorkerLock::acquire(&a.tenant.db)?;
    let local = open(&a.tenant.db)?;
    let tenant = local.add_tenant_read(&cfg, &dir).await?;
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
            let base = a.public_url.clone().unwrap_or_else(|| edge.origin());
            for done in intake::subscribe_webhooks(&local.deps, &tenant, &base).await? {
                eprintln!("webhook subscription: {done}");
            }
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
