//! A tenant's health at one instant: what a partner's support team looks at
//! first. Built from the stores only (no vendor call), so the console can draw
//! it for every customer at once, and a customer stack can publish it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ferry_canon::{Decimal, Domain, TenantId};
use serde::Serialize;

use crate::deps::Deps;
use crate::error::PortError;
use crate::ports::{ExceptionQuery, ExceptionRecord, ExceptionStatus, Owner};

/// A tenant's health snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
    /// The latest post per domain that has posted anything.
    pub last_posted: BTreeMap<Domain, DateTime<Utc>>,
    /// Records on their way (pending or queued).
    pub unsettled: u64,
    /// When the oldest of them was received: its age is measured against the tier's SLA.
    pub oldest_unsettled: Option<DateTime<Utc>>,
    /// Exceptions not resolved yet (open, being retried, or replayed and not
    /// yet through the pipeline), by owner.
    pub open_by_owner: BTreeMap<Owner, u32>,
    /// When the oldest of those was first seen.
    pub oldest_exception: Option<DateTime<Utc>>,
    /// Money those exceptions hold back, per ISO currency code (never summed across currencies).
    pub held_back: BTreeMap<String, Decimal>,
    pub hours_held_back: Decimal,
}

impl Health {
    /// Unresolved exceptions together.
    pub fn open(&self) -> u32 {
        self.open_by_owner.values().sum()
    }

    /// Seconds the oldest unsettled record has waited, at `self.at`.
    pub fn oldest_wait_seconds(&self) -> Option<i64> {
        self.oldest_unsettled
            .map(|t| (self.at - t).num_seconds().max(0))
    }
}

/// The exceptions that still hold something back: open, retrying, or
/// replayed and not yet through the pipeline (a replay alone posts nothing,
/// so it must not make a customer look healthy).
pub fn unsettled_exceptions(tenant: &TenantId) -> ExceptionQuery {
    ExceptionQuery {
        tenant: Some(tenant.clone()),
        statuses: vec![
            ExceptionStatus::Open,
            ExceptionStatus::Retrying,
            ExceptionStatus::Replayed,
        ],
        ..ExceptionQuery::default()
    }
}

/// Reads a tenant's health from the ledger and the exception store.
pub async fn snapshot(deps: &Deps, tenant: &TenantId) -> Result<Health, PortError> {
    let at = deps.clock.now();
    let activity = deps.ledger.activity(tenant).await?;
    let exceptions = deps.exceptions.list(&unsettled_exceptions(tenant)).await?;
    let mut health = Health {
        tenant: tenant.clone(),
        at,
        last_posted: activity
            .iter()
            .filter_map(|a| a.last_posted_at.map(|t| (a.domain, t)))
            .collect(),
        unsettled: activity.iter().map(|a| a.unsettled).sum(),
        oldest_unsettled: activity.iter().filter_map(|a| a.oldest_unsettled_at).min(),
        open_by_owner: BTreeMap::new(),
        oldest_exception: None,
        held_back: BTreeMap::new(),
        hours_held_back: Decimal::ZERO,
    };
    for e in &exceptions {
        add_exception(&mut health, e);
    }
    Ok(health)
}

fn add_exception(h: &mut Health, e: &ExceptionRecord) {
    *h.open_by_owner.entry(e.owner).or_default() += 1;
    h.oldest_exception = Some(
        h.oldest_exception
            .map_or(e.first_seen, |o| o.min(e.first_seen)),
    );
    if let Some(m) = &e.amount {
        *h.held_back
            .entry(m.currency.code().to_string())
            .or_insert(Decimal::ZERO) += m.amount;
    }
    if let Some(hours) = e.hours {
        h.hours_held_back += hours;
    }
}
