//! Polling cursors: `pk = {tenant}#cursor`, `sk = stream`. Advance is a
//! conditional write on the item's `rev`, so a cursor never moves backwards
//! even when two polls race.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{Advance, Cursor, CursorStore};
use serde::{Deserialize, Serialize};

use crate::table::{Table, versioned};

const PORT: &str = "cursors";

#[derive(Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    rev: i64,
    updated_at: DateTime<Utc>,
    id: String,
}

versioned!(Item);

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
        self.table
            .update(
                PORT,
                "advance",
                &pk(tenant),
                stream,
                |current: Option<Item>| {
                    if let Some(c) = current {
                        let stored = Cursor::new(c.updated_at, c.id);
                        if *next <= stored {
                            return Ok((None, Advance::Rejected { current: stored }));
                        }
                    }
                    let item = Item {
                        pk: pk(tenant),
                        sk: stream.to_string(),
                        rev: 0,
                        updated_at: next.updated_at,
                        id: next.id.clone(),
                    };
                    Ok((Some(item), Advance::Advanced))
                },
            )
            .await
    }
}
