//! Raising and resolving exceptions: one deterministic id per record and
//! stage, the `ferry.exception.raised` event, the resolve rule for records
//! that moved on, and the exception for a message no tenant here serves.

use chrono::{DateTime, Utc};
use ferry_canon::{Domain, TenantId};

use crate::ReasonCode;
use crate::deps::Deps;
use crate::error::PortError;
use crate::hash::hash_parts;
use crate::ports::{
    Disposition, DomainEvent, ExceptionRecord, ExceptionStatus, LedgerEntry, Owner, QueueName,
};
use crate::usecases::outcome::Outcome;

/// The deterministic exception id for a record at a stage.
pub fn exception_id(tenant: &TenantId, stage: &str, source_key: &str) -> String {
    let h = hash_parts(&[tenant.as_str(), stage, source_key]);
    format!("ex-{}", &h[..20])
}

/// Resolves the open exceptions of a record (or document) that has moved on —
/// except the one its ledger row is still held by. Whoever decides a record
/// calls this after writing the ledger; when that write did not land (a newer
/// version was decided meanwhile, or it is held by an exception about another
/// version) the exception that holds the row stays open, so a held record always
/// names an exception someone can act on. Returns how many were resolved.
pub async fn resolve_moved_on(
    deps: &Deps,
    tenant: &TenantId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<u32, PortError> {
    let held = match deps.ledger.get(tenant, key).await? {
        Some(LedgerEntry {
            disposition: Disposition::Exception { exception_id, .. },
            ..
        }) => exception_id,
        _ => return deps.exceptions.resolve_source(tenant, key, now).await,
    };
    let mut n = 0;
    for e in deps.exceptions.open_for_source(tenant, key).await? {
        if e.id != held {
            deps.exceptions
                .set_status(tenant, &e.id, ExceptionStatus::Resolved, now)
                .await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Raises (or updates) an exception and publishes `ferry.exception.raised`.
pub async fn raise(deps: &Deps, record: ExceptionRecord) -> Result<ExceptionRecord, PortError> {
    let stored = deps.exceptions.raise(record).await?;
    if stored.status == ExceptionStatus::Open {
        let event = DomainEvent::new(
            DomainEvent::EXCEPTION_RAISED,
            &stored.tenant,
            stored.last_seen,
            serde_json::json!({
                "exception_id": stored.id,
                "domain": stored.domain,
                "source_key": stored.source_key,
                "reason": stored.reason,
                "owner": stored.owner,
                "message": stored.message,
                "attempts": stored.attempts,
            }),
        );
        if let Err(e) = deps.events.publish(vec![event]).await {
            tracing::warn!(error = %e, "could not publish exception event");
        }
    }
    Ok(stored)
}

/// Where a message whose tenant this process does not serve came from.
pub struct Unserved<'a> {
    pub tenant: &'a TenantId,
    pub stage: &'a str,
    pub domain: Domain,
    pub source_key: &'a str,
    pub receive_count: u32,
    pub queue: QueueName,
    pub body: &'a str,
}

/// A message for a tenant this process has no configuration for (another
/// process's tenant on a shared store, or a function deployed without the
/// tenant's files) is never deleted: it is retried with backoff, so a process
/// that serves the tenant can take it, and it dead-letters after the receive
/// limit into an exception with this reason. The exception says so at once.
pub async fn not_served(deps: &Deps, u: Unserved<'_>) -> Outcome {
    let message = format!(
        "tenant {} is not configured in this process; the message stays queued",
        u.tenant
    );
    tracing::error!(tenant = %u.tenant, stage = u.stage, source_key = u.source_key, "{message}");
    let now = deps.clock.now();
    let raised = raise(
        deps,
        ExceptionRecord {
            id: exception_id(u.tenant, u.stage, u.source_key),
            tenant: u.tenant.clone(),
            stage: u.stage.into(),
            domain: u.domain,
            source_key: u.source_key.into(),
            reason: ReasonCode::TenantNotServed,
            message: message.clone(),
            field: None,
            rule: None,
            erp_message: None,
            owner: Owner::Support,
            status: ExceptionStatus::Retrying,
            attempts: 1,
            first_seen: now,
            last_seen: now,
            amount: None,
            hours: None,
            doc_key: None,
            blocked_by: None,
            replay_queue: u.queue,
            replay_body: u.body.into(),
        },
    )
    .await;
    if let Err(e) = raised {
        tracing::warn!(error = %e, "could not record the unserved message");
    }
    Outcome::backoff(&deps.settings, u.receive_count, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_ids_are_stable_per_tenant_stage_and_record() {
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(
            exception_id(&t, "transform", "cw:1"),
            exception_id(&t, "transform", "cw:1")
        );
        assert_ne!(
            exception_id(&t, "transform", "cw:1"),
            exception_id(&t, "post", "cw:1")
        );
    }
}
