//! retry: backoff with jitter for transient failures, parking of dead letters
//! in the exception store, and replay from it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_canon::{Domain, TenantId};

use crate::deps::{Deps, Settings};
use crate::error::PortError;
use crate::hash::hash_parts;
use crate::messages::{ChangeNotice, Envelope, Origin};
use crate::ports::{
    Disposition, DomainEvent, ExceptionRecord, ExceptionStatus, LedgerEntry, OutboundMessage,
    Owner, QueueName, ReceivedMessage,
};

/// What a handler decided for one message. The host deletes `Done` messages
/// and hides `Retry` messages for `after` (SQS: ChangeMessageVisibility plus a
/// batch item failure), so the queue redelivers them — or dead-letters them
/// once they have been received too often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Retry {
        after: Duration,
        reason: String,
        /// The ERP refused for its rate limits (429): counted apart, alarmed on.
        throttled: bool,
    },
}

impl Outcome {
    pub fn retry(after: Duration, reason: impl Into<String>) -> Self {
        Outcome::Retry {
            after,
            reason: reason.into(),
            throttled: false,
        }
    }

    /// Retry after `after` because the ERP answered 429.
    pub fn throttled(after: Duration, reason: impl Into<String>) -> Self {
        Outcome::Retry {
            after,
            reason: reason.into(),
            throttled: true,
        }
    }

    /// Retry after the standard backoff for this delivery attempt.
    pub fn backoff(settings: &Settings, attempt: u32, reason: impl Into<String>) -> Self {
        Outcome::retry(backoff(settings, attempt), reason)
    }
}

/// The longest delay a queue message can be sent with (SQS `DelaySeconds`).
pub const MAX_SEND_DELAY: Duration = Duration::from_secs(900);

/// Puts back a message that must wait. A throttled message (the ERP's rate limit
/// or daily cap, no fault of the message) is sent again as a new message delayed
/// by the wait, then the received copy is deleted: waiting on a busy ERP never
/// uses up the message's receives, so it never ends in the dead-letter queue as
/// `retry.exhausted`. Any other retry keeps the message and its receive count.
/// Returns whether the received copy is gone (the SQS event source must then
/// not report it as a batch item failure).
pub async fn put_back(
    queue: &dyn crate::ports::Queue,
    name: QueueName,
    m: &ReceivedMessage,
    after: Duration,
    throttled: bool,
) -> Result<bool, PortError> {
    if throttled {
        queue
            .send(
                name,
                vec![OutboundMessage {
                    body: m.body.clone(),
                    delay: after.min(MAX_SEND_DELAY),
                }],
            )
            .await?;
        // Sent: should the delete fail, the old copy comes back too and the
        // handlers' idempotency makes the second delivery a no-op.
        queue.delete(name, &m.receipt).await?;
        return Ok(true);
    }
    queue.change_visibility(name, &m.receipt, after).await?;
    Ok(false)
}

/// Exponential backoff with "equal jitter": half the exponential delay plus a
/// random part of the other half, capped. `attempt` counts from 1.
pub fn backoff(settings: &Settings, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let full = settings
        .backoff_base
        .saturating_mul(1u32 << exp)
        .min(settings.backoff_cap);
    let half = full / 2;
    let jitter_ms = fastrand::u64(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter_ms)
}

/// A delay the other side asked for, or our backoff if it gave none.
pub fn retry_after_or_backoff(
    settings: &Settings,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    match retry_after {
        Some(d) => d.max(Duration::from_millis(100)),
        None => backoff(settings, attempt),
    }
}

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
            reason: "tenant.not_served".into(),
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

/// What draining a dead-letter queue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub parked: usize,
    pub unreadable: usize,
    /// Change notices dropped because the record reached a newer state since.
    pub superseded: usize,
}

/// Moves dead letters into the exception store as `Open` (parked, replayable)
/// and deletes them from the DLQ. The reason is the last failure recorded while
/// retrying, so the owner sees why it kept failing.
pub async fn drain_dead_letters(
    deps: &Deps,
    dlq: QueueName,
    max: usize,
) -> Result<DrainReport, PortError> {
    let Some(source_queue) = dlq.source_of_dlq() else {
        return Ok(DrainReport::default());
    };
    let mut report = DrainReport::default();
    loop {
        let batch = deps
            .queue
            .receive(dlq, 10, deps.settings.visibility_timeout)
            .await?;
        if batch.is_empty() {
            break;
        }
        for msg in batch {
            park(deps, source_queue, &msg, &mut report).await?;
            deps.queue.delete(dlq, &msg.receipt).await?;
            if report.parked + report.unreadable + report.superseded >= max {
                return Ok(report);
            }
        }
    }
    Ok(report)
}

