use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use serde::{Deserialize, Serialize};

use crate::error::PortError;

/// A domain event on the stack's bus. `detail_type` is versioned by `schema_version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// `ferry.record.posted`, `ferry.exception.raised`, `ferry.exception.resolved`,
    /// `ferry.reconciliation.finished`, `ferry.reconciliation.mismatched`.
    pub detail_type: String,
    pub schema_version: u32,
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    pub detail: serde_json::Value,
}

impl DomainEvent {
    pub const RECORD_POSTED: &'static str = "ferry.record.posted";
    pub const EXCEPTION_RAISED: &'static str = "ferry.exception.raised";
    pub const EXCEPTION_RESOLVED: &'static str = "ferry.exception.resolved";
    pub const RECONCILIATION_FINISHED: &'static str = "ferry.reconciliation.finished";
    pub const RECONCILIATION_MISMATCHED: &'static str = "ferry.reconciliation.mismatched";

    pub fn new(
        detail_type: &str,
        tenant: &TenantId,
        at: DateTime<Utc>,
        detail: serde_json::Value,
    ) -> Self {
        DomainEvent {
            detail_type: detail_type.to_string(),
            schema_version: 1,
            tenant: tenant.clone(),
            at,
            detail,
        }
    }
}

/// Publishes domain events (EventBridge on AWS, an outbox table locally).
#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), PortError>;
}
