//! Identity and provenance carried by every canonical record.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// Errors from parsing identifiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must be 1-64 characters of a-z, 0-9, '-' or '_' (got {value:?})")]
    InvalidSlug { kind: &'static str, value: String },
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
        #[schemars(transparent)]
        pub struct $name(#[schemars(regex(pattern = r"^[a-z0-9_-]{1,64}$"))] String);

        impl $name {
            /// Parses a slug: 1-64 characters of `a-z`, `0-9`, `-`, `_`.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                if is_slug(value) {
                    Ok(Self(value.to_string()))
                } else {
                    Err(IdError::InvalidSlug { kind: $kind, value: value.to_string() })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

slug_id!(
    /// A customer stack's tenant id. Every stored key starts with it.
    TenantId,
    "tenant id"
);
slug_id!(
    /// A connected system, e.g. `connectwise`, `xero`, `redmine`, `tryton`.
    SystemId,
    "system id"
);

/// A record's identity in one system: `(system, id)`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct SourceRef {
    pub system: SystemId,
    pub id: String,
    /// A display name captured with the reference, for humans only; never used to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl SourceRef {
    pub fn new(system: SystemId, id: impl Into<String>) -> Self {
        SourceRef {
            system,
            id: id.into(),
            name: None,
        }
    }

    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// `system:id`, the form used in keys and logs.
    pub fn key(&self) -> String {
        format!("{}:{}", self.system, self.id)
    }
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.system, self.id)
    }
}

/// The ids one record has in other systems (e.g. its Xero ContactID).
pub type ExternalRefs = BTreeMap<SystemId, String>;

/// The version of a record as its source system stamped it.
///
/// Ordering is by `updated_at`, then `etag`. Two versions with the same
/// timestamp and no etag compare equal: callers must also compare content
/// hashes before deciding that an update is a duplicate.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct SourceVersion {
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl SourceVersion {
    pub fn at(updated_at: DateTime<Utc>) -> Self {
        SourceVersion {
            updated_at,
            etag: None,
        }
    }

    /// A monotonic integer form (microseconds since the epoch) for stores that compare numbers.
    pub fn as_micros(&self) -> i64 {
        self.updated_at.timestamp_micros()
    }
}

/// Provenance and identity common to every canonical record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecordMeta {
    pub tenant: TenantId,
    /// Identity in the system that is authoritative for this record.
    pub source: SourceRef,
    /// Identities in other systems, filled in as the record is synced.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refs: ExternalRefs,
    pub source_version: SourceVersion,
    /// Deleted in the source (or voided, for financial documents).
    #[serde(default)]
    pub deleted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_reject_uppercase_spaces_and_empty() {
        assert!(TenantId::parse("acme-consulting").is_ok());
        assert!(TenantId::parse("Acme").is_err());
        assert!(TenantId::parse("a b").is_err());
        assert!(TenantId::parse("").is_err());
        assert!(serde_json::from_str::<SystemId>("\"Xero\"").is_err());
    }

    #[test]
    fn versions_order_by_time_then_etag() {
        let t = DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = SourceVersion::at(t);
        let b = SourceVersion::at(t + chrono::Duration::seconds(1));
        assert!(a < b);
        let c = SourceVersion {
            updated_at: t,
            etag: Some("2".into()),
        };
        assert!(a < c);
    }
}
