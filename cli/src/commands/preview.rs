//! `ferry preview`: the ERP documents a sync would post.

use super::*;

#[derive(Args)]
pub(crate) struct PreviewArgs {
    #[command(flatten)]
    pub(crate) tenant: TenantArgs,
    /// Only these domains (default: every domain the PSA can poll).
    #[arg(long, value_parser = parse_domain)]
    pub(crate) domain: Vec<Domain>,
    /// Show at most this many documents in full.
    #[arg(long, default_value_t = 5)]
    pub(crate) limit: usize,
    /// Print the documents as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) async fn preview(a: PreviewArgs) -> anyhow::Result<ExitCode> {
    let secrets = open_existing(&a.tenant.db)?;
    let (cfg, dir) = TenantConfig::read(&a.tenant.tenant_config)?;
    let template = cfg.load_template(&dir)?;
    let local = Local::open(&LocalOptions::default())?;
    for name in cfg.secret_names() {
        let v =
            ferry_core::ports::Secrets::get(secrets.store.secrets.as_ref(), &cfg.tenant.id, name)
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
    let summary =
        ferry_core::report::summarise(&local.deps, &cfg.tenant.id, local.clock.now(), "none", 0)
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
