use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::{Domain, SourceVersion, TenantId};
use serde::{Deserialize, Serialize};

use crate::error::PortError;
use crate::ports::exceptions::Owner;

/// The one state every input ends in (or is on its way to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Disposition {
    /// Seen, not yet decided (transform in progress or waiting to retry).
    Pending,
    /// Deliberately not posted, with the reason (a filter, reference data, superseded).
    Skipped { reason: String },
    /// Failed with a reason and an owner; see the exception store.
    Exception {
        exception_id: String,
        reason: crate::ReasonCode,
        owner: Owner,
    },
    /// A post command was queued for `doc_key` at `revision`.
    Queued { doc_key: String, revision: i64 },
    /// The ERP holds it.
    Posted { doc_key: String, revision: i64 },
}

impl Disposition {
    pub fn state(&self) -> &'static str {
        match self {
            Disposition::Pending => "pending",
            Disposition::Skipped { .. } => "skipped",
            Disposition::Exception { .. } => "exception",
            Disposition::Queued { .. } => "queued",
            Disposition::Posted { .. } => "posted",
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Disposition::Skipped { .. }
                | Disposition::Exception { .. }
                | Disposition::Posted { .. }
        )
    }
}

/// A source record as the ledger knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub source_key: String,
    pub domain: Domain,
    pub version: SourceVersion,
    pub content_hash: String,
    pub disposition: Disposition,
    /// When Ferry first heard of this version (webhook receipt or poll).
    pub received_at: DateTime<Utc>,
    pub posted_at: Option<DateTime<Utc>>,
    /// The canonical record JSON, kept for lookups (projects for time entries) and preview.
    pub canonical: Option<String>,
}

/// What `observe` decided about an incoming version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observe {
    /// A new version (or the first, or a retry of an unfinished one): process it.
    /// `previous` is the state before; `last_doc` the document the record was last
    /// queued or posted in (kept across resets, so a retry still knows it).
    New {
        previous: Option<Disposition>,
        last_doc: Option<String>,
    },
    /// Same version and content already reached a final state: nothing to do
    /// (unless the caller is a replay, which processes it again).
    Duplicate {
        disposition: Disposition,
        last_doc: Option<String>,
    },
    /// Older than what we hold: must not overwrite it.
    Stale { current: SourceVersion },
}

/// Parameters of `observe`.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub tenant: &'a TenantId,
    pub source_key: &'a str,
    pub domain: Domain,
    pub version: &'a SourceVersion,
    pub content_hash: &'a str,
    pub received_at: DateTime<Utc>,
    pub canonical: Option<&'a str>,
}

/// Counts for the run summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerCount {
    pub domain: Domain,
    pub state: String,
    /// The skip reason or exception reason; empty for other states.
    pub reason: String,
    pub owner: Option<Owner>,
    pub count: u64,
}

/// When a domain last moved, for the health of a tenant: the latest post and
/// the oldest record still on its way (pending or queued).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainActivity {
    pub domain: Domain,
    pub last_posted_at: Option<DateTime<Utc>>,
    pub oldest_unsettled_at: Option<DateTime<Utc>>,
    /// Records pending or queued.
    pub unsettled: u64,
}

/// The record ledger: the latest version of every source record, its canonical
/// form, and its disposition, so that every input ends in exactly one state.
#[async_trait]
pub trait RecordLedger: Send + Sync {
    /// Records that a version was seen. Newer versions replace older ones
    /// (disposition reset to `Pending`); older ones are refused.
    async fn observe(&self, obs: Observation<'_>) -> Result<Observe, PortError>;

    /// Sets the disposition of the version that is current; a settle for a version
    /// that is no longer current is ignored (returns false).
    async fn settle(
        &self,
        tenant: &TenantId,
        source_key: &str,
        version: &SourceVersion,
        disposition: &Disposition,
    ) -> Result<bool, PortError>;

    /// Notes the document the current `version` is about to be sent to (staged
    /// into, or posted as), before anything sends it there; the state stays as
    /// it is. A crash between the send and the settle then still leaves the
    /// ledger knowing where the record may be, so a later deletion, move or
    /// filter takes it out of that document (`Observe::New::last_doc`). A note
    /// for a version that is no longer current is ignored (returns false).
    async fn note_doc(
        &self,
        tenant: &TenantId,
        source_key: &str,
        version: &SourceVersion,
        doc_key: &str,
    ) -> Result<bool, PortError>;

    /// Settles every entry queued for `doc_key` at a revision `<= revision` (the
    /// document's outcome becomes theirs: `Posted`, or `Exception` if the ERP refused it).
    /// `Posted` also stamps `posted_at = at`. Returns how many entries changed.
    async fn settle_doc(
        &self,
        tenant: &TenantId,
        doc_key: &str,
        revision: i64,
        disposition: &Disposition,
        at: DateTime<Utc>,
    ) -> Result<u64, PortError>;

    async fn get(
        &self,
        tenant: &TenantId,
        source_key: &str,
    ) -> Result<Option<LedgerEntry>, PortError>;

    /// Counts by domain, state, reason and owner.
    async fn counts(&self, tenant: &TenantId) -> Result<Vec<LedgerCount>, PortError>;

    /// Receipt-to-posted latencies of entries received at or after `since`.
    async fn latencies(
        &self,
        tenant: &TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<Duration>, PortError>;

    /// Per domain with entries: the latest `posted_at` and the oldest
    /// `received_at` among records not yet settled (pending or queued).
    async fn activity(&self, tenant: &TenantId) -> Result<Vec<DomainActivity>, PortError>;

    /// Every entry of one domain.
    async fn list(&self, tenant: &TenantId, domain: Domain) -> Result<Vec<LedgerEntry>, PortError>;
}
