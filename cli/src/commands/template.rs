//! `ferry template validate`: a template alone, or a tenant's against its PSA.

use super::*;

#[derive(Subcommand)]
pub(crate) enum TemplateCmd {
    /// Check a template (partner base, optionally with a customer override).
    /// With `-t tenant.toml`: the tenant's templates, and then the values its
    /// PSA uses (customers, and records dated from `--from` to `--to`, by
    /// default last month) that no value map covers; exit 1 if there are any.
    Validate {
        /// The partner base template (a `templates/<psa>-<erp>.toml`).
        base: Option<PathBuf>,
        /// A customer's override on top of the base.
        #[arg(long = "override")]
        overlay: Option<PathBuf>,
        /// The tenant file: check its templates against its PSA's data.
        #[arg(long = "tenant-config", short = 't')]
        tenant_config: Option<PathBuf>,
        /// The local database holding the tenant's secrets.
        #[arg(long, default_value = ".ferry/ferry.db")]
        db: PathBuf,
        /// First day of the records checked (YYYY-MM-DD; default: last month's first).
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last day of the records checked (YYYY-MM-DD; default: last month's last).
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn template(c: TemplateCmd) -> anyhow::Result<ExitCode> {
    match c {
        TemplateCmd::Validate {
            base: None,
            tenant_config: Some(path),
            db,
            from,
            to,
            json,
            ..
        } => template_coverage(&path, &db, from, to, json).await,
        TemplateCmd::Validate {
            base,
            overlay,
            json,
            ..
        } => {
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
                let t = Template::load(&b, o.as_ref())?;
                connectors_known(&t, &b.name)?;
                Ok(t)
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
    }
}

/// `ferry template validate -t tenant.toml`: the tenant's templates load, and
/// the PSA values no value map covers.
pub(crate) async fn template_coverage(
    path: &std::path::Path,
    db: &std::path::Path,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let local = open_existing(db)?;
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

/// The template's `psa` and `erp` name connectors Ferry has, of that side.
fn connectors_known(t: &Template, file: &str) -> Result<(), ferry_core::template::TemplateErrors> {
    use ferry_connectors::registry::{self, Side};
    let mut errors = Vec::new();
    for (key, name, side) in [
        ("template.psa", &t.spec.template.psa, Side::Psa),
        ("template.erp", &t.spec.template.erp, Side::Erp),
    ] {
        if registry::find(name).is_none_or(|e| e.side() != side) {
            errors.push(ferry_core::template::TemplateError {
                file: file.to_string(),
                path: key.into(),
                line: None,
                message: format!(
                    "{name:?} is not {} connector Ferry has ({})",
                    side.article(),
                    registry::names(side).join(", ")
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ferry_core::template::TemplateErrors(errors))
    }
}
