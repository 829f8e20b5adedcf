//! `ferry console`: serve the partner console over a local database, and
//! manage its users and directory.

use super::*;

use ferry_console::{Console, ConsoleStore, Customer, LocalFleet, Role, SqliteConsoleStore, User};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ConsoleArgs {
    #[command(subcommand)]
    cmd: Option<ConsoleCmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The local database: Ferry's state, and the console's users and directory.
    #[arg(long, default_value = ".ferry/ferry.db")]
    db: PathBuf,
    /// The infrastructure folder whose `partners/` names brands and customers.
    #[arg(long, default_value = "infra")]
    infra: PathBuf,
    /// Where to listen (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8180")]
    listen: SocketAddr,
    /// Wear this partner's brand on the sign-in page.
    #[arg(long)]
    partner: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum ConsoleCmd {
    /// Console users.
    #[command(subcommand)]
    User(UserCmd),
    /// The console's directory of customers.
    #[command(subcommand)]
    Customer(CustomerCmd),
}

#[derive(Subcommand)]
pub(crate) enum UserCmd {
    /// Add a user or change one (role, customer, password). The password is
    /// read from FERRY_CONSOLE_PASSWORD, or else from the first line of stdin.
    Add {
        /// The local database.
        #[arg(long, default_value = ".ferry/ferry.db")]
        db: PathBuf,
        /// The user's sign-in name.
        #[arg(long)]
        name: String,
        /// The partner the user belongs to (`infra/partners/<id>`).
        #[arg(long)]
        partner: String,
        /// partner_admin, partner_support, customer_finance or customer_operations.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The customer (tenant id) of a customer role.
        #[arg(long)]
        tenant: Option<TenantId>,
        /// Change a user that exists (partner, role, customer, password); their
        /// sessions end.
        #[arg(long)]
        update: bool,
        /// The infrastructure folder whose `partners/` names the partners.
        #[arg(long, default_value = "infra")]
        infra: PathBuf,
    },
    /// Remove a user; their sessions end.
    Remove {
        /// The local database.
        #[arg(long, default_value = ".ferry/ferry.db")]
        db: PathBuf,
        /// The user's sign-in name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum CustomerCmd {
    /// Put a tenant in a partner's directory (customers under `infra/partners`
    /// are imported by `ferry console` itself).
    Add {
        /// The local database.
        #[arg(long, default_value = ".ferry/ferry.db")]
        db: PathBuf,
        /// The tenant id.
        #[arg(long)]
        tenant: TenantId,
        /// The partner whose customer it is.
        #[arg(long)]
        partner: String,
        /// The customer's name.
        #[arg(long)]
        name: String,
        /// The service tier.
        #[arg(long, default_value = "standard")]
        tier: String,
        /// The tier's SLA: how many seconds a record may wait (1 or more).
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
        sla_seconds: u32,
        /// The PSA connector.
        #[arg(long, default_value = "connectwise")]
        psa: String,
        /// The ERP connector.
        #[arg(long, default_value = "xero")]
        erp: String,
        /// Move a tenant another partner has in its directory to this one.
        #[arg(long = "move")]
        move_partner: bool,
        /// The infrastructure folder whose `partners/` names the partners.
        #[arg(long, default_value = "infra")]
        infra: PathBuf,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| {
        format!(
            "unknown role {s:?}; one of {}",
            Role::ALL.map(|r| r.as_str()).join(", ")
        )
    })
}

/// The shortest password the console accepts.
const MIN_PASSWORD: usize = 12;

fn read_password() -> anyhow::Result<String> {
    let p = match std::env::var("FERRY_CONSOLE_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprintln!("password (one line on stdin):");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if p.chars().count() < MIN_PASSWORD {
        bail!("a console password has at least {MIN_PASSWORD} characters");
    }
    Ok(p)
}

fn console_store(db: &std::path::Path) -> anyhow::Result<SqliteConsoleStore> {
    if !db.is_file() {
        bail!(
            "no Ferry database at {} (`make run` leaves one at .ferry/demo.db; --db names another)",
            db.display()
        );
    }
    SqliteConsoleStore::open(db).with_context(|| format!("opening {}", db.display()))
}

pub(crate) async fn console(a: ConsoleArgs) -> anyhow::Result<ExitCode> {
    match a.cmd {
        None => serve(a.serve).await,
        Some(ConsoleCmd::User(UserCmd::Add {
            db,
            name,
            partner,
            role,
            tenant,
            update,
            infra,
        })) => {
            let name = name.trim().to_string();
            if name.is_empty() || name.chars().any(char::is_control) {
                bail!("--name is a user name: not empty, no control characters");
            }
            if role.is_customer() != tenant.is_some() {
                bail!("--tenant goes with a customer role, and only with one");
            }
            let store = console_store(&db)?;
            known_partner(&store, &infra, &partner).await?;
            if let Some(t) = &tenant {
                match store.customer(t).await? {
                    Some(c) if c.partner == partner => {}
                    Some(c) => bail!("{t} is a customer of {}, not of {partner}", c.partner),
                    None => bail!(
                        "{t} is not in the directory; `ferry console customer add` puts it there"
                    ),
                }
            }
            let existing = store.user(&name).await?;
            if existing.is_some() && !update {
                bail!("user {name} exists; --update changes them (and ends their sessions)");
            }
            let password_hash = ferry_console::auth::hash_password(&read_password()?)
                .map_err(anyhow::Error::msg)?;
            store
                .put_user(&User {
                    name: name.clone(),
                    partner,
                    role,
                    tenant,
                    password_hash,
                })
                .await?;
            if existing.is_some() {
                store.end_sessions(&name).await?;
                eprintln!("user {name} changed ({role}); their sessions ended");
            } else {
                eprintln!("user {name} added ({role})");
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(ConsoleCmd::User(UserCmd::Remove { db, name })) => {
            let store = console_store(&db)?;
            if !store.delete_user(name.trim()).await? {
                bail!("no user {name}");
            }
            eprintln!("user {name} removed; their sessions ended");
            Ok(ExitCode::SUCCESS)
        }
        Some(ConsoleCmd::Customer(CustomerCmd::Add {
            db,
            tenant,
            partner,
            name,
            tier,
            sla_seconds,
            psa,
            erp,
            move_partner,
            infra,
        })) => {
            let store = console_store(&db)?;
            known_partner(&store, &infra, &partner).await?;
            let name = name.trim().to_string();
            if name.is_empty() || tier.trim().is_empty() {
                bail!("--name and --tier cannot be empty");
            }
            for (flag, v) in [("--psa", &psa), ("--erp", &erp)] {
                if ferry_connectors::registry::find(v).is_none() {
                    bail!("{flag} {v:?} is no connector Ferry has (`ferry connectors` lists them)");
                }
            }
            if let Some(file) = std::fs::read_dir(infra.join("partners"))
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("customers").join(format!("{tenant}.toml")))
                .find(|f| f.is_file())
            {
                bail!(
                    "{tenant} is configured in {}: the console's directory follows that file",
                    file.display()
                );
            }
            if let Some(c) = store.customer(&tenant).await?
                && c.partner != partner
                && !move_partner
            {
                bail!(
                    "{tenant} is a customer of {} in the console; --move gives it to {partner}",
                    c.partner
                );
            }
            store
                .put_customer(&Customer {
                    tenant: tenant.clone(),
                    partner: partner.clone(),
                    name,
                    tier,
                    sla_seconds: i64::from(sla_seconds),
                    psa,
                    erp,
                })
                .await?;
            eprintln!("{tenant} is a customer of {partner} in the console");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The partner must be one `infra/partners` names (imported into the
/// console's directory here, as `ferry console` does at start).
async fn known_partner(
    store: &SqliteConsoleStore,
    infra: &std::path::Path,
    partner: &str,
) -> anyhow::Result<()> {
    ferry_cli::console::import_partners(store, infra)
        .await
        .with_context(|| format!("importing partners from {}", infra.display()))?;
    if store.brand(partner).await?.is_none() {
        bail!(
            "no partner {partner} in {} (its partners/ folder names them)",
            infra.display()
        );
    }
    Ok(())
}

async fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let local = open_existing(&a.db)?;
    let store = console_store(&a.db)?;
    let imported = ferry_cli::console::import_partners(&store, &a.infra)
        .await
        .with_context(|| format!("importing partners from {}", a.infra.display()))?;
    let held = local.store.tenants()?;
    let mut unlisted = Vec::new();
    for t in &held {
        let id = TenantId::parse(t).map_err(|e| anyhow::anyhow!("{e}"))?;
        if store.customer(&id).await?.is_none() {
            unlisted.push(t.clone());
        }
    }
    if !unlisted.is_empty() {
        eprintln!(
            "not in any partner's directory, so not shown: {} (`ferry console customer add` puts one there)",
            unlisted.join(", ")
        );
    }
    let mut console = Console::new(
        Arc::new(store),
        Arc::new(LocalFleet {
            deps: local.deps.clone(),
        }),
        local.clock.clone(),
    );
    if let Some(p) = &a.partner
        && console.store.brand(p).await?.is_none()
    {
        bail!("--partner {p}: no such partner in {}", a.infra.display());
    }
    console.home_partner = a.partner;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    eprintln!(
        "console on http://{} ({} partners, {} customers from {}; {} tenants in {})",
        listener.local_addr()?,
        imported.partners,
        imported.customers,
        a.infra.display(),
        held.len(),
        a.db.display()
    );
    axum::serve(listener, ferry_console::router(Arc::new(console)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
