//! The run summary: per domain, how many inputs were seen and where each ended.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_canon::{Domain, TenantId};
use serde::Serialize;

use crate::deps::Deps;
use crate::error::PortError;
use crate::ports::{Owner, Usage};

/// One domain's line in the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DomainSummary {
    pub seen: u64,
    pub posted: u64,
    pub skipped: u64,
    pub exceptions: u64,
    /// Not final yet (queued or pending).
    pub in_flight: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// `(reason, owner) → count`, flattened as `"reason (owner)"` for display.
    pub exceptions_by_reason: BTreeMap<String, u64>,
}

/// Latency percentiles from receipt to posted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub max_ms: u64,
}

/// The whole summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub tenant: TenantId,
    pub domains: BTreeMap<Domain, DomainSummary>,
    pub latency: Latency,
    pub erp_calls: Usage,
    pub erp_daily_limit: u32,
}

impl RunSummary {
    pub fn total(&self) -> DomainSummary {
        let mut t = DomainSummary::default();
        for d in self.domains.values() {
            t.seen += d.seen;
            t.posted += d.posted;
            t.skipped += d.skipped;
            t.exceptions += d.exceptions;
            t.in_flight += d.in_flight;
        }
        t
    }
}

/// The nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], pct: u32) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * pct as usize).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Builds the summary from the ledger and the rate budget.
pub async fn summarise(
    deps: &Deps,
    tenant: &TenantId,
    latency_since: DateTime<Utc>,
    erp_account: &str,
    erp_daily_limit: u32,
) -> Result<RunSummary, PortError> {
    let mut domains: BTreeMap<Domain, DomainSummary> = BTreeMap::new();
    for c in deps.ledger.counts(tenant).await? {
        let d = domains.entry(c.domain).or_default();
        d.seen += c.count;
        match c.state.as_str() {
            "posted" => d.posted += c.count,
            "skipped" => {
                d.skipped += c.count;
                *d.skipped_by_reason.entry(c.reason.clone()).or_default() += c.count;
            }
            "exception" => {
                d.exceptions += c.count;
                let owner = c.owner.map(|o: Owner| o.as_str()).unwrap_or("?");
                *d.exceptions_by_reason
                    .entry(format!("{} ({owner})", c.reason))
                    .or_default() += c.count;
            }
            _ => d.in_flight += c.count,
        }
    }
    let mut samples = deps.ledger.latencies(tenant, latency_since).await?;
    samples.sort();
    let latency = Latency {
        samples: samples.len(),
        p50_ms: percentile(&samples, 50).as_millis() as u64,
        p95_ms: percentile(&samples, 95).as_millis() as u64,
        max_ms: samples.last().map(|d| d.as_millis() as u64).unwrap_or(0),
    };
    let erp_calls = deps.budget.usage(erp_account, deps.clock.now()).await?;
    Ok(RunSummary {
        tenant: tenant.clone(),
        domains,
        latency,
        erp_calls,
        erp_daily_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50), Duration::from_millis(50));
        assert_eq!(percentile(&v, 95), Duration::from_millis(95));
        assert_eq!(
            percentile(&[Duration::from_millis(7)], 95),
            Duration::from_millis(7)
        );
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }
}
