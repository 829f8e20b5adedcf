//! The append-only audit log (triggers refuse UPDATE and DELETE).

use async_trait::async_trait;
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{AuditEntry, AuditLog, DomainEvent, EventPublisher};
use rusqlite::params;

use crate::db::{Db, micros, sql_err};

pub struct SqliteAudit {
    pub(crate) db: Db,
}

#[async_trait]
impl AuditLog for SqliteAudit {
    async fn append(&self, entry: &AuditEntry) -> Result<u64, PortError> {
        let json = serde_json::to_string(entry).expect("audit entries serialise");
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let seq: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM audit WHERE tenant = ?1",
                    params![entry.tenant.as_str()],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO audit (tenant, seq, at, doc_key, entry) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![entry.tenant.as_str(), seq, micros(entry.at), entry.doc_key, json],
                )?;
                tx.commit()?;
                Ok(seq as u64)
            })
            .map_err(sql_err("audit", "append"))
    }

    async fn list(
        &self,
        tenant: &TenantId,
        doc_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, PortError> {
        self.db
            .with(|c| {
                let rows: Vec<String> = match doc_key {
                    Some(k) => {
                        let mut s = c.prepare_cached(
                            "SELECT entry FROM audit WHERE tenant = ?1 AND doc_key = ?2 ORDER BY seq LIMIT ?3",
                        )?;
                        s.query_map(params![tenant.as_str(), k, limit as i64], |r| r.get(0))?
                            .collect::<Result<_, _>>()?
                    }
                    None => {
                        let mut s = c.prepare_cached(
                            "SELECT entry FROM (SELECT seq, entry FROM audit WHERE tenant = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
                        )?;
                        s.query_map(params![tenant.as_str(), limit as i64], |r| r.get(0))?
                            .collect::<Result<_, _>>()?
                    }
                };
                Ok(rows)
            })
            .map_err(sql_err("audit", "list"))?
            .into_iter()
            .map(|j| {
                serde_json::from_str(&j).map_err(|e| PortError::permanent("audit", "list", e))
            })
            .collect()
    }
}

/// Domain events into an outbox table (the local stand-in for the EventBridge bus).
pub struct SqliteEvents {
    pub(crate) db: Db,
}

impl SqliteEvents {
    /// Events published so far, oldest first (tests and the local summary read these).
    pub fn all(&self, detail_type: Option<&str>) -> Result<Vec<DomainEvent>, PortError> {
        self.db
            .with(|c| {
                let mut s = c.prepare(
                    "SELECT event FROM events WHERE ?1 IS NULL OR detail_type = ?1 ORDER BY seq",
                )?;
                s.query_map(params![detail_type], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql_err("events", "all"))?
            .into_iter()
            .map(|j| serde_json::from_str(&j).map_err(|e| PortError::permanent("events", "all", e)))
            .collect()
    }
}

#[async_trait]
impl EventPublisher for SqliteEvents {
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), PortError> {
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                for e in &events {
                    tx.execute(
                        "INSERT INTO events (tenant, detail_type, at, event) VALUES (?1, ?2, ?3, ?4)",
                        params![
                            e.tenant.as_str(),
                            e.detail_type,
                            micros(e.at),
                            serde_json::to_string(e).expect("events serialise")
                        ],
                    )?;
                }
                tx.commit()
            })
            .map_err(sql_err("events", "publish"))
    }
}
