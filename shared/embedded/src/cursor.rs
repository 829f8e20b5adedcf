//! Polling cursors with a conditional, never-backwards advance.

use async_trait::async_trait;
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{Advance, Cursor, CursorStore};
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, from_micros, micros, sql_err};

pub struct SqliteCursors {
    pub(crate) db: Db,
}

#[async_trait]
impl CursorStore for SqliteCursors {
    async fn get(&self, tenant: &TenantId, stream: &str) -> Result<Option<Cursor>, PortError> {
        self.db
            .with(|c| {
                c.query_row(
                    "SELECT updated_at, id FROM cursors WHERE tenant = ?1 AND stream = ?2",
                    params![tenant.as_str(), stream],
                    |r| Ok(Cursor::new(from_micros(r.get(0)?), r.get::<_, String>(1)?)),
                )
                .optional()
            })
            .map_err(sql_err("cursors", "get"))
    }

    async fn advance(
        &self,
        tenant: &TenantId,
        stream: &str,
        next: &Cursor,
    ) -> Result<Advance, PortError> {
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let current: Option<Cursor> = tx
                    .query_row(
                        "SELECT updated_at, id FROM cursors WHERE tenant = ?1 AND stream = ?2",
                        params![tenant.as_str(), stream],
                        |r| Ok(Cursor::new(from_micros(r.get(0)?), r.get::<_, String>(1)?)),
                    )
                    .optional()?;
                if let Some(cur) = current
                    && *next <= cur
                {
                    return Ok(Advance::Rejected { current: cur });
                }
                tx.execute(
                    "INSERT INTO cursors (tenant, stream, updated_at, id) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, stream) DO UPDATE SET updated_at = excluded.updated_at, id = excluded.id",
                    params![tenant.as_str(), stream, micros(next.updated_at), next.id],
                )?;
                tx.commit()?;
                Ok(Advance::Advanced)
            })
            .map_err(sql_err("cursors", "advance"))
    }
}
