//! The record ledger: latest version, canonical form and disposition of every source record.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::{Domain, SourceVersion, TenantId};
use ferry_core::ports::{
    Disposition, DomainActivity, LedgerCount, LedgerEntry, Observation, Observe, Owner,
    RecordLedger,
};
use ferry_core::rules::ledger as rules;
use ferry_core::{PortError, ReasonCode};
use rusqlite::{OptionalExtension, Row, params};

use crate::db::{Db, from_micros, micros, sql_err};

pub struct SqliteLedger {
    pub(crate) db: Db,
}

const COLUMNS: &str = "source_key, domain, version_at, version_etag, content_hash, state, reason, owner, exception_id, doc_key, revision, received_at, posted_at, canonical";

fn disposition(state: &str, r: &Row<'_>) -> rusqlite::Result<Disposition> {
    let reason: Option<String> = r.get(6)?;
    let owner: Option<String> = r.get(7)?;
    let exception_id: Option<String> = r.get(8)?;
    let doc_key: Option<String> = r.get(9)?;
    let revision: Option<i64> = r.get(10)?;
    Ok(match state {
        "skipped" => Disposition::Skipped {
            reason: reason.unwrap_or_default(),
        },
        "exception" => Disposition::Exception {
            exception_id: exception_id.unwrap_or_default(),
            reason: reason
                .as_deref()
                .and_then(ReasonCode::parse)
                .ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(
                        6,
                        rusqlite::types::Type::Text,
                        format!("unknown reason code {reason:?}").into(),
                    )
                })?,
            owner: owner
                .as_deref()
                .and_then(Owner::parse)
                .unwrap_or(Owner::Support),
        },
        "queued" => Disposition::Queued {
            doc_key: doc_key.unwrap_or_default(),
            revision: revision.unwrap_or_default(),
        },
        "posted" => Disposition::Posted {
            doc_key: doc_key.unwrap_or_default(),
            revision: revision.unwrap_or_default(),
        },
        _ => Disposition::Pending,
    })
}

fn entry(r: &Row<'_>) -> rusqlite::Result<LedgerEntry> {
    let state: String = r.get(5)?;
    let domain: String = r.get(1)?;
    Ok(LedgerEntry {
        source_key: r.get(0)?,
        domain: Domain::parse(&domain).unwrap_or(Domain::Customers),
        version: SourceVersion {
            updated_at: from_micros(r.get(2)?),
            etag: r.get(3)?,
        },
        content_hash: r.get(4)?,
        disposition: disposition(&state, r)?,
        received_at: from_micros(r.get(11)?),
        posted_at: r.get::<_, Option<i64>>(12)?.map(from_micros),
        canonical: r.get(13)?,
    })
}

fn get(
    c: &rusqlite::Connection,
    tenant: &str,
    key: &str,
) -> rusqlite::Result<Option<(LedgerEntry, Option<String>)>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM ledger WHERE tenant = ?1 AND source_key = ?2"),
        params![tenant, key],
        |r| Ok((entry(r)?, r.get::<_, Option<String>>(9)?)),
    )
    .optional()
}

/// The columns a disposition sets: `(state, reason, owner, exception_id, doc_key, revision)`.
type Cols<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<i64>,
);

fn columns(d: &Disposition) -> Cols<'_> {
    match d {
        Disposition::Pending => ("pending", None, None, None, None, None),
        Disposition::Skipped { reason } => ("skipped", Some(reason), None, None, None, None),
        Disposition::Exception {
            exception_id,
            reason,
            owner,
        } => (
            "exception",
            Some(reason.as_str()),
            Some(owner.as_str()),
            Some(exception_id),
            None,
            None,
        ),
        Disposition::Queued { doc_key, revision } => {
            ("queued", None, None, None, Some(doc_key), Some(*revision))
        }
        Disposition::Posted { doc_key, revision } => {
            ("posted", None, None, None, Some(doc_key), Some(*revision))
        }
    }
}

