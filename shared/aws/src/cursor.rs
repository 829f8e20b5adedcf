//! Polling cursors: `pk = {tenant}#cursor`, `sk = stream`. Advance is a
//! conditional write on the item's `rev`, so a cursor never moves backwards
//! even when two polls race.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{Advance, Cursor, CursorStore};
use serde::{Deserialize, Serialize};

use crate::table::{Cond, MAX_CONFLICTS, Table, conflict};

const PORT: &str = "cursors";

#[derive(Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    rev: i64,
    updated_at: DateTime<Utc>,
    id: String,
}

pub struct DynamoCursors {
    pub(crate) table: Table,
}

fn pk(t: &TenantId) -> String {
    format!("{t}#cursor")
}

#[async_trait]
impl CursorStore for DynamoCursors {
    async fn get(&self, tenant: &TenantId, stream: &str) -> Result<Option<Cursor>, PortError> {
        let item: Option<Item> = self.table.get(PORT, "get", &pk(tenant), stream).await?;
        Ok(item.map(|i| Cursor::new(i.updated_at, i.id)))
    }

    async fn advance(
        &self,
        tenant: &TenantId,
        stream: &str,
        next: &Cursor,
    ) -> Result<Advance, PortError> {
        for _ in 0..MAX_CONFLICTS {
            let current: Option<Item> =
                self.table.get(PORT, "advance", &pk(tenant), stream).await?;
            if let Some(c) = &current {
                let stored = Cursor::new(c.updated_at, c.id.clone());
                if *next <= stored {
                    return Ok(Advance::Rejected { current: stored });
                }
            }
            let item = Item {
                pk: pk(tenant),
                sk: stream.to_string(),
                rev: current.as_ref().map_or(1, |c| c.rev + 1),
                updated_at: next.updated_at,
                id: next.id.clone(),
            };
            let cond = Cond::Expect(current.map(|c| c.rev));
            if self.table.put(PORT, "advance", &item, cond).await? {
                return Ok(Advance::Advanced);
            }
        }
        Err(conflict(PORT, "advance"))
    }
}
