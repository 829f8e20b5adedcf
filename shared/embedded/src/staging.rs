//! Summary staging: member lines per group, a revision bumped atomically with
//! every change, the group's header, and a single-flight flush schedule.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{GroupSnapshot, StageRequest, Staging};
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, from_micros, micros, sql_err};

pub struct SqliteStaging {
    pub(crate) db: Db,
}

#[async_trait]
impl Staging for SqliteStaging {
    async fn stage(&self, req: StageRequest<'_>) -> Result<i64, PortError> {
        let t = req.tenant.as_str();
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let group: Option<(i64, Option<String>)> = tx
                    .query_row(
                        "SELECT revision, header FROM staging_groups WHERE tenant = ?1 AND grp = ?2",
                        params![t, req.group],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let current: Option<String> = tx
                    .query_row(
                        "SELECT line FROM staging_members WHERE tenant = ?1 AND grp = ?2 AND member = ?3",
                        params![t, req.group, req.member],
                        |r| r.get(0),
                    )
                    .optional()?;
                let mut changed = false;
                match (req.line, &current) {
                    (Some(new), Some(old)) if new == old => {}
                    (Some(new), _) => {
                        tx.execute(
                            "INSERT INTO staging_members (tenant, grp, member, line) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (tenant, grp, member) DO UPDATE SET line = excluded.line",
                            params![t, req.group, req.member, new],
                        )?;
                        changed = true;
                    }
                    (None, Some(_)) => {
                        tx.execute(
                            "DELETE FROM staging_members WHERE tenant = ?1 AND grp = ?2 AND member = ?3",
                            params![t, req.group, req.member],
                        )?;
                        changed = true;
                    }
                    (None, None) => {}
                }
                let (revision, stored_header) = group.clone().unwrap_or((0, None));
                let header = match req.header {
                    Some(h) if stored_header.as_deref() != Some(h) => {
                        changed = true;
                        Some(h.to_string())
                    }
                    _ => stored_header,
                };
                if !changed {
                    return Ok(revision);
                }
                let next = revision + 1;
                tx.execute(
                    "INSERT INTO staging_groups (tenant, grp, revision, last_change_at, header) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (tenant, grp) DO UPDATE SET revision = excluded.revision,
                        last_change_at = excluded.last_change_at, header = excluded.header",
                    params![t, req.group, next, micros(req.now), header],
                )?;
                tx.commit()?;
                Ok(next)
            })
            .map_err(sql_err("staging", "stage"))
    }

    async fn snapshot(&self, tenant: &TenantId, group: &str) -> Result<GroupSnapshot, PortError> {
        let t = tenant.as_str();
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let (revision, last, header): (i64, Option<i64>, Option<String>) = tx
                    .query_row(
                        "SELECT revision, last_change_at, header FROM staging_groups WHERE tenant = ?1 AND grp = ?2",
                        params![t, group],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?
                    .unwrap_or((0, None, None));
                let members = {
                    let mut s = tx.prepare_cached(
                        "SELECT member, line FROM staging_members WHERE tenant = ?1 AND grp = ?2 ORDER BY member",
                    )?;
                    s.query_map(params![t, group], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<Vec<_>, _>>()?
                };
                tx.commit()?;
                Ok(GroupSnapshot {
                    revision,
                    last_change_at: last.map(from_micros),
                    header,
                    members,
                })
            })
            .map_err(sql_err("staging", "snapshot"))
    }

    async fn schedule(
        &self,
        tenant: &TenantId,
        group: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "INSERT INTO staging_groups (tenant, grp, revision, scheduled_until) VALUES (?1, ?2, 0, ?3)
                     ON CONFLICT (tenant, grp) DO UPDATE SET scheduled_until = excluded.scheduled_until
                     WHERE staging_groups.scheduled_until IS NULL OR staging_groups.scheduled_until <= ?4",
                    params![tenant.as_str(), group, micros(until), micros(now)],
                )
            })
            .map(|n| n > 0)
            .map_err(sql_err("staging", "schedule"))
    }

    async fn unschedule(&self, tenant: &TenantId, group: &str) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "UPDATE staging_groups SET scheduled_until = NULL WHERE tenant = ?1 AND grp = ?2",
                    params![tenant.as_str(), group],
                )
            })
            .map(|_| ())
            .map_err(sql_err("staging", "unschedule"))
    }
}
