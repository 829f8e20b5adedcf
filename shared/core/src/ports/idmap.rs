use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;

use crate::error::PortError;

/// One cross-reference: a Ferry document key (e.g. `customers/connectwise:19`)
/// and the id the ERP gave the document, with the version last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMapEntry {
    pub doc_key: String,
    pub erp_id: Option<String>,
    /// The ERP's human number for the document, where it has one.
    pub erp_number: Option<String>,
    /// Monotonic document version last written to the ERP (0 = never written).
    pub version: i64,
    pub content_hash: Option<String>,
    /// While a post holds the document, no other post may write it.
    pub lease_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl IdMapEntry {
    /// Whether the ERP may hold this document. An entry exists once any post
    /// claimed the document, and from then on a create of it may have reached the
    /// ERP, whether or not its id was recorded (an answer lost, a crash before the
    /// bookkeeping). Only a document never claimed is surely absent: every write
    /// that would otherwise be skipped (a removal, an emptied summary) must go to
    /// post, which resolves the document by Ferry's reference first.
    pub fn may_exist_in_erp(entry: Option<&IdMapEntry>) -> bool {
        entry.is_some()
    }
}

/// What `claim` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the document until its lease ends. `entry` is the state
    /// before the claim. An entry without an ERP id means an earlier post claimed
    /// the document and never recorded a write: its create may have reached the
    /// ERP, so the caller must look the document up before creating it.
    Granted { entry: Option<IdMapEntry> },
    /// The ERP already holds this content, or a newer version: nothing to write.
    Stale {
        current_version: i64,
        content_hash: Option<String>,
    },
    /// Another post holds the document.
    Busy { until: DateTime<Utc> },
}

/// Parameters of `claim`.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    pub tenant: &'a TenantId,
    pub doc_key: &'a str,
    pub version: i64,
    pub content_hash: &'a str,
    pub now: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
}

/// Parameters of `commit`.
#[derive(Debug, Clone)]
pub struct CommitRequest<'a> {
    pub tenant: &'a TenantId,
    pub doc_key: &'a str,
    /// The document's ERP id; `None` after a write that removed it from the
    /// ERP (a deleted summary, a voided invoice, a removed timesheet line): the
    /// next write of that document creates a new one, after looking for a live
    /// one by Ferry's reference, and never writes to the removed one.
    pub erp_id: Option<&'a str>,
    pub erp_number: Option<&'a str>,
    pub version: i64,
    pub content_hash: &'a str,
    pub now: DateTime<Utc>,
}

/// The id cross-reference map with version monotonicity. `claim` is a per-document
/// lease that also refuses versions not newer than the one written, so two posts
/// of one document never interleave and an old update never lands after a new one.
#[async_trait]
pub trait IdMap: Send + Sync {
    async fn get(&self, tenant: &TenantId, doc_key: &str) -> Result<Option<IdMapEntry>, PortError>;

    /// Claims the document for writing `version` with `content_hash`. Succeeds only
    /// if no unexpired lease exists and the write changes something: the version is
    /// not older than the stored one and the content differs (a newer version with
    /// identical content, or an older version, is `Stale`).
    async fn claim(&self, req: ClaimRequest<'_>) -> Result<Claim, PortError>;

    /// Records a successful write and ends the lease.
    async fn commit(&self, req: CommitRequest<'_>) -> Result<(), PortError>;

    /// Ends the lease without recording a write.
    async fn release(&self, tenant: &TenantId, doc_key: &str) -> Result<(), PortError>;

    /// Keeps the lease until `until` without recording a write: after a write that
    /// got no answer, the ERP may still be committing, and no other post may
    /// look the document up (and create it) before then. Does nothing if the
    /// document has no entry.
    async fn hold(
        &self,
        tenant: &TenantId,
        doc_key: &str,
        until: DateTime<Utc>,
    ) -> Result<(), PortError>;

    /// Reverse lookup: the Ferry document an ERP id belongs to.
    async fn find_by_erp_id(
        &self,
        tenant: &TenantId,
        erp_id: &str,
    ) -> Result<Option<IdMapEntry>, PortError>;

    /// Every entry whose key starts with `prefix` (e.g. `invoices/`).
    async fn list(&self, tenant: &TenantId, prefix: &str) -> Result<Vec<IdMapEntry>, PortError>;
}
