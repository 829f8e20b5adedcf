//! `ferry exceptions`: list, show, replay.

use super::*;

#[derive(Args)]
pub(crate) struct DbTenant {
    /// The local database (SQLite): Ferry's state and the tenant's secrets.
    #[arg(long, default_value = ".ferry/ferry.db")]
    pub(crate) db: PathBuf,
    /// The tenant's id (its slug).
    #[arg(long)]
    pub(crate) tenant: TenantId,
}

#[derive(Subcommand)]
pub(crate) enum ExceptionsCmd {
    /// List exceptions (open and retrying by default).
    List {
        #[command(flatten)]
        at: DbTenant,
        /// Only these statuses (open, retrying, replayed, resolved).
        #[arg(long, value_parser = parse_status)]
        status: Vec<ExceptionStatus>,
        /// Only those this owner acts on (project_operations, finance, support).
        #[arg(long, value_parser = parse_owner)]
        owner: Option<Owner>,
        /// Only this domain's.
        #[arg(long, value_parser = parse_domain)]
        domain: Option<Domain>,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one exception with the message it will replay.
    Show {
        #[command(flatten)]
        at: DbTenant,
        /// The exception's id (`ex-…`, as `list` shows it).
        id: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put exceptions back into the pipeline (the next `ferry sync` processes them).
    Replay {
        #[command(flatten)]
        at: DbTenant,
        /// The exception to replay; or use --all with optional filters.
        id: Option<String>,
        /// Every open exception (narrowed by --owner and --domain).
        #[arg(long)]
        all: bool,
        /// With --all: only those this owner acts on.
        #[arg(long, value_parser = parse_owner)]
        owner: Option<Owner>,
        /// With --all: only this domain's.
        #[arg(long, value_parser = parse_domain)]
        domain: Option<Domain>,
    },
}

impl DbTenant {
    /// The database, which must exist and hold something for the tenant: a
    /// mistyped tenant is an error naming those it holds, not "0 exceptions".
    fn open(&self) -> anyhow::Result<Local> {
        let local = open_existing(&self.db)?;
        let known = local.store.tenants()?;
        if !known.iter().any(|t| t == self.tenant.as_str()) {
            bail!(
                "{} holds nothing for tenant {} (tenants there: {})",
                self.db.display(),
                self.tenant,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
        Ok(local)
    }
}

pub(crate) async fn exceptions(c: ExceptionsCmd) -> anyhow::Result<ExitCode> {
    match c {
        ExceptionsCmd::List {
            at,
            status,
            owner,
            domain,
            json,
        } => {
            let local = at.open()?;
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
            let local = at.open()?;
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
            let local = at.open()?;
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
