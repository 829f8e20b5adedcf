//! `ferry sim`: the simulators with the demo firm, a tenant file for them.

use super::*;

#[derive(Args)]
pub(crate) struct SimArgs {
    /// Where to write `tenant.toml`.
    #[arg(long, default_value = ".ferry/sim")]
    pub(crate) dir: PathBuf,
    /// The local database that receives the tenant's secrets.
    #[arg(long, default_value = ".ferry/ferry.db")]
    pub(crate) db: PathBuf,
    /// People in the demo firm.
    #[arg(long, default_value_t = 600)]
    pub(crate) members: usize,
    /// The month the firm's time and expenses fall in, as YYYY-MM (default: the
    /// month before today's, by the clock).
    #[arg(long, value_parser = parse_month, value_name = "YYYY-MM")]
    pub(crate) month: Option<chrono::NaiveDate>,
    /// Serve the ConnectWise simulator on this address instead of a free port
    /// (`make invoke-intake` uses 127.0.0.1:8401, the key URL the sample callback names).
    #[arg(long, value_name = "ADDR")]
    pub(crate) connectwise_addr: Option<SocketAddr>,
    /// Also provision an AWS stack named PREFIX (table, queues, bus, the tenant's
    /// secret) where AWS_ENDPOINT_URL points (moto), and write `lambda.env` for
    /// `cargo lambda watch --env-file`. Used by `make invoke-<function>`.
    #[arg(long, value_name = "PREFIX")]
    pub(crate) aws: Option<String>,
}

pub(crate) async fn sim(a: SimArgs) -> anyhow::Result<ExitCode> {
    demo::check_month(
        a.month,
        &demo::stage::template(demo::DEFAULT_PSA, demo::DEFAULT_ERP)?,
        &SystemClock,
    )?;
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

/// A tenant file for a wired config (used by `ferry sim`).
/// Provisions a stack on the emulator for the simulated tenant and writes the
/// functions' environment (`lambda.env`).
pub(crate) async fn aws_sim_stack(
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
