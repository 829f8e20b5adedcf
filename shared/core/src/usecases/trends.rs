//! A tenant's trends, for people who would rather look than read:
//! exceptions opened and resolved per day, and how long records took from
//! receipt to the ERP (p50/p95) over the last day, week and month. Read from
//! the stores only.

use chrono::{Duration, NaiveDate};
use ferry_canon::TenantId;
use serde::Serialize;

use crate::deps::Deps;
use crate::error::PortError;
use crate::ports::{ExceptionQuery, ExceptionStatus};
use crate::report::percentile;

/// One day's exception flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    pub day: NaiveDate,
    /// Exceptions first seen that day.
    pub opened: u32,
    /// Exceptions resolved that day (their last change).
    pub resolved: u32,
}

/// Receipt-to-posted latency over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// `1 day`, `7 days`, `30 days`.
    pub window: String,
    pub posted: usize,
    pub p50_seconds: u64,
    pub p95_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trends {
    /// The last `days` days, oldest first, today last (UTC days).
    pub days: Vec<Day>,
    pub latency: Vec<Latency>,
}

/// The tenant's trends over the last `days` days (at least one).
pub async fn trends(deps: &Deps, tenant: &TenantId, days: u32) -> Result<Trends, PortError> {
    let now = deps.clock.now();
    let today = now.date_naive();
    let first = today - Duration::days(i64::from(days.max(1)) - 1);
    let mut out: Vec<Day> = first
        .iter_days()
        .take_while(|d| *d <= today)
        .map(|day| Day {
            day,
            opened: 0,
            resolved: 0,
        })
        .collect();
    let all = deps
        .exceptions
        .list(&ExceptionQuery {
            tenant: Some(tenant.clone()),
            ..ExceptionQuery::default()
        })
        .await?;
    let slot = |d: NaiveDate| -> Option<usize> {
        (d >= first && d <= today).then(|| (d - first).num_days() as usize)
    };
    for e in &all {
        if let Some(i) = slot(e.first_seen.date_naive()) {
            out[i].opened += 1;
        }
        if e.status == ExceptionStatus::Resolved
            && let Some(i) = slot(e.last_seen.date_naive())
        {
            out[i].resolved += 1;
        }
    }
    let mut latency = Vec::new();
    for (window, span) in [("1 day", 1), ("7 days", 7), ("30 days", 30)] {
        let mut l = deps
            .ledger
            .latencies(tenant, now - Duration::days(span))
            .await?;
        l.sort();
        latency.push(Latency {
            window: window.to_string(),
            posted: l.len(),
            p50_seconds: percentile(&l, 50).as_secs(),
            p95_seconds: percentile(&l, 95).as_secs(),
        });
    }
    Ok(Trends { days: out, latency })
}
