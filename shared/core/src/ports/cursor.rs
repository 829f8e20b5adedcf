use std::cmp::Ordering;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use serde::{Deserialize, Serialize};

use crate::error::PortError;

/// A compound polling cursor: the last `(updated_at, id)` that was enqueued.
/// Ids compare numerically when both are numbers (ConnectWise ids), else as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub updated_at: DateTime<Utc>,
    pub id: String,
}

impl Cursor {
    pub fn new(updated_at: DateTime<Utc>, id: impl Into<String>) -> Self {
        Cursor {
            updated_at,
            id: id.into(),
        }
    }
}

fn cmp_ids(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

impl PartialOrd for Cursor {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cursor {
    fn cmp(&self, other: &Self) -> Ordering {
        self.updated_at
            .cmp(&other.updated_at)
            .then_with(|| cmp_ids(&self.id, &other.id))
    }
}

/// Result of a conditional cursor advance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advance {
    Advanced,
    /// The stored cursor is already at or past the proposed one; nothing changed.
    Rejected {
        current: Cursor,
    },
}

/// Per-tenant, per-stream polling cursors. `stream` names what is polled,
/// e.g. `connectwise/time_entries`.
#[async_trait]
pub trait CursorStore: Send + Sync {
    async fn get(&self, tenant: &TenantId, stream: &str) -> Result<Option<Cursor>, PortError>;

    /// Moves the cursor forward, conditionally: only if `next` is strictly after
    /// the stored cursor (or none is stored). A cursor never moves backwards.
    async fn advance(
        &self,
        tenant: &TenantId,
        stream: &str,
        next: &Cursor,
    ) -> Result<Advance, PortError>;
}
