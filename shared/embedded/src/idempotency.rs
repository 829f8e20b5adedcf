//! Idempotency records (the Powertools protocol) on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{Begin, BeginRequest, IdemRecord, IdemStatus, IdempotencyStore};
use ferry_core::rules::idempotency::{self as rules, BeginStep};
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, from_micros, micros, sql_err};

pub struct SqliteIdempotency {
    pub(crate) db: Db,
}

fn read(c: &rusqlite::Connection, tenant: &str, key: &str) -> rusqlite::Result<Option<IdemRecord>> {
    c.query_row(
        "SELECT status, payload_hash, expires_at, in_progress_until, response, attempts
         FROM idempotency WHERE tenant = ?1 AND key = ?2",
        params![tenant, key],
        |r| {
            Ok(IdemRecord {
                key: key.to_string(),
                status: if r.get::<_, String>(0)? == "COMPLETED" {
                    IdemStatus::Completed
                } else {
                    IdemStatus::InProgress
                },
                payload_hash: r.get(1)?,
                expires_at: from_micros(r.get(2)?),
                in_progress_until: r.get::<_, Option<i64>>(3)?.map(from_micros),
                response: r.get(4)?,
                attempts: r.get(5)?,
            })
        },
    )
    .optional()
}

#[async_trait]
impl IdempotencyStore for SqliteIdempotency {
    async fn begin(&self, req: BeginRequest<'_>) -> Result<Begin, PortError> {
        let now = req.now;
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let existing = read(&tx, req.tenant.as_str(), req.key)?;
                let prior = match rules::begin(existing.as_ref(), req.payload_hash, now) {
                    BeginStep::Answer(a) => return Ok(a),
                    BeginStep::Take { prior_attempts } => prior_attempts,
                };
                tx.execute(
                    "INSERT INTO idempotency (tenant, key, status, payload_hash, expires_at, in_progress_until, response, attempts)
                     VALUES (?1, ?2, 'INPROGRESS', ?3, ?4, ?5, NULL, ?6)
                     ON CONFLICT (tenant, key) DO UPDATE SET status = 'INPROGRESS', payload_hash = excluded.payload_hash,
                        expires_at = excluded.expires_at, in_progress_until = excluded.in_progress_until,
                        response = NULL, attempts = excluded.attempts",
                    params![
                        req.tenant.as_str(),
                        req.key,
                        req.payload_hash,
                        micros(req.expires_at),
                        micros(req.in_progress_until),
                        prior + 1
                    ],
                )?;
                tx.commit()?;
                Ok(Begin::Started { prior_attempts: prior })
            })
            .map_err(sql_err("idempotency", "begin"))
    }

    async fn complete(
        &self,
        tenant: &TenantId,
        key: &str,
        response: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let n = self
            .db
            .with(|c| {
                c.execute(
                    "UPDATE idempotency SET status = 'COMPLETED', response = ?3, expires_at = ?4, in_progress_until = NULL
                     WHERE tenant = ?1 AND key = ?2",
                    params![tenant.as_str(), key, response, micros(expires_at)],
                )
            })
            .map_err(sql_err("idempotency", "complete"))?;
        if n == 0 {
            return Err(PortError::permanent(
                "idempotency",
                "complete",
                format!("no record {key} to complete"),
            ));
        }
        Ok(())
    }

    async fn abandon(
        &self,
        tenant: &TenantId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "UPDATE idempotency SET in_progress_until = ?3 WHERE tenant = ?1 AND key = ?2 AND status = 'INPROGRESS'",
                    params![tenant.as_str(), key, micros(now)],
                )
            })
            .map(|_| ())
            .map_err(sql_err("idempotency", "abandon"))
    }

    async fn release(&self, tenant: &TenantId, key: &str) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "DELETE FROM idempotency WHERE tenant = ?1 AND key = ?2 AND status = 'INPROGRESS'",
                    params![tenant.as_str(), key],
                )
            })
            .map(|_| ())
            .map_err(sql_err("idempotency", "release"))
    }

    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<IdemRecord>, PortError> {
        self.db
            .with(|c| read(c, tenant.as_str(), key))
            .map_err(sql_err("idempotency", "get"))
    }
}
