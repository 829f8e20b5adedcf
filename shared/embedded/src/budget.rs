//! The shared rate budget per ERP account: sliding one-minute and one-day windows
//! of calls actually admitted, plus pauses the ERP asked for.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_core::PortError;
use ferry_core::ports::{Acquire, RateBudget, RateLimits, Usage};
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, micros, sql_err};

pub struct SqliteBudget {
    pub(crate) db: Db,
}

const MINUTE_US: i64 = 60_000_000;
const DAY_US: i64 = 86_400_000_000;

#[async_trait]
impl RateBudget for SqliteBudget {
    async fn acquire(
        &self,
        account: &str,
        limits: &RateLimits,
        now: DateTime<Utc>,
    ) -> Result<Acquire, PortError> {
        let now_us = micros(now);
        self.db
            .with(|c| {
                let tx = c.transaction()?;
                let paused: Option<i64> = tx
                    .query_row(
                        "SELECT until FROM budget_pauses WHERE account = ?1",
                        params![account],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(until) = paused.filter(|u| *u > now_us) {
                    return Ok(Acquire::Wait(Duration::from_micros(
                        (until - now_us) as u64,
                    )));
                }
                tx.execute(
                    "DELETE FROM budget_calls WHERE account = ?1 AND at <= ?2",
                    params![account, now_us - DAY_US],
                )?;
                let (minute, oldest_minute): (u32, Option<i64>) = tx.query_row(
                    "SELECT COUNT(*), MIN(at) FROM budget_calls WHERE account = ?1 AND at > ?2",
                    params![account, now_us - MINUTE_US],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                if minute >= limits.per_minute {
                    let free_at = oldest_minute.unwrap_or(now_us) + MINUTE_US;
                    return Ok(Acquire::Wait(Duration::from_micros(
                        (free_at - now_us).max(1) as u64,
                    )));
                }
                let (day, oldest_day): (u32, Option<i64>) = tx.query_row(
                    "SELECT COUNT(*), MIN(at) FROM budget_calls WHERE account = ?1",
                    params![account],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                if day >= limits.per_day {
                    let free_at = oldest_day.unwrap_or(now_us) + DAY_US;
                    return Ok(Acquire::Wait(Duration::from_micros(
                        (free_at - now_us).max(1) as u64,
                    )));
                }
                tx.execute(
                    "INSERT INTO budget_calls (account, at) VALUES (?1, ?2)",
                    params![account, now_us],
                )?;
                tx.commit()?;
                Ok(Acquire::Granted)
            })
            .map_err(sql_err("budget", "acquire"))
    }

    async fn pause_until(&self, account: &str, until: DateTime<Utc>) -> Result<(), PortError> {
        self.db
            .with(|c| {
                c.execute(
                    "INSERT INTO budget_pauses (account, until) VALUES (?1, ?2)
                     ON CONFLICT (account) DO UPDATE SET until = MAX(budget_pauses.until, excluded.until)",
                    params![account, micros(until)],
                )
            })
            .map(|_| ())
            .map_err(sql_err("budget", "pause_until"))
    }

    async fn usage(&self, account: &str, now: DateTime<Utc>) -> Result<Usage, PortError> {
        let now_us = micros(now);
        self.db
            .with(|c| {
                c.query_row(
                    "SELECT COALESCE(SUM(at > ?2), 0), COUNT(*) FROM budget_calls WHERE account = ?1 AND at > ?3",
                    params![account, now_us - MINUTE_US, now_us - DAY_US],
                    |r| {
                        Ok(Usage {
                            last_minute: r.get(0)?,
                            last_day: r.get(1)?,
                        })
                    },
                )
            })
            .map_err(sql_err("budget", "usage"))
    }
}
