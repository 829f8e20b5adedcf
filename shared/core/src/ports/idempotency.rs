use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;

use crate::error::PortError;

/// Status of an idempotency record (the Powertools protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdemStatus {
    InProgress,
    Completed,
}

/// A stored idempotency record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRecord {
    pub key: String,
    pub status: IdemStatus,
    pub payload_hash: String,
    /// TTL: after this the record is as good as absent.
    pub expires_at: DateTime<Utc>,
    /// While `InProgress`, another worker may take over after this instant
    /// (set from the Lambda's remaining time or the visibility timeout).
    pub in_progress_until: Option<DateTime<Utc>>,
    /// The stored result of a completed operation.
    pub response: Option<String>,
    /// How many times an attempt was started under this key.
    pub attempts: u32,
}

/// What `begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The caller now holds the key. `prior_attempts > 0` means an earlier attempt
    /// started and never completed: the side effect may already have happened.
    Started { prior_attempts: u32 },
    /// Another attempt holds the key and has not expired.
    InProgress { until: DateTime<Utc> },
    /// Already done; here is the stored response.
    Completed { response: Option<String> },
    /// The key exists with a different payload hash: a caller bug or a replay
    /// with changed content; never silently treated as a duplicate.
    PayloadMismatch { stored_hash: String },
}

/// Parameters of `begin`.
#[derive(Debug, Clone)]
pub struct BeginRequest<'a> {
    pub tenant: &'a TenantId,
    pub key: &'a str,
    pub payload_hash: &'a str,
    pub now: DateTime<Utc>,
    pub in_progress_until: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Idempotency records following the AWS Powertools protocol: `begin` is one
/// conditional write that succeeds when no live record exists, or the live
/// record is `InProgress` past its in-progress expiry.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn begin(&self, req: BeginRequest<'_>) -> Result<Begin, PortError>;

    /// Marks the key completed with its response, keeping it until `expires_at`.
    async fn complete(
        &self,
        tenant: &TenantId,
        key: &str,
        response: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError>;

    /// Keeps the record `InProgress` but lets the next attempt take over at once:
    /// used when the outcome of the side effect is unknown (timeout, lost response).
    async fn abandon(
        &self,
        tenant: &TenantId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), PortError>;

    /// Deletes the record: the side effect certainly did not happen.
    async fn release(&self, tenant: &TenantId, key: &str) -> Result<(), PortError>;

    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<IdemRecord>, PortError>;
}
