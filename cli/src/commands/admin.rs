//! `ferry secret-set`, `ferry deploy`, `ferry connectors`, `ferry schema`.

use super::*;

#[derive(Args)]
pub(crate) struct SecretArgs {
    /// The local database (SQLite): Ferry's state and the tenant's secrets.
    #[arg(long, default_value = ".ferry/ferry.db")]
    pub(crate) db: PathBuf,
    /// The tenant's id (its slug).
    #[arg(long)]
    pub(crate) tenant: TenantId,
    /// e.g. `connectwise.private_key`, `xero.access_token`.
    pub(crate) name: String,
    /// The secret's value (stored in the local database, never printed).
    pub(crate) value: String,
}

#[derive(Args)]
pub(crate) struct DeployArgs {
    /// The partner (a folder under infra/partners/).
    #[arg(long)]
    pub(crate) partner: String,
    /// The customer (infra/partners/<partner>/customers/<customer>.toml).
    #[arg(long)]
    pub(crate) customer: String,
    /// The infrastructure folder.
    #[arg(long, default_value = "infra")]
    pub(crate) infra: PathBuf,
    /// Print what would be deployed, with the rendered parameters; touch nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) async fn secret_set(a: SecretArgs) -> anyhow::Result<ExitCode> {
    let local = open(&a.db)?;
    local.store.secrets.set(&a.tenant, &a.name, &a.value)?;
    eprintln!("stored {} for {}", a.name, a.tenant);
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn deploy(a: DeployArgs) -> anyhow::Result<ExitCode> {
    // Absolute, because sam runs in the repository: the template it builds
    // must be the one beside the bundle rendered here (its ContentUri is
    // relative to it), whatever folder --infra names.
    let infra =
        std::path::absolute(&a.infra).with_context(|| format!("--infra {}", a.infra.display()))?;
    let plan = ferry_cli::deploy::plan(&infra, &a.partner, &a.customer)?;
    // The config layer's content (local files only; checked by loading it back).
    let tenant_file =
        ferry_cli::deploy::render_bundle(&plan, &repo_dir(), &infra.join(".build/config"))?;
    let template_file = infra.join("template.yaml").display().to_string();
    let build_dir = infra.join(".aws-sam/build").display().to_string();
    let build = [
        "build",
        "--beta-features",
        "--template-file",
        template_file.as_str(),
        "--build-dir",
        build_dir.as_str(),
    ];
    let deploy = plan.sam_deploy_args(&infra.join(".aws-sam/build"));
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

pub(crate) fn connectors(json: bool) -> anyhow::Result<ExitCode> {
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

pub(crate) fn schema(write: bool) -> anyhow::Result<ExitCode> {
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
