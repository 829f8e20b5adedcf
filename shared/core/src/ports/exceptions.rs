use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::{Domain, Money, TenantId};
use serde::{Deserialize, Serialize};

use crate::error::PortError;
use crate::ports::queue::QueueName;

/// Who must act on an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// Fix the record in the PSA (missing department, unapproved, bad hours).
    ProjectOperations,
    /// Fix accounting setup (tax codes, item/account maps, closed periods, ERP validation).
    Finance,
    /// The partner's support team (credentials, outages, retries exhausted).
    Support,
}

impl Owner {
    pub fn as_str(&self) -> &'static str {
        match self {
            Owner::ProjectOperations => "project_operations",
            Owner::Finance => "finance",
            Owner::Support => "support",
        }
    }

    pub fn parse(s: &str) -> Option<Owner> {
        [Owner::ProjectOperations, Owner::Finance, Owner::Support]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle of an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionStatus {
    /// Failing transiently; still being retried automatically.
    Retrying,
    /// Parked: needs a person. Replayable.
    Open,
    /// Put back into the pipeline; waiting for the outcome.
    Replayed,
    /// A later attempt succeeded (or the record was superseded).
    Resolved,
}

impl ExceptionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ExceptionStatus::Retrying => "retrying",
            ExceptionStatus::Open => "open",
            ExceptionStatus::Replayed => "replayed",
            ExceptionStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ExceptionStatus::Retrying,
            ExceptionStatus::Open,
            ExceptionStatus::Replayed,
            ExceptionStatus::Resolved,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// A record-level failure with a reason and an owner, replayable from `replay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRecord {
    /// Deterministic per (stage, source key): one exception per record and stage.
    pub id: String,
    pub tenant: TenantId,
    pub stage: String,
    pub domain: Domain,
    /// The source record (`connectwise:123`) or document key the failure is about.
    pub source_key: String,
    pub reason: crate::ReasonCode,
    /// A sentence a person can act on.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The ERP's own validation message, verbatim, when it rejected the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erp_message: Option<String>,
    pub owner: Owner,
    pub status: ExceptionStatus,
    pub attempts: u32,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Money this record holds back from the ERP, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    /// Hours this record holds back, when it is time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<ferry_canon::Decimal>,
    /// The document key the record was headed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_key: Option<String>,
    /// Another record whose failure blocks this one (dependency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// Where replay sends `replay_body`.
    pub replay_queue: QueueName,
    pub replay_body: String,
}

/// Filters for listing exceptions. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ExceptionQuery {
    pub tenant: Option<TenantId>,
    pub statuses: Vec<ExceptionStatus>,
    pub owner: Option<Owner>,
    pub domain: Option<Domain>,
    /// Only exceptions first seen before this instant (age filter).
    pub first_seen_before: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
}

/// The exception store: queryable by tenant, status, owner and age.
#[async_trait]
pub trait ExceptionStore: Send + Sync {
    /// Inserts, or updates the existing exception with the same id (attempts + 1,
    /// last_seen, new reason and message). Returns the stored record.
    async fn raise(&self, record: ExceptionRecord) -> Result<ExceptionRecord, PortError>;

    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<ExceptionRecord>, PortError>;

    async fn list(&self, query: &ExceptionQuery) -> Result<Vec<ExceptionRecord>, PortError>;

    /// Sets the status of one exception; returns false if it does not exist.
    async fn set_status(
        &self,
        tenant: &TenantId,
        id: &str,
        status: ExceptionStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, PortError>;

    /// Resolves every unresolved exception about `source_key` (a later success).
    /// Returns how many were resolved.
    async fn resolve_source(
        &self,
        tenant: &TenantId,
        source_key: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, PortError>;

    /// Unresolved exceptions about `source_key`.
    async fn open_for_source(
        &self,
        tenant: &TenantId,
        source_key: &str,
    ) -> Result<Vec<ExceptionRecord>, PortError>;

    /// Unresolved exceptions blocked by `blocker` (dependents to replay once it posts).
    async fn blocked_by(
        &self,
        tenant: &TenantId,
        blocker: &str,
    ) -> Result<Vec<ExceptionRecord>, PortError>;
}
