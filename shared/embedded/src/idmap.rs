//! The id cross-reference map with per-document leases and version monotonicity.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{Claim, ClaimRequest, CommitRequest, IdMap, IdMapEntry};
use rusqlite::{OptionalExtension, Row, params};

use crate::db::{Db, from_micros, micros, sql_err};

pub struct SqliteIdMap {
    pub(crate) db: Db,
}

const COLUMNS: &str = "doc_key, erp_id, erp_number, version, content_hash, lease_until, updated_at";

fn entry(r: &Row<'_>) -> rusqlite::Result<IdMapEntry> {
    Ok(IdMapEntry {
        doc_key: r.get(0)?,
        erp_id: r.get(1)?,
        erp_number: r.get(2)?,
        version: r.get(3)?,
        content_hash: r.get(4)?,
        lease_until: r.get::<_, Option<i64>>(5)?.map(from_micros),
        updated_at: from_micros(r.get(6)?),
    })
}

fn get(c: &rusqlite::Connection, tenant: &str, key: &str) -> rusqlite::Result<Option<IdMapEntry>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM idmap WHERE tenant = ?1 AND doc_key = ?2"),
        params![tenant, key],
        entry,
    )
    .optional()
}

#[async_trait]
impl IdMap for SqliteIdMap {
    async fn get(&self, tenant: &TenantId, doc_key: &str) -> Result<Option<IdMapEntry>, PortError> {
        self.db
            .with(|c| get(c, tenant.as_str(), doc_key))
            .map_err(sql_err("idmap", "get"))
    }

    async fn claim(&self, req: ClaimRequest<'_>) -> Result<Claim, PortError> {
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let current = get(&tx, req.tenant.as_str(), req.doc_key)?;
                if let Some(e) = &current {
                    if let Some(until) = e.lease_until
                        && until > req.now
                    {
                        return Ok(Claim::Busy { until });
                    }
                    let same_content = e.content_hash.as_deref() == Some(req.content_hash);
                    if e.erp_id.is_some() && (req.version < e.version || same_content) {
                        return Ok(Claim::Stale {
                            current_version: e.version,
                            content_hash: e.content_hash.clone(),
                        });
                    }
                }
                tx.execute(
                    "INSERT INTO idmap (tenant, doc_key, lease_until, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, doc_key) DO UPDATE SET lease_until = excluded.lease_until",
                    params![req.tenant.as_str(), req.doc_key, micros(req.lease_until), micros(req.now)],
                )?;
                tx.commit()?;
                Ok(Claim::Granted { entry: current })
            })
            .map_err(sql_err("idmap", "claim"))
    }

    async fn commit(&self, req: CommitRequest<'_>) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "INSERT INTO idmap (tenant, doc_key, erp_id, erp_number, version, content_hash, lease_until, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)
                     ON CONFLICT (tenant, doc_key) DO UPDATE SET
                        erp_id = excluded.erp_id,
                        erp_number = COALESCE(excluded.erp_number, idmap.erp_number),
                        version = MAX(idmap.version, excluded.version),
                        content_hash = CASE WHEN excluded.version >= idmap.version THEN excluded.content_hash ELSE idmap.content_hash END,
                        lease_until = NULL,
                        updated_at = excluded.updated_at",
                    params![
                        req.tenant.as_str(),
                        req.doc_key,
                        req.erp_id,
                        req.erp_number,
                        req.version,
                        req.content_hash,
                        micros(req.now)
                    ],
                )
            })
            .map(|_| ())
            .map_err(sql_err("idmap", "commit"))
    }

    async fn release(&self, tenant: &TenantId, doc_key: &str) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "UPDATE idmap SET lease_until = NULL WHERE tenant = ?1 AND doc_key = ?2",
                    params![tenant.as_str(), doc_key],
                )
            })
            .map(|_| ())
            .map_err(sql_err("idmap", "release"))
    }

    async fn hold(
        &self,
        tenant: &TenantId,
        doc_key: &str,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "UPDATE idmap SET lease_until = ?3 WHERE tenant = ?1 AND doc_key = ?2",
                    params![tenant.as_str(), doc_key, micros(until)],
                )
            })
            .map(|_| ())
            .map_err(sql_err("idmap", "hold"))
    }

    async fn find_by_erp_id(
        &self,
        tenant: &TenantId,
        erp_id: &str,
    ) -> Result<Option<IdMapEntry>, PortError> {
        self.db
            .with(|c| {
                c.query_row(
                    &format!("SELECT {COLUMNS} FROM idmap WHERE tenant = ?1 AND erp_id = ?2"),
                    params![tenant.as_str(), erp_id],
                    entry,
                )
                .optional()
            })
            .map_err(sql_err("idmap", "find_by_erp_id"))
    }

    async fn list(&self, tenant: &TenantId, prefix: &str) -> Result<Vec<IdMapEntry>, PortError> {
        let upper = format!("{prefix}\u{10FFFF}");
        self.db
            .with(|c| {
                let mut s = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM idmap WHERE tenant = ?1 AND doc_key >= ?2 AND doc_key < ?3 ORDER BY doc_key"
                ))?;
                s.query_map(params![tenant.as_str(), prefix, upper], entry)?
                    .collect()
            })
            .map_err(sql_err("idmap", "list"))
    }
}
