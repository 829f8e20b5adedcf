//! The one list of connectors. Each vendor folder declares its entry (name,
//! side, settings type, secrets, webhooks, and how it builds from a tenant's
//! wiring) in its `entry.rs`; tenant files, `ferry deploy`, the CLI and the
//! webhook routes derive everything from [`CONNECTORS`]. Adding a connector is
//! its folder plus one line here.
//!
//! Size: the registry, its shared settings checks and the connection type
//! (about 430 lines), then its tests.

use std::sync::Arc;

use async_trait::async_trait;
use ferry_canon::{Currency, TenantId};
use ferry_core::gate::BudgetGate;
use ferry_core::ports::{
    ErpCapabilities, ErpConnector, PsaConnector, RateLimits, Secret, WebhookVerifier,
};
use ferry_core::template::key_segment;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::credential::Credential;
use crate::tenant::{Wiring, WiringError};

/// Every connector Ferry has.
pub static CONNECTORS: &[Entry] = &[
    Entry::Psa(&crate::connectwise::entry::ENTRY),
    Entry::Psa(&crate::redmine::entry::ENTRY),
    Entry::Psa(&crate::harvest::entry::ENTRY),
    Entry::Erp(&crate::xero::entry::ENTRY),
    Entry::Erp(&crate::tryton::entry::ENTRY),
    Entry::Erp(&crate::netsuite::entry::ENTRY),
    Entry::Erp(&crate::businesscentral::entry::ENTRY),
];

/// Which side of a tenant a connector serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Psa,
    Erp,
}

impl Side {
    pub fn as_str(&self) -> &'static str {
        match self {
            Side::Psa => "psa",
            Side::Erp => "erp",
        }
    }

    /// "a PSA", "an ERP".
    pub fn article(&self) -> &'static str {
        match self {
            Side::Psa => "a PSA",
            Side::Erp => "an ERP",
        }
    }
}

/// What a connector declares about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct About {
    /// Its table name in tenant files (`[psa.<name>]`) and its webhook route
    /// (`/webhooks/<name>/<tenant>`).
    pub name: &'static str,
    /// Secrets it reads (`<name>.<secret>`), for setup and documentation.
    pub secrets: &'static [&'static str],
    /// Whether the vendor delivers signed webhooks to Ferry.
    pub webhooks: bool,
}

/// A PSA connector, built.
pub struct BuiltPsa {
    pub connector: Arc<dyn PsaConnector>,
    pub webhook: Option<Arc<dyn WebhookVerifier>>,
}

/// An ERP connector, built.
pub struct BuiltErp {
    pub connector: Arc<dyn ErpConnector>,
    pub webhook: Option<Arc<dyn WebhookVerifier>>,
}

/// A PSA connector's registry entry.
#[async_trait]
pub trait PsaEntry: Sync {
    fn about(&self) -> About;
    /// Reads the settings table; every problem in words a person can act on.
    fn check(&self, settings: &toml::Table) -> Result<(), String>;
    async fn build(&self, settings: &toml::Table, site: &Site<'_>)
    -> Result<BuiltPsa, WiringError>;
}

/// An ERP connector's registry entry.
#[async_trait]
pub trait ErpEntry: Sync {
    fn about(&self) -> About;
    fn check(&self, settings: &toml::Table) -> Result<(), String>;
    /// What the connector with these settings writes, and its limits: known
    /// before it is built, so a template can be checked without secrets.
    fn capabilities(&self, settings: &toml::Table) -> Result<ErpCapabilities, String>;
    async fn build(&self, settings: &toml::Table, site: &Site<'_>)
    -> Result<BuiltErp, WiringError>;
}

/// One line of the registry.
#[derive(Clone, Copy)]
pub enum Entry {
    Psa(&'static dyn PsaEntry),
    Erp(&'static dyn ErpEntry),
}

impl Entry {
    pub fn about(&self) -> About {
        match self {
            Entry::Psa(e) => e.about(),
            Entry::Erp(e) => e.about(),
        }
    }

    pub fn side(&self) -> Side {
        match self {
            Entry::Psa(_) => Side::Psa,
            Entry::Erp(_) => Side::Erp,
        }
    }
}

/// The names of the connectors on one side, in registry order.
pub fn names(side: Side) -> Vec<&'static str> {
    CONNECTORS
        .iter()
        .filter(|e| e.side() == side)
        .map(|e| e.about().name)
        .collect()
}

/// The entry named `name`, on any side.
pub fn find(name: &str) -> Option<Entry> {
    CONNECTORS.iter().copied().find(|e| e.about().name == name)
}

pub(crate) fn psa(name: &str) -> Option<&'static dyn PsaEntry> {
    CONNECTORS.iter().find_map(|e| match e {
        Entry::Psa(p) if p.about().name == name => Some(*p),
        _ => None,
    })
}

pub(crate) fn erp(name: &str) -> Option<&'static dyn ErpEntry> {
    CONNECTORS.iter().find_map(|e| match e {
        Entry::Erp(p) if p.about().name == name => Some(*p),
        _ => None,
    })
}

/// Settings checks every connector shares; each returns the problem in words.
pub mod checks {
    use ferry_canon::Currency;

