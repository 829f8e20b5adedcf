//! Webhook event-id dedupe with expiry, and the local secrets table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{EventDedupe, Secret, Secrets};
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, micros, sql_err};

pub struct SqliteDedupe {
    pub(crate) db: Db,
}

#[async_trait]
impl EventDedupe for SqliteDedupe {
    async fn first_seen(
        &self,
        tenant: &TenantId,
        event_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "INSERT INTO dedupe (tenant, event_id, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant, event_id) DO UPDATE SET expires_at = excluded.expires_at
                     WHERE dedupe.expires_at <= ?4",
                    params![tenant.as_str(), event_id, micros(expires_at), micros(now)],
                )
            })
            .map(|n| n > 0)
            .map_err(sql_err("dedupe", "first_seen"))
    }

    async fn keep(
        &self,
        tenant: &TenantId,
        event_id: &str,
        _now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "INSERT INTO dedupe (tenant, event_id, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant, event_id) DO UPDATE SET expires_at = excluded.expires_at",
                    params![tenant.as_str(), event_id, micros(expires_at)],
                )
            })
            .map(|_| ())
            .map_err(sql_err("dedupe", "keep"))
    }

    async fn forget(&self, tenant: &TenantId, event_id: &str) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "DELETE FROM dedupe WHERE tenant = ?1 AND event_id = ?2",
                    params![tenant.as_str(), event_id],
                )
            })
            .map(|_| ())
            .map_err(sql_err("dedupe", "forget"))
    }
}

/// Secrets for local runs, kept in the database (the AWS adapter uses Secrets Manager).
pub struct SqliteSecrets {
    pub(crate) db: Db,
}

impl SqliteSecrets {
    /// Stores a value (local setup).
    pub fn set(&self, tenant: &TenantId, name: &str, value: &str) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "INSERT INTO secrets (tenant, name, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant, name) DO UPDATE SET value = excluded.value",
                    params![tenant.as_str(), name, value],
                )
            })
            .map(|_| ())
            .map_err(sql_err("secrets", "put"))
    }
}

#[async_trait]
impl Secrets for SqliteSecrets {
    async fn put(&self, tenant: &TenantId, values: &[(&str, &Secret)]) -> Result<(), PortError> {
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                for (name, value) in values {
                    tx.execute(
                        "INSERT INTO secrets (tenant, name, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (tenant, name) DO UPDATE SET value = excluded.value",
                        params![tenant.as_str(), name, value.expose()],
                    )?;
                }
                tx.commit()
            })
            .map_err(sql_err("secrets", "put"))
    }

    async fn get(&self, tenant: &TenantId, name: &str) -> Result<Secret, PortError> {
        let v: Option<String> = self
            .db
            .with(|c| {
                c.query_row(
                    "SELECT value FROM secrets WHERE tenant = ?1 AND name = ?2",
                    params![tenant.as_str(), name],
                    |r| r.get(0),
                )
                .optional()
            })
            .map_err(sql_err("secrets", "get"))?;
        v.map(Secret::new).ok_or_else(|| {
            PortError::permanent(
                "secrets",
                "get",
                format!("secret {name:?} is not set for tenant {tenant}"),
            )
        })
    }
}

/// Named per-tenant locks with expiry, on SQLite.
pub struct SqliteLocks {
    pub(crate) db: Db,
}

#[async_trait]
impl ferry_core::ports::LockStore for SqliteLocks {
    async fn try_acquire(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "INSERT INTO locks (tenant, name, holder, until) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                     WHERE locks.until <= ?5 OR locks.holder = excluded.holder",
                    params![tenant.as_str(), name, holder, micros(until), micros(now)],
                )
            })
            .map(|n| n > 0)
            .map_err(sql_err("locks", "try_acquire"))
    }

    async fn release(&self, tenant: &TenantId, name: &str, holder: &str) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "DELETE FROM locks WHERE tenant = ?1 AND name = ?2 AND holder = ?3",
                    params![tenant.as_str(), name, holder],
                )
            })
            .map(|_| ())
            .map_err(sql_err("locks", "release"))
    }
}
