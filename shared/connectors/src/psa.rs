//! What the PSA mappers share: ISO 8601 instants, a record's metadata, a raw
//! record read as a vendor's shape, and `{"id": 1, "name": "…"}` references.

use chrono::{DateTime, Utc};
use ferry_canon::{ExternalRefs, RecordMeta, SourceRef, SourceVersion, SystemId, TenantId};
use ferry_core::MappingError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// `{"id": 1, "name": "…"}` references (Redmine's and Harvest's).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Named {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
}

/// An ISO 8601 instant (`2026-11-25T16:36:32Z`).
pub fn instant(s: &str, field: &str) -> Result<DateTime<Utc>, MappingError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| MappingError::new(field, "must be an ISO 8601 timestamp").with_value(s))
}

/// A record's metadata: whose, which, which version, and whether deleted.
pub fn meta(
    tenant: &TenantId,
    system: &SystemId,
    id: i64,
    updated: DateTime<Utc>,
    deleted: bool,
) -> RecordMeta {
    RecordMeta {
        tenant: tenant.clone(),
        source: SourceRef::new(system.clone(), id.to_string()),
        refs: ExternalRefs::new(),
        source_version: SourceVersion::at(updated),
        deleted,
    }
}

/// A raw record read as `vendor`'s shape of `what`.
pub fn parse<T: DeserializeOwned>(v: &Value, what: &str, vendor: &str) -> Result<T, MappingError> {
    T::deserialize(v)
        .map_err(|e| MappingError::new(what, format!("does not match the {vendor} shape: {e}")))
}

/// A reference to another record of the same system.
pub fn named(system: &SystemId, n: &Named) -> SourceRef {
    let r = SourceRef::new(system.clone(), n.id.to_string());
    match &n.name {
        Some(name) => r.named(name.clone()),
        None => r,
    }
}
