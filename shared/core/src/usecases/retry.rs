//! retry: parking of dead letters in the exception store, and replay from it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_canon::{Domain, TenantId};

use crate::ReasonCode;
use crate::deps::Deps;
use crate::error::PortError;
use crate::keys::DocKey;
use crate::messages::{ChangeNotice, Envelope, Origin};
use crate::ports::{
    Disposition, ExceptionRecord, ExceptionStatus, OutboundMessage, Owner, QueueName,
    ReceivedMessage,
};
use crate::usecases::exceptions::{exception_id, raise};

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
                reason: ReasonCode::MessageUnreadable,
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
            e.reason,
            format!(
                "retries exhausted after {} deliveries: {}",
                msg.receive_count.saturating_sub(1),
                e.message
            ),
            e.owner,
            e.erp_message.clone(),
        ),
        None => (
            ReasonCode::RetryExhausted,
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
            reason,
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
            c.source_key().to_string(),
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
            p.doc.key.to_string(),
            "post",
            Some(p.doc.key.to_string()),
        ),
        Envelope::Flush(f) => (
            f.tenant.clone(),
            f.domain,
            DocKey::summary(&f.group).to_string(),
            "post",
            Some(DocKey::summary(&f.group).to_string()),
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
