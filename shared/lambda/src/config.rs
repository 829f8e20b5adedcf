//! Typed function configuration from environment variables. A missing or
//! malformed setting stops the cold start with a message that names it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_aws::Resources;
use ferry_connectors::tenant::{self, ConfiguredTenants, TenantConfig, Wiring};
use ferry_core::ports::{Clock, QueueName, SystemClock};
use ferry_core::{Deps, Settings};
use ferry_embedded::Store;

/// A configuration problem found at cold start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required ({1})")]
    Missing(&'static str, &'static str),
    #[error("environment variable {name} is malformed: {problem}")]
    Malformed { name: &'static str, problem: String },
    #[error("tenant wiring failed: {0}")]
    Wiring(#[from] tenant::WiringError),
    #[error("store: {0}")]
    Store(#[from] ferry_core::PortError),
}

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// `sqlite:/path/to/ferry.db`: the embedded adapters (local runs, `cargo lambda watch`).
    Sqlite(PathBuf),
    /// `aws`: DynamoDB, SQS, EventBridge and Secrets Manager, named by the `FERRY_*` variables.
    Aws(Resources),
}

/// Typed function configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    /// Tenant files (`tenant.toml`), one per tenant of this stack.
    pub tenant_files: Vec<PathBuf>,
    /// Deliveries before a message goes to its DLQ (embedded store; on AWS the
    /// queue's RedrivePolicy decides, and this must match it).
    pub max_receives: u32,
    pub settings: Settings,
}

/// The queue URL variables, by queue.
pub const QUEUE_VARS: [(QueueName, &str); 4] = [
    (QueueName::Transform, "FERRY_QUEUE_TRANSFORM_URL"),
    (QueueName::Post, "FERRY_QUEUE_POST_URL"),
    (QueueName::TransformDlq, "FERRY_QUEUE_TRANSFORM_DLQ_URL"),
    (QueueName::PostDlq, "FERRY_QUEUE_POST_DLQ_URL"),
];

fn var(
    name: &'static str,
    why: &'static str,
    env: &HashMap<String, String>,
) -> Result<String, ConfigError> {
    env.get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or(ConfigError::Missing(name, why))
}

fn number<T: std::str::FromStr>(
    name: &'static str,
    default: T,
    env: &HashMap<String, String>,
) -> Result<T, ConfigError> {
    match env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ConfigError::Malformed {
            name,
            problem: format!("expected a whole number, got {v:?}"),
        }),
    }
}