    /// An `http(s)://host…` URL.
    pub fn http_url(key: &str, v: &str) -> Result<(), String> {
        match url::Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
            _ => Err(format!("{key}: {v:?} is not an http(s) URL")),
        }
    }

    pub fn not_empty(key: &str, v: &str) -> Result<(), String> {
        if v.trim().is_empty() {
            Err(format!("{key}: must not be empty"))
        } else {
            Ok(())
        }
    }

    pub fn currency(key: &str, v: &str) -> Result<(), String> {
        Currency::parse(v)
            .map(drop)
            .map_err(|e| format!("{key}: {e}"))
    }

    /// An integer setting within `[min, max]`.
    pub fn within(key: &str, v: u64, min: u64, max: u64) -> Result<(), String> {
        if (min..=max).contains(&v) {
            Ok(())
        } else {
            Err(format!("{key}: {v} is outside {min}..={max}"))
        }
    }

    /// Every problem at once, one per line.
    pub fn all(results: impl IntoIterator<Item = Result<(), String>>) -> Result<(), String> {
        let problems: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Reads a settings table as a connector's typed config (unknown keys refused
/// where the type says so).
pub fn parse<C: DeserializeOwned>(settings: &toml::Table) -> Result<C, String> {
    toml::Value::Table(settings.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

/// A connector's typed settings, tied to its name.
pub trait Settings: Serialize + DeserializeOwned {
    /// The connector's registry name.
    const CONNECTOR: &'static str;
}

/// One side of the registry, as a tenant file's `[psa.*]` or `[erp.*]`
/// table is read against it.
pub trait SideEntry: Sync {
    const SIDE: Side;
    /// The entry of this side named `name`.
    fn lookup(name: &str) -> Option<&'static Self>;
    fn about(&self) -> About;
    fn check(&self, settings: &toml::Table) -> Result<(), String>;
}

impl SideEntry for dyn PsaEntry {
    const SIDE: Side = Side::Psa;
    fn lookup(name: &str) -> Option<&'static Self> {
        psa(name)
    }
    fn about(&self) -> About {
        PsaEntry::about(self)
    }
    fn check(&self, settings: &toml::Table) -> Result<(), String> {
        PsaEntry::check(self, settings)
    }
}

impl SideEntry for dyn ErpEntry {
    const SIDE: Side = Side::Erp;
    fn lookup(name: &str) -> Option<&'static Self> {
        erp(name)
    }
    fn about(&self) -> About {
        ErpEntry::about(self)
    }
    fn check(&self, settings: &toml::Table) -> Result<(), String> {
        ErpEntry::check(self, settings)
    }
}

/// One side of a tenant file: `[psa.<connector>]` or `[erp.<connector>]`,
/// exactly one table, naming a connector of that side, with settings it
/// accepts. It holds the registry entry itself, so nothing after reading
/// looks the connector up again.
pub struct Connection<E: ?Sized + 'static> {
    entry: &'static E,
    settings: toml::Table,
}

/// A tenant's PSA connection.
pub type PsaConnection = Connection<dyn PsaEntry>;
/// A tenant's ERP connection.
pub type ErpConnection = Connection<dyn ErpEntry>;

impl<E: SideEntry + ?Sized> Clone for Connection<E> {
    fn clone(&self) -> Self {
        Self {
            entry: self.entry,
            settings: self.settings.clone(),
        }
    }
}

impl<E: SideEntry + ?Sized> std::fmt::Debug for Connection<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name())
            .field("settings", &self.settings)
            .finish()
    }
}

