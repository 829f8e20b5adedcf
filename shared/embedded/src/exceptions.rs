//! The exception store, queryable by tenant, status, owner, domain and age.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{ExceptionQuery, ExceptionRecord, ExceptionStatus, ExceptionStore};
use rusqlite::{OptionalExtension, params, params_from_iter};

use crate::db::{Db, micros, sql_err};

pub struct SqliteExceptions {
    pub(crate) db: Db,
}

fn decode(json: String) -> rusqlite::Result<ExceptionRecord> {
    serde_json::from_str(&json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn encode(r: &ExceptionRecord) -> String {
    serde_json::to_string(r).expect("exception records serialise")
}

fn put(c: &rusqlite::Connection, r: &ExceptionRecord) -> rusqlite::Result<usize> {
    c.execute(
        "INSERT INTO exceptions (tenant, id, status, owner, domain, source_key, blocked_by, first_seen, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status, owner = excluded.owner,
            domain = excluded.domain, source_key = excluded.source_key, blocked_by = excluded.blocked_by,
            first_seen = excluded.first_seen, record = excluded.record",
        params![
            r.tenant.as_str(),
            r.id,
            r.status.as_str(),
            r.owner.as_str(),
            r.domain.as_str(),
            r.source_key,
            r.blocked_by,
            micros(r.first_seen),
            encode(r)
        ],
    )
}

fn get(
    c: &rusqlite::Connection,
    tenant: &str,
    id: &str,
) -> rusqlite::Result<Option<ExceptionRecord>> {
    c.query_row(
        "SELECT record FROM exceptions WHERE tenant = ?1 AND id = ?2",
        params![tenant, id],
        |r| r.get::<_, String>(0),
    )
    .optional()?
    .map(decode)
    .transpose()
}

#[async_trait]
impl ExceptionStore for SqliteExceptions {
    async fn raise(&self, record: ExceptionRecord) -> Result<ExceptionRecord, PortError> {
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let previous = get(&tx, record.tenant.as_str(), &record.id)?;
                let stored = ferry_core::rules::exceptions::merge(previous.as_ref(), record);
                put(&tx, &stored)?;
                tx.commit()?;
                Ok(stored)
            })
            .map_err(sql_err("exceptions", "raise"))
    }

    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<ExceptionRecord>, PortError> {
        self.db
            .with(|c| get(c, tenant.as_str(), id))
            .map_err(sql_err("exceptions", "get"))
    }

    async fn list(&self, q: &ExceptionQuery) -> Result<Vec<ExceptionRecord>, PortError> {
        let mut sql = String::from("SELECT record FROM exceptions WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        if let Some(t) = &q.tenant {
            args.push(t.to_string());
            sql.push_str(&format!(" AND tenant = ?{}", args.len()));
        }
        if !q.statuses.is_empty() {
            let mut marks = Vec::new();
            for s in &q.statuses {
                args.push(s.as_str().to_string());
                marks.push(format!("?{}", args.len()));
            }
            sql.push_str(&format!(" AND status IN ({})", marks.join(", ")));
        }
        if let Some(o) = q.owner {
            args.push(o.as_str().to_string());
            sql.push_str(&format!(" AND owner = ?{}", args.len()));
        }
        if let Some(d) = q.domain {
            args.push(d.as_str().to_string());
            sql.push_str(&format!(" AND domain = ?{}", args.len()));
        }
        if let Some(before) = q.first_seen_before {
            args.push(micros(before).to_string());
            sql.push_str(&format!(
                " AND first_seen < CAST(?{} AS INTEGER)",
                args.len()
            ));
        }
        sql.push_str(" ORDER BY first_seen, id");
        if let Some(limit) = q.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        self.db
            .with(|c| {
                let mut s = c.prepare(&sql)?;
                let rows: Vec<String> = s
                    .query_map(params_from_iter(args.iter()), |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                rows.into_iter().map(decode).collect()
            })
            .map_err(sql_err("exceptions", "list"))
    }

    async fn set_status(
        &self,
        tenant: &TenantId,
        id: &str,
        status: ExceptionStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let Some(mut r) = get(&tx, tenant.as_str(), id)? else {
                    return Ok(false);
                };
                r.status = status;
                r.last_seen = now;
                put(&tx, &r)?;
                tx.commit()?;
                Ok(true)
            })
            .map_err(sql_err("exceptions", "set_status"))
    }

    async fn resolve_source(
        &self,
        tenant: &TenantId,
        source_key: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, PortError> {
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let open: Vec<String> = {
                    let mut s = tx.prepare_cached(
                        "SELECT record FROM exceptions WHERE tenant = ?1 AND source_key = ?2 AND status != 'resolved'",
                    )?;
                    s.query_map(params![tenant.as_str(), source_key], |r| r.get(0))?
                        .collect::<Result<_, _>>()?
                };
                let n = open.len() as u32;
                for json in open {
                    let mut r = decode(json)?;
                    r.status = ExceptionStatus::Resolved;
                    r.last_seen = now;
                    put(&tx, &r)?;
                }
                tx.commit()?;
                Ok(n)
            })
            .map_err(sql_err("exceptions", "resolve_source"))
    }

    async fn open_for_source(
        &self,
        tenant: &TenantId,
        source_key: &str,
    ) -> Result<Vec<ExceptionRecord>, PortError> {
        self.by_column("source_key", tenant, source_key)
    }

    async fn blocked_by(
        &self,
        tenant: &TenantId,
        blocker: &str,
    ) -> Result<Vec<ExceptionRecord>, PortError> {
        self.by_column("blocked_by", tenant, blocker)
    }
}

impl SqliteExceptions {
    fn by_column(
        &self,
        column: &str,
        tenant: &TenantId,
        value: &str,
    ) -> Result<Vec<ExceptionRecord>, PortError> {
        self.db
            .with(|c| {
                let mut s = c.prepare_cached(&format!(
                    "SELECT record FROM exceptions WHERE tenant = ?1 AND {column} = ?2 AND status != 'resolved' ORDER BY first_seen"
                ))?;
                let rows: Vec<String> = s
                    .query_map(params![tenant.as_str(), value], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                rows.into_iter().map(decode).collect()
            })
            .map_err(sql_err("exceptions", "query"))
    }
}