async fn park(
    deps: &Deps,
    source_queue: QueueName,
    msg: &ReceivedMessage,
    report: &mut DrainReport,
) -> Result<(), PortError> {
    let now = deps.clock.now();
    let Ok(envelope) = Envelope::from_body(&msg.body) else {
        // Not ours to interpret; keep it visible to support instead of dropping it.
        tracing::error!(message_id = %msg.id, "unreadable dead letter");
        report.unreadable += 1;
        let tenant = TenantId::parse("unknown").expect("valid slug");
        raise(
            deps,
            ExceptionRecord {
                id: exception_id(&tenant, "dead_letter", &msg.id),
                tenant,
                stage: "dead_letter".into(),
                domain: Domain::Customers,
                source_key: msg.id.clone(),
                reason: "message.unreadable".into(),
                message: "a dead-lettered message could not be parsed".into(),
                field: None,
                rule: None,
                erp_message: None,
                owner: Owner::Support,
                status: ExceptionStatus::Open,
                attempts: msg.receive_count,
                first_seen: now,
                last_seen: now,
                amount: None,
                hours: None,
                doc_key: None,
                blocked_by: None,
                replay_queue: source_queue,
                replay_body: msg.body.clone(),
            },
        )
        .await?;
        return Ok(());
    };
    if let Envelope::Change(c) = &envelope
        && superseded(deps, c).await?
    {
        // The record was fetched and decided after this notice was sent: its
        // newest state has (or is on its way to) a final state of its own.
        // Parking the notice would put that record back into `exception`.
        tracing::info!(message_id = %msg.id, key = %c.source_key(), "superseded dead letter dropped");
        report.superseded += 1;
        return Ok(());
    }
    let (tenant, domain, source_key, stage, doc_key) = describe(&envelope);
    let previous = deps
        .exceptions
        .open_for_source(&tenant, &source_key)
        .await?;
    let last = previous.iter().max_by_key(|e| e.last_seen);
    let (reason, message, owner, erp_message) = match last {
        Some(e) => (
            e.reason.clone(),
            format!(
                "retries exhausted after {} deliveries: {}",
                msg.receive_count.saturating_sub(1),
                e.message
            ),
            e.owner,
            e.erp_message.clone(),
        ),
        None => (
            "retry.exhausted".to_string(),
            format!(
                "retries exhausted after {} deliveries",
                msg.receive_count.saturating_sub(1)
            ),
            Owner::Support,
            None,
        ),
    };
    let id = exception_id(&tenant, stage, &source_key);
    let stored = raise(
        deps,
        ExceptionRecord {
            id: id.clone(),
            tenant: tenant.clone(),
            stage: stage.into(),
            domain,
            source_key: source_key.clone(),
            reason: reason.clone(),
            message,
            field: None,
            rule: None,
            erp_message,
            owner,
            status: ExceptionStatus::Open,
            attempts: msg.receive_count,
            first_seen: last.map(|e| e.first_seen).unwrap_or(now),
            last_seen: now,
            amount: last.and_then(|e| e.amount),
            hours: last.and_then(|e| e.hours),
            doc_key: doc_key.clone(),
            blocked_by: None,
            replay_queue: source_queue,
            replay_body: msg.body.clone(),
        },
    )
    .await?;
    // Earlier "retrying" records for the same source are folded into this one.
    for e in previous.iter().filter(|e| e.id != id) {
        deps.exceptions
            .set_status(&tenant, &e.id, ExceptionStatus::Resolved, now)
            .await?;
    }
    let disposition = Disposition::Exception {
        exception_id: stored.id.clone(),
        reason,
        owner: stored.owner,
    };
    match (&envelope, doc_key) {
        (Envelope::Post(cmd), Some(doc)) => {
            deps.ledger
                .settle_doc(&tenant, &doc, cmd.version, &disposition, now)
                .await?;
        }
        (Envelope::Change(c), _) => {
            if let Some(entry) = deps.ledger.get(&tenant, &c.source_key()).await? {
                deps.ledger
                    .settle(&tenant, &entry.source_key, &entry.version, &disposition)
                    .await?;
            }
        }
        _ => {}
    }
    report.parked += 1;
    Ok(())
}