impl<E: SideEntry + ?Sized> PartialEq for Connection<E> {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.settings == other.settings
    }
}

impl<E: SideEntry + ?Sized> Connection<E> {
    /// A connection with typed settings (tenant files Ferry writes).
    pub fn of<C: Settings>(settings: &C) -> Self {
        let entry = E::lookup(C::CONNECTOR)
            .unwrap_or_else(|| panic!("{} is not a {} connector", C::CONNECTOR, E::SIDE.as_str()));
        let settings = match toml::Value::try_from(settings) {
            Ok(toml::Value::Table(t)) => t,
            _ => panic!("connector settings serialise to a table"),
        };
        Self { entry, settings }
    }

    /// Reads `[<side>.<name>]` from the tenant file's `<side>` table; the error
    /// names the key to fix and the connectors there are.
    pub fn read(table: &toml::Table) -> Result<Self, (String, String)> {
        let side = E::SIDE;
        let key = side.as_str();
        let known = names(side);
        let mut entries = table.iter();
        let (Some((name, settings)), None) = (entries.next(), entries.next()) else {
            return Err((
                key.to_string(),
                format!(
                    "name exactly one connector table, e.g. [{key}.{}]",
                    known.first().copied().unwrap_or("…")
                ),
            ));
        };
        let path = format!("{key}.{}", key_segment(name));
        let entry = E::lookup(name).ok_or_else(|| {
            (
                path.clone(),
                format!(
                    "not {} connector Ferry has ({})",
                    side.article(),
                    known.join(", ")
                ),
            )
        })?;
        let toml::Value::Table(settings) = settings else {
            return Err((path, "must be a table of settings".into()));
        };
        entry.check(settings).map_err(|m| (path, m))?;
        Ok(Self {
            entry,
            settings: settings.clone(),
        })
    }

    /// The registry entry this connection names.
    pub fn entry(&self) -> &'static E {
        self.entry
    }

    pub fn name(&self) -> &'static str {
        self.entry.about().name
    }

    pub fn settings(&self) -> &toml::Table {
        &self.settings
    }

    /// The settings as `C`, if this is `C`'s connector.
    pub fn typed<C: Settings>(&self) -> Option<C> {
        (self.name() == C::CONNECTOR)
            .then(|| parse(&self.settings).ok())
            .flatten()
    }

    /// Changes typed settings in place (tests and tools that adjust a
    /// tenant); `false` when this is not `C`'s connector.
    pub fn update<C: Settings>(&mut self, f: impl FnOnce(&mut C)) -> bool {
        let Some(mut c) = self.typed::<C>() else {
            return false;
        };
        f(&mut c);
        *self = Self::of(&c);
        true
    }

    /// `{ <name> = { settings } }`, as a tenant file holds it.
    pub fn to_table(&self) -> toml::Table {
        let mut t = toml::Table::new();
        t.insert(
            self.name().to_string(),
            toml::Value::Table(self.settings.clone()),
        );
        t
    }
}

/// What a connector builds with: the tenant, and the shared wiring (secrets,
/// locks, rate budget, clock).
pub struct Site<'a> {
    pub tenant: &'a TenantId,
    pub wiring: &'a Wiring,
}