fn aws_resources(env: &HashMap<String, String>) -> Result<Resources, ConfigError> {
    let mut queues = BTreeMap::new();
    for (q, name) in QUEUE_VARS {
        let url = var(name, "the queue's URL", env)?;
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(ConfigError::Malformed {
                name,
                problem: format!("expected an SQS queue URL, got {url:?}"),
            });
        }
        queues.insert(q, url);
    }
    Ok(Resources {
        table: var("FERRY_TABLE", "the DynamoDB table name", env)?,
        queues,
        event_bus: var(
            "FERRY_EVENT_BUS",
            "the EventBridge bus name for domain events",
            env,
        )?,
        secret_prefix: var(
            "FERRY_SECRET_PREFIX",
            "the Secrets Manager name prefix; a tenant's secret is <prefix><tenant>",
            env,
        )?,
        secret_ttl: Duration::from_secs(number("FERRY_SECRET_TTL_SECONDS", 300, env)?),
    })
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads settings from a map (tests pass their own).
    pub fn from_map(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let store = var(
            "FERRY_STORE",
            "where state lives: aws, or sqlite:<path>",
            env,
        )?;
        let store = match store.split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => StoreConfig::Sqlite(PathBuf::from(path)),
            None if store == "aws" => StoreConfig::Aws(aws_resources(env)?),
            _ => {
                return Err(ConfigError::Malformed {
                    name: "FERRY_STORE",
                    problem: format!("expected aws or sqlite:<path>, got {store:?}"),
                });
            }
        };
        let tenants = var(
            "FERRY_TENANT_FILES",
            "comma-separated tenant.toml paths",
            env,
        )?;
        let tenant_files = tenants
            .split(',')
            .map(|p| PathBuf::from(p.trim()))
            .collect();
        let mut settings = Settings::default();
        settings.visibility_timeout = Duration::from_secs(number(
            "FERRY_VISIBILITY_TIMEOUT_SECONDS",
            settings.visibility_timeout.as_secs(),
            env,
        )?);
        Ok(Config {
            store,
            tenant_files,
            max_receives: number("FERRY_MAX_RECEIVES", 5, env)?,
            settings,
        })
    }

    /// Builds the handlers' dependencies once (at cold start).
    pub async fn build(&self) -> Result<Deps, ConfigError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let tenants = Arc::new(ConfiguredTenants::new());
        let (deps, wiring) = match &self.store {
            StoreConfig::Sqlite(path) => {
                let store = Store::open(path, clock.clone(), self.max_receives)?;
                let wiring = Wiring {
                    secrets: store.secrets.clone(),
                    locks: store.locks.clone(),
                    budget: store.budget.clone(),
                    clock: clock.clone(),
                    budget_max_wait: self.settings.budget_max_wait,
                };
                (
                    store.deps(clock, tenants.clone(), self.settings.clone()),
                    wiring,
                )
            }
            StoreConfig::Aws(r) => {
                let sdk = ferry_aws::sdk_config().await;
                let a = ferry_aws::Adapters::new(&sdk, r, clock.clone());
                let wiring = Wiring {
                    secrets: a.secrets.clone(),
                    locks: a.locks.clone(),
                    budget: a.budget.clone(),
                    clock: clock.clone(),
                    budget_max_wait: self.settings.budget_max_wait,
                };
                (
                    a.deps(clock, tenants.clone(), self.settings.clone()),
                    wiring,
                )
            }
        };
        for file in &self.tenant_files {
            let (cfg, dir) = TenantConfig::read(file)?;
            let template = cfg.load_template(&dir)?;
            tenants.insert(tenant::build(&cfg, template, &wiring).await?);
        }
        Ok(deps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        Config::from_map(&env(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn a_missing_or_malformed_setting_is_named_at_cold_start() {
        assert!(err(&[]).contains("FERRY_STORE"));
        assert!(err(&[("FERRY_STORE", "dynamodb")]).contains("FERRY_STORE is malformed"));
        assert!(err(&[("FERRY_STORE", "sqlite:/tmp/x.db")]).contains("FERRY_TENANT_FILES"));
        let e = err(&[
            ("FERRY_STORE", "sqlite:/tmp/x.db"),
            ("FERRY_TENANT_FILES", "t.toml"),
            ("FERRY_MAX_RECEIVES", "many"),
        ]);
        assert!(e.contains("FERRY_MAX_RECEIVES"), "{e}");
        let ok = Config::from_map(&env(&[
            ("FERRY_STORE", "sqlite:/tmp/x.db"),
            ("FERRY_TENANT_FILES", "a.toml, b.toml"),
        ]))
        .unwrap();
        assert_eq!(ok.tenant_files.len(), 2);
    }

    #[test]
    fn the_aws_store_needs_every_resource_named() {
        let mut pairs = vec![("FERRY_STORE", "aws"), ("FERRY_TENANT_FILES", "t.toml")];
        assert!(err(&pairs).contains("FERRY_QUEUE_TRANSFORM_URL"));
        pairs.extend([
            (
                "FERRY_QUEUE_TRANSFORM_URL",
                "http://127.0.0.1:5005/1/transform",
            ),
            (
                "FERRY_QUEUE_POST_URL",
                "https://sqs.eu-west-1.amazonaws.com/1/post",
            ),
            ("FERRY_QUEUE_TRANSFORM_DLQ_URL", "transform-dlq"),
        ]);
        let e = err(&pairs);
        assert!(
            e.contains("FERRY_QUEUE_TRANSFORM_DLQ_URL is malformed"),
            "{e}"
        );
        pairs.pop();
        pairs.extend([
            ("FERRY_QUEUE_TRANSFORM_DLQ_URL", "http://q/tdlq"),
            ("FERRY_QUEUE_POST_DLQ_URL", "http://q/pdlq"),
        ]);
        assert!(err(&pairs).contains("FERRY_TABLE"));
        pairs.push(("FERRY_TABLE", "acme-prod-state"));
        assert!(err(&pairs).contains("FERRY_EVENT_BUS"));
        pairs.push(("FERRY_EVENT_BUS", "acme-prod-bus"));
        assert!(err(&pairs).contains("FERRY_SECRET_PREFIX"));
        pairs.push(("FERRY_SECRET_PREFIX", "ferry/acme-prod/"));
        pairs.push(("FERRY_SECRET_TTL_SECONDS", "soon"));
        assert!(err(&pairs).contains("FERRY_SECRET_TTL_SECONDS"));
        pairs.pop();
        let ok = Config::from_map(&env(&pairs)).unwrap();
        let StoreConfig::Aws(r) = ok.store else {
            panic!("aws store expected")
        };
        assert_eq!(r.table, "acme-prod-state");
        assert_eq!(r.queues.len(), 4);
        assert_eq!(r.secret_ttl, Duration::from_secs(300));
    }
}