#[async_trait]
impl RecordLedger for SqliteLedger {
    async fn observe(&self, obs: Observation<'_>) -> Result<Observe, PortError> {
        let tenant = obs.tenant.as_str();
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let existing = get(&tx, tenant, obs.source_key)?;
                let held = existing.as_ref().map(|(e, last_doc)| rules::Held {
                    version: &e.version,
                    content_hash: &e.content_hash,
                    disposition: &e.disposition,
                    last_doc: last_doc.as_deref(),
                });
                let decided = rules::observe(held, obs.version, obs.content_hash);
                if decided.replace {
                        tx.execute(
                            "INSERT INTO ledger (tenant, source_key, domain, version_at, version_etag, content_hash, state,
                                                 received_at, canonical)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8)
                             ON CONFLICT (tenant, source_key) DO UPDATE SET
                                domain = excluded.domain, version_at = excluded.version_at,
                                version_etag = excluded.version_etag, content_hash = excluded.content_hash,
                                state = 'pending', reason = NULL, owner = NULL, exception_id = NULL,
                                received_at = excluded.received_at, posted_at = NULL, canonical = excluded.canonical",
                            params![
                                tenant,
                                obs.source_key,
                                obs.domain.as_str(),
                                micros(obs.version.updated_at),
                                obs.version.etag,
                                obs.content_hash,
                                micros(obs.received_at),
                                obs.canonical
                            ],
                        )?;
                }
                tx.commit()?;
                Ok(decided.answer)
            })
            .map_err(sql_err("ledger", "observe"))
    }

    async fn settle(
        &self,
        tenant: &TenantId,
        source_key: &str,
        version: &SourceVersion,
        d: &Disposition,
    ) -> Result<bool, PortError> {
        let (state, reason, owner, exception_id, doc_key, revision) = columns(d);
        self.db
            .with(|c| {
                c.execute(
                    "UPDATE ledger SET state = ?1, reason = ?2, owner = ?3, exception_id = ?4,
                        doc_key = COALESCE(?5, doc_key), revision = COALESCE(?6, revision)
                     WHERE tenant = ?7 AND source_key = ?8 AND version_at = ?9 AND version_etag IS ?10",
                    params![
                        state,
                        reason,
                        owner,
                        exception_id,
                        doc_key,
                        revision,
                        tenant.as_str(),
                        source_key,
                        micros(version.updated_at),
                        version.etag
                    ],
                )
            })
            .map(|n| n > 0)
            .map_err(sql_err("ledger", "settle"))
    }

    async fn note_doc(
        &self,
        tenant: &TenantId,
        source_key: &str,
        version: &SourceVersion,
        doc_key: &str,
    ) -> Result<bool, PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "UPDATE ledger SET doc_key = ?1
                     WHERE tenant = ?2 AND source_key = ?3 AND version_at = ?4 AND version_etag IS ?5",
                    params![
                        doc_key,
                        tenant.as_str(),
                        source_key,
                        micros(version.updated_at),
                        version.etag
                    ],
                )
            })
            .map(|n| n > 0)
            .map_err(sql_err("ledger", "note_doc"))
    }

    async fn settle_doc(
        &self,
        tenant: &TenantId,
        doc_key: &str,
        revision: i64,
        d: &Disposition,
        at: DateTime<Utc>,
    ) -> Result<u64, PortError> {
        let (state, reason, owner, exception_id, _, _) = columns(d);
        let posted_at = matches!(d, Disposition::Posted { .. }).then(|| micros(at));
        self.db
            .with(|c| {
                c.execute(
                    "UPDATE ledger SET state = ?1, reason = ?2, owner = ?3, exception_id = ?4,
                        posted_at = COALESCE(?5, posted_at)
                     WHERE tenant = ?6 AND doc_key = ?7 AND state = 'queued' AND revision <= ?8",
                    params![
                        state,
                        reason,
                        owner,
                        exception_id,
                        posted_at,
                        tenant.as_str(),
                        doc_key,
                        revision
                    ],
                )
            })
            .map(|n| n as u64)
            .map_err(sql_err("ledger", "settle_doc"))
    }

    async fn get(
        &self,
        tenant: &TenantId,
        source_key: &str,
    ) -> Result<Option<LedgerEntry>, PortError> {
        self.db
            .with(|c| get(c, tenant.as_str(), source_key))
            .map(|o| o.map(|(e, _)| e))
            .map_err(sql_err("ledger", "get"))
    }

    async fn counts(&self, tenant: &TenantId) -> Result<Vec<LedgerCount>, PortError> {
        self.db
            .with(|c| {
                let mut s = c.prepare(
                    "SELECT domain, state, COALESCE(reason, ''), owner, COUNT(*) FROM ledger WHERE tenant = ?1
                     GROUP BY domain, state, COALESCE(reason, ''), owner ORDER BY domain, state",
                )?;
                s.query_map(params![tenant.as_str()], |r| {
                    let domain: String = r.get(0)?;
                    let owner: Option<String> = r.get(3)?;
                    Ok(LedgerCount {
                        domain: Domain::parse(&domain).unwrap_or(Domain::Customers),
                        state: r.get(1)?,
                        reason: r.get(2)?,
                        owner: owner.as_deref().and_then(Owner::parse),
                        count: r.get::<_, i64>(4)? as u64,
                    })
                })?
                .collect()
            })
            .map_err(sql_err("ledger", "counts"))
    }

    async fn latencies(
        &self,
        tenant: &TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<Duration>, PortError> {
        self.db
            .with(|c| {
                let mut s = c.prepare(
                    "SELECT posted_at - received_at FROM ledger
                     WHERE tenant = ?1 AND posted_at IS NOT NULL AND received_at >= ?2",
                )?;
                s.query_map(params![tenant.as_str(), micros(since)], |r| {
                    r.get::<_, i64>(0)
                })?
                .map(|r| r.map(|us| Duration::from_micros(us.max(0) as u64)))
                .collect()
            })
            .map_err(sql_err("ledger", "latencies"))
    }

    async fn activity(&self, tenant: &TenantId) -> Result<Vec<DomainActivity>, PortError> {
        self.db
            .with(|c| {
                let mut s = c.prepare_cached(
                    "SELECT domain, MAX(posted_at),
                            MIN(CASE WHEN state IN ('pending', 'queued') THEN received_at END),
                            SUM(CASE WHEN state IN ('pending', 'queued') THEN 1 ELSE 0 END)
                     FROM ledger WHERE tenant = ?1 GROUP BY domain ORDER BY domain",
                )?;
                s.query_map(params![tenant.as_str()], |r| {
                    let domain: String = r.get(0)?;
                    Ok(DomainActivity {
                        domain: Domain::parse(&domain).unwrap_or(Domain::Customers),
                        last_posted_at: r.get::<_, Option<i64>>(1)?.map(from_micros),
                        oldest_unsettled_at: r.get::<_, Option<i64>>(2)?.map(from_micros),
                        unsettled: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                })?
                .collect()
            })
            .map_err(sql_err("ledger", "activity"))
    }

    async fn list(&self, tenant: &TenantId, domain: Domain) -> Result<Vec<LedgerEntry>, PortError> {
        self.db
            .with(|c| {
                let mut s = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM ledger WHERE tenant = ?1 AND domain = ?2 ORDER BY source_key"
                ))?;
                s.query_map(params![tenant.as_str(), domain.as_str()], entry)?.collect()
            })
            .map_err(sql_err("ledger", "list"))
    }
}