impl Site<'_> {
    /// A secret the connector cannot work without: checked now, so a tenant
    /// without it fails at cold start.
    pub async fn require(&self, name: &'static str) -> Result<Secret, WiringError> {
        self.wiring
            .secrets
            .get(self.tenant, name)
            .await
            .map_err(|error| WiringError::Secret {
                tenant: self.tenant.clone(),
                error,
            })
    }

    /// Whether an optional secret is set.
    pub async fn has(&self, name: &'static str) -> bool {
        self.wiring.secrets.get(self.tenant, name).await.is_ok()
    }

    /// A secret read on every use, so rotation needs no restart.
    pub fn credential(&self, name: &'static str) -> Credential {
        Credential::stored(&self.wiring.secrets, self.tenant, name)
    }

    /// The admission gate of one ERP account's shared rate budget.
    pub fn gate(&self, account: String, limits: RateLimits) -> Arc<BudgetGate> {
        Arc::new(BudgetGate {
            budget: self.wiring.budget.clone(),
            clock: self.wiring.clock.clone(),
            account,
            limits,
            max_wait: self.wiring.budget_max_wait,
        })
    }

    /// A settings value the connector could not accept.
    pub fn config_error(&self, message: String) -> WiringError {
        WiringError::Config {
            file: format!("tenant {}", self.tenant),
            message,
        }
    }

    /// A currency code from the settings (`key` names it in the error).
    pub fn currency(&self, key: &str, code: &str) -> Result<Currency, WiringError> {
        Currency::parse(code).map_err(|e| self.config_error(format!("{key}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connector_has_one_unique_name_and_its_own_secrets() {
        let mut seen = std::collections::BTreeSet::new();
        for e in CONNECTORS {
            let a = e.about();
            assert!(seen.insert(a.name), "{} listed twice", a.name);
            assert!(
                a.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{} is a table name and a URL segment",
                a.name
            );
            for s in a.secrets {
                assert!(
                    s.starts_with(&format!("{}.", a.name)),
                    "{s} belongs to {}",
                    a.name
                );
            }
        }
        // Every settings type names a connector of its side (Connection::of relies on it).
        assert!(<dyn PsaEntry>::lookup(crate::connectwise::ConnectWiseConfig::CONNECTOR).is_some());
        assert!(<dyn PsaEntry>::lookup(crate::redmine::RedmineConfig::CONNECTOR).is_some());
        assert!(<dyn ErpEntry>::lookup(crate::xero::XeroConfig::CONNECTOR).is_some());
        assert!(<dyn ErpEntry>::lookup(crate::tryton::TrytonConfig::CONNECTOR).is_some());
        // Each side lists its own connectors, in registry order, and nothing else.
        let sides: Vec<&str> = [names(Side::Psa), names(Side::Erp)].concat();
        assert_eq!(sides.len(), CONNECTORS.len());
        assert!(sides.iter().all(|n| find(n).is_some()));
        assert!(!names(Side::Psa).is_empty() && !names(Side::Erp).is_empty());
    }

    #[test]
    fn a_connection_names_one_known_connector_of_its_side_with_settings_it_accepts() {
        fn table(text: &str) -> toml::Table {
            toml::from_str(text).expect("toml")
        }
        fn err(side: Side, text: &str) -> (String, String) {
            match side {
                Side::Psa => PsaConnection::read(&table(text)).map(drop),
                Side::Erp => ErpConnection::read(&table(text)).map(drop),
            }
            .expect_err("refused")
        }
        assert_eq!(
            err(Side::Erp, "[sage]\nx = 1\n"),
            (
                "erp.sage".to_string(),
                format!(
                    "not an ERP connector Ferry has ({})",
                    names(Side::Erp).join(", ")
                )
            )
        );
        assert_eq!(
            err(Side::Erp, "[connectwise]\nx = 1\n").0,
            "erp.connectwise",
            "a PSA is not an ERP"
        );
        assert_eq!(err(Side::Psa, "").0, "psa");
        // A name with control characters, or a very long one, is shown escaped and cut.
        let (path, _) = err(Side::Psa, "[\"evil\\u001b[31mRED\"]\nx = 1\n");
        assert_eq!(path, "psa.\"evil\\u{1b}[31mRED\"");
        let (path, _) = err(Side::Psa, &format!("[{}]\nx = 1\n", "a".repeat(5000)));
        assert!(path.len() < 80 && path.ends_with('…'), "{path}");
        assert_eq!(
            err(Side::Erp, "[xero]\ntenant_id = \"o\"\n[tryton]\n").1,
            "name exactly one connector table, e.g. [erp.xero]"
        );
        let (path, message) = err(Side::Erp, "[xero]\ntenant_id = \"o\"\nbatch_sise = 5\n");
        assert_eq!(path, "erp.xero");
        assert!(message.contains("batch_sise"), "{message}");
        let ok = ErpConnection::read(&table("[xero]\ntenant_id = \"org-1\"\n"))
            .expect("a minimal Xero connection");
        assert_eq!(ok.name(), "xero");
        let mut c = ok.clone();
        assert!(c.update::<crate::xero::XeroConfig>(|x| x.batch_size = 7));
        assert!(!c.update::<crate::tryton::TrytonConfig>(|t| t.page_size = 1));
        assert_eq!(
            c.typed::<crate::xero::XeroConfig>()
                .expect("typed")
                .batch_size,
            7
        );
        assert_eq!(ErpConnection::read(&c.to_table()).expect("round trip"), c);
    }
}
