//! AWS adapters for Ferry's ports: DynamoDB (one table, single-table design) for
//! every store, SQS for the queues, EventBridge for domain events, Secrets
//! Manager for credentials. Each passes the same contract suite as its embedded
//! (SQLite) twin; `tests/contracts.rs` runs them against moto.
//!
//! Item layouts live only here. Every partition key starts with the tenant id
//! (the rate budget's with the ERP account key, which names the organisation).

pub mod audit;
pub mod budget;
pub mod cursor;
pub mod dedupe;
pub mod events;
pub mod exceptions;
pub mod idempotency;
pub mod idmap;
pub mod ledger;
pub mod lock;
pub mod provision;
pub mod queue;
pub mod reports;
pub mod secrets;
pub mod staging;
pub mod table;
pub mod testing;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::ports::*;

pub use table::Table;

/// Where the stack's resources are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// The DynamoDB table (`pk`, `sk`, GSI `gsi1`, TTL on `ttl`).
    pub table: String,
    /// Queue URLs, one per [`QueueName`].
    pub queues: BTreeMap<QueueName, String>,
    /// The EventBridge bus for domain events.
    pub event_bus: String,
    /// Secrets Manager names: `{secret_prefix}{tenant}`.
    pub secret_prefix: String,
    /// How long secret values are cached in the function.
    pub secret_ttl: Duration,
}

/// Every AWS adapter, built once per cold start from one SDK config.
#[derive(Clone)]
pub struct Adapters {
    pub queue: Arc<dyn Queue>,
    pub cursors: Arc<dyn CursorStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub idmap: Arc<dyn IdMap>,
    pub exceptions: Arc<dyn ExceptionStore>,
    pub audit: Arc<dyn AuditLog>,
    pub events: Arc<dyn EventPublisher>,
    pub budget: Arc<dyn RateBudget>,
    pub ledger: Arc<dyn RecordLedger>,
    pub reports: Arc<dyn ferry_core::ports::Reports>,
    pub staging: Arc<dyn Staging>,
    pub dedupe: Arc<dyn EventDedupe>,
    pub secrets: Arc<secrets::SecretsManager>,
    pub locks: Arc<dyn LockStore>,
}

impl Adapters {
    /// The adapters of one stack; `clock` times the secret cache.
    pub fn new(sdk: &aws_config::SdkConfig, r: &Resources, clock: Arc<dyn Clock>) -> Adapters {
        let table = Table::new(aws_sdk_dynamodb::Client::new(sdk), &r.table);
        Adapters {
            queue: Arc::new(queue::SqsQueue::new(
                aws_sdk_sqs::Client::new(sdk),
                r.queues.clone(),
            )),
            cursors: Arc::new(cursor::DynamoCursors {
                table: table.clone(),
            }),
            idempotency: Arc::new(idempotency::DynamoIdempotency {
                table: table.clone(),
            }),
            idmap: Arc::new(idmap::DynamoIdMap {
                table: table.clone(),
            }),
            exceptions: Arc::new(exceptions::DynamoExceptions {
                table: table.clone(),
            }),
            audit: Arc::new(audit::DynamoAudit {
                table: table.clone(),
            }),
            events: Arc::new(events::EventBridgePublisher::new(
                aws_sdk_eventbridge::Client::new(sdk),
                &r.event_bus,
            )),
            budget: Arc::new(budget::DynamoBudget {
                table: table.clone(),
            }),
            ledger: Arc::new(ledger::DynamoLedger {
                table: table.clone(),
            }),
            reports: Arc::new(reports::DynamoReports {
                table: table.clone(),
            }),
            staging: Arc::new(staging::DynamoStaging {
                table: table.clone(),
            }),
            dedupe: Arc::new(dedupe::DynamoDedupe {
                table: table.clone(),
            }),
            locks: Arc::new(lock::DynamoLocks { table }),
            secrets: Arc::new(secrets::SecretsManager::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                &r.secret_prefix,
                r.secret_ttl,
                clock,
            )),
        }
    }
}

impl Adapters {
    /// The handlers' dependencies on these adapters.
    pub fn deps(
        &self,
        clock: Arc<dyn Clock>,
        tenants: Arc<dyn ferry_core::deps::Tenants>,
        settings: ferry_core::Settings,
    ) -> ferry_core::Deps {
        ferry_core::Deps {
            clock,
            queue: self.queue.clone(),
            cursors: self.cursors.clone(),
            idempotency: self.idempotency.clone(),
            idmap: self.idmap.clone(),
            exceptions: self.exceptions.clone(),
            audit: self.audit.clone(),
            events: self.events.clone(),
            budget: self.budget.clone(),
            ledger: self.ledger.clone(),
            reports: self.reports.clone(),
            staging: self.staging.clone(),
            dedupe: self.dedupe.clone(),
            tenants,
            periods: Arc::new(ferry_core::periods::PeriodCache::default()),
            settings,
        }
    }
}

/// The account the configured credentials belong to (STS GetCallerIdentity), so a
/// deployment can refuse to go into the wrong one.
pub async fn caller_account(sdk: &aws_config::SdkConfig) -> Result<String, ferry_core::PortError> {
    aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(table::sdk_err("sts", "get_caller_identity"))?
        .account
        .ok_or_else(|| {
            ferry_core::PortError::permanent(
                "sts",
                "get_caller_identity",
                "no account in the answer",
            )
        })
}

/// Loads the SDK config the standard way (env, then the Lambda role);
/// `AWS_ENDPOINT_URL` points every client at an emulator with no code change.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}
