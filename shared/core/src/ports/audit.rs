use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use serde::{Deserialize, Serialize};

use crate::error::PortError;

/// Evidence for one ERP write: what was sent, what came back, and from which
/// source records and template version it was produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    pub doc_key: String,
    pub erp_system: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erp_id: Option<String>,
    /// `create`, `update`, `delete`, `adopt` (found in the ERP after an uncertain attempt).
    pub action: String,
    pub version: i64,
    pub source_keys: Vec<String>,
    /// SHA-256 of the canonical source content that produced the document.
    pub source_hash: String,
    pub template_version: String,
    pub idempotency_key: String,
    pub request: String,
    pub response: String,
    pub correlation_id: String,
}

/// Append-only audit log. There is no update or delete.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends and returns the entry's sequence number within the tenant.
    async fn append(&self, entry: &AuditEntry) -> Result<u64, PortError>;

    /// Entries for one document (oldest first), or the latest `limit` for the tenant.
    async fn list(
        &self,
        tenant: &TenantId,
        doc_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, PortError>;
}