/// A change notice is superseded when the ledger holds a version of its record
/// at least as new as the one it announced (or, without a version, one first
/// seen after it arrived) that a transform has decided: skipped, held,
/// queued or posted. `Pending` is not decided: that may be this very notice's
/// failed attempt.
async fn superseded(deps: &Deps, c: &ChangeNotice) -> Result<bool, PortError> {
    let Some(entry) = deps.ledger.get(&c.tenant, &c.source_key()).await? else {
        return Ok(false);
    };
    let covers = match &c.version {
        Some(v) => entry.version >= *v,
        None => entry.received_at >= c.received_at,
    };
    Ok(covers && entry.disposition != Disposition::Pending)
}

/// `(tenant, domain, source key, stage, doc key)` of a message.
fn describe(e: &Envelope) -> (TenantId, Domain, String, &'static str, Option<String>) {
    match e {
        Envelope::Change(c) => (
            c.tenant.clone(),
            c.domain,
            c.source_key(),
            "transform",
            None,
        ),
        Envelope::Resync(r) => (
            r.tenant.clone(),
            r.items
                .first()
                .map(|i| i.domain)
                .unwrap_or(Domain::Customers),
            format!("resync:{}", r.correlation_id),
            "transform",
            None,
        ),
        Envelope::Post(p) => (
            p.tenant.clone(),
            p.domain,
            p.doc.key.clone(),
            "post",
            Some(p.doc.key.clone()),
        ),
        Envelope::Flush(f) => (
            f.tenant.clone(),
            f.domain,
            format!("summary/{}", f.group),
            "post",
            Some(format!("summary/{}", f.group)),
        ),
    }
}

/// Why a replay was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplayError {
    #[error("no exception {0} for this tenant")]
    NotFound(String),
    #[error("exception {0} is already resolved")]
    AlreadyResolved(String),
    #[error("exception {0} holds a message that cannot be replayed: {1}")]
    Unreadable(String, String),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Puts a parked record back into the pipeline. Replays re-read the source
/// (notices are sent thin), so fixes made in the PSA or the template apply.
pub async fn replay(deps: &Deps, tenant: &TenantId, id: &str) -> Result<(), ReplayError> {
    let Some(ex) = deps.exceptions.get(tenant, id).await? else {
        return Err(ReplayError::NotFound(id.to_string()));
    };
    if ex.status == ExceptionStatus::Resolved {
        return Err(ReplayError::AlreadyResolved(id.to_string()));
    }
    let now = deps.clock.now();
    let envelope = Envelope::from_body(&ex.replay_body)
        .map_err(|e| ReplayError::Unreadable(id.to_string(), e.to_string()))?;
    let origin = Origin::Replay {
        exception_id: ex.id.clone(),
    };
    let body = match envelope {
        Envelope::Change(mut c) => {
            c.record = None;
            c.version = None;
            c.origin = origin;
            c.received_at = now;
            Envelope::Change(c)
        }
        Envelope::Resync(mut r) => {
            r.origin = origin;
            Envelope::Resync(r)
        }
        other @ (Envelope::Post(_) | Envelope::Flush(_)) => other,
    }
    .to_body();
    deps.queue
        .send(ex.replay_queue, vec![OutboundMessage::now(body)])
        .await?;
    deps.exceptions
        .set_status(tenant, id, ExceptionStatus::Replayed, now)
        .await?;
    Ok(())
}

/// Replays every open exception matching the owner/domain filter; returns how many.
pub async fn replay_all(
    deps: &Deps,
    tenant: &TenantId,
    owner: Option<Owner>,
    domain: Option<Domain>,
) -> Result<usize, ReplayError> {
    let open = deps
        .exceptions
        .list(&crate::ports::ExceptionQuery {
            tenant: Some(tenant.clone()),
            statuses: vec![ExceptionStatus::Open],
            owner,
            domain,
            first_seen_before: None,
            limit: None,
        })
        .await?;
    for ex in &open {
        replay(deps, tenant, &ex.id).await?;
    }
    Ok(open.len())
}

/// How old the oldest open exception is (for SLA alarms and reports).
pub fn age(ex: &ExceptionRecord, now: DateTime<Utc>) -> Duration {
    (now - ex.first_seen).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds_and_caps() {
        let s = Settings {
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(60),
            ..Settings::default()
        };
        for _ in 0..50 {
            let first = backoff(&s, 1);
            assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
            let third = backoff(&s, 3);
            assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(8));
            let late = backoff(&s, 30);
            assert!(late >= Duration::from_secs(30) && late <= Duration::from_secs(60));
        }
    }

    #[test]
    fn a_vendor_retry_after_wins_over_backoff() {
        let s = Settings::default();
        assert_eq!(
            retry_after_or_backoff(&s, 5, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }

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
