//! transform: change notice → canonical record → ERP document (via the tenant's
//! template) → post command; or a skip with a reason, or an exception with a
//! reason and an owner.

mod outcomes;
mod payments;
mod routing;
mod summaries;
mod timesheets;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use ferry_canon::{CanonicalRecord, Domain, SourceRef, SourceVersion, TenantId};
use tracing::Instrument;

use crate::ReasonCode;
use crate::deps::{Deps, TenantContext};
use crate::error::{ConnectorError, PortError, RetryClass};
use crate::hash::{hash_json, sha256_hex};
use crate::keys::{DocKey, RecordKey};
use crate::mapping::{self, ContactRef, Related, StagedLine, SummaryGroup, Violation};
use crate::messages::{ChangeNotice, Envelope, FlushGroup, Origin, PostCommand, Resync};
use crate::ports::{
    ChangeAction, Disposition, ExceptionRecord, ExceptionStatus, Observation, Observe,
    OutboundMessage, Owner, QueueName, ReceivedMessage, SourceRecord, StageRequest,
};
use crate::posting::PostingDoc;
use crate::template::{CompiledRule, Direction, Granularity};
use crate::usecases::exceptions::{self, exception_id};
use crate::usecases::outcome::{self, Outcome};
use crate::usecases::retry;

pub use outcomes::release_dependents;
pub use summaries::SummaryHeader;

/// Handles a batch from the transform queue; one outcome per message, in order.
pub async fn handle_batch(deps: &Deps, messages: &[ReceivedMessage]) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(messages.len());
    for msg in messages {
        out.push(handle_message(deps, msg).await);
    }
    out
}

/// Handles one message; infrastructure failures become retries with backoff.
pub async fn handle_message(deps: &Deps, msg: &ReceivedMessage) -> Outcome {
    let envelope = match Envelope::from_body(&msg.body) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(message_id = %msg.id, error = %e, "unreadable transform message");
            // Leave it to the DLQ: retry parks it with the body intact for support.
            return Outcome::backoff(
                &deps.settings,
                msg.receive_count,
                format!("unreadable message: {e}"),
            );
        }
    };
    let result = match envelope {
        Envelope::Change(notice) => transform_notice(deps, &notice, msg).await,
        Envelope::Resync(r) => resync(deps, &r).await.map(|_| Outcome::Done),
        // Post-queue messages on the wrong queue: forward rather than drop.
        other @ (Envelope::Post(_) | Envelope::Flush(_)) => deps
            .queue
            .send(QueueName::Post, vec![OutboundMessage::now(other.to_body())])
            .await
            .map(|_| Outcome::Done)
            .map_err(Failure::Port),
    };
    match result {
        Ok(o) => o,
        Err(f) => {
            let (after, throttled) = match f.class() {
                RetryClass::Throttled { retry_after } => (
                    outcome::retry_after_or_backoff(&deps.settings, msg.receive_count, retry_after),
                    true,
                ),
                _ => (outcome::backoff(&deps.settings, msg.receive_count), false),
            };
            tracing::warn!(message_id = %msg.id, error = %f, ?after, throttled, "transform will retry");
            Outcome::Retry {
                after,
                reason: f.to_string(),
                throttled,
            }
        }
    }
}

/// Failures that make a notice retry (as opposed to an exception, which is a result).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Port(#[from] PortError),
    #[error("vendor call failed: {0}")]
    Psa(#[from] ConnectorError),
}

impl Failure {
    fn class(&self) -> RetryClass {
        match self {
            Failure::Port(p) => p.class,
            Failure::Psa(c) => c.class(),
        }
    }
}

async fn resync(deps: &Deps, r: &Resync) -> Result<(), Failure> {
    let now = deps.clock.now();
    let notices = r
        .items
        .iter()
        .map(|i| {
            OutboundMessage::now(
                Envelope::Change(ChangeNotice {
                    tenant: r.tenant.clone(),
                    system: i.system.clone(),
                    domain: i.domain,
                    id: i.id.clone(),
                    action: ChangeAction::Upsert,
                    version: None,
                    record: None,
                    origin: r.origin.clone(),
                    received_at: now,
                    correlation_id: r.correlation_id.clone(),
                })
                .to_body(),
            )
        })
        .collect();
    deps.queue.send(QueueName::Transform, notices).await?;
    Ok(())
}

/// Whether the ledger holds `entry` as deleted at the source.
fn held_deleted(entry: &crate::ports::LedgerEntry) -> bool {
    entry
        .canonical
        .as_deref()
        .and_then(|c| serde_json::from_str::<CanonicalRecord>(c).ok())
        .is_some_and(|c| c.meta().deleted)
}

/// The version under which Ferry orders a source state it is about to observe.
/// The source's own version, except where the source's version cannot tell two
/// states apart: a state Ferry holds keeps the version it was first observed
/// under, and current content the source dates no later than the state Ferry
/// holds (a second change within the same second) is ordered just after it. Each
/// state thus gets its own version, so its documents get their own revision and
/// idempotency key, and an older state can never be ordered after a newer one.
fn ferry_order(
    held: &crate::ports::LedgerEntry,
    version: &SourceVersion,
    content_hash: &str,
) -> SourceVersion {
    if held.content_hash == content_hash {
        return held.version.clone();
    }
    if *version <= held.version && !held_deleted(held) {
        return SourceVersion {
            updated_at: held.version.updated_at + chrono::Duration::microseconds(1),
            etag: version.etag.clone(),
        };
    }
    version.clone()
}

/// Everything transform knows about the notice it is working on.
struct Work<'a> {
    deps: &'a Deps,
    ctx: Arc<TenantContext>,
    notice: &'a ChangeNotice,
    key: RecordKey,
    receive_count: u32,
}

async fn transform_notice(
    deps: &Deps,
    notice: &ChangeNotice,
    msg: &ReceivedMessage,
) -> Result<Outcome, Failure> {
    let receive_count = msg.receive_count;
    let Some(ctx) = deps.tenants.context(&notice.tenant).await? else {
        return Ok(exceptions::not_served(
            deps,
            exceptions::Unserved {
                tenant: &notice.tenant,
                stage: "transform",
                domain: notice.domain,
                source_key: &notice.source_key(),
                receive_count,
                queue: QueueName::Transform,
                body: &msg.body,
            },
        )
        .await);
    };
    let w = Work {
        deps,
        ctx,
        notice,
        key: notice.source_key(),
        receive_count,
    };
    let span = tracing::info_span!("transform", tenant = %notice.tenant, key = %w.key, correlation_id = %notice.correlation_id);
    if notice.system == w.ctx.erp.system() {
        return w.payment_status().instrument(span).await;
    }
    w.run().instrument(span).await
}

impl Work<'_> {
    /// Maps a source record and hashes the result (the raw record if it does not map).
    fn map(&self, rec: &SourceRecord) -> Mapped {
        let mapped = self.ctx.canonical(rec);
        let canonical_json = mapped
            .as_ref()
            .ok()
            .map(|c| serde_json::to_string(c).expect("canonical records serialise"));
        let content_hash = match &canonical_json {
            Some(j) => sha256_hex(j.as_bytes()),
            None => hash_json(&rec.raw),
        };
        (mapped, canonical_json, content_hash)
    }

    async fn run(&self) -> Result<Outcome, Failure> {
        let Some(rec) = self.current_record().await? else {
            return Ok(Outcome::Done);
        };
        if rec.domain != self.notice.domain {
            // The source files the record under another domain than the notice
            // named (a ConnectWise credit memo notified as an invoice, in a thin
            // notice): it is kept under its own domain's key, as a poll would.
            tracing::info!(notified = %self.notice.domain, actual = %rec.domain, "record handled under its own domain");
            let notice = ChangeNotice {
                domain: rec.domain,
                ..self.notice.clone()
            };
            let w = Work {
                deps: self.deps,
                ctx: self.ctx.clone(),
                notice: &notice,
                key: notice.source_key(),
                receive_count: self.receive_count,
            };
            return w.process(rec).await;
        }
        self.process(rec).await
    }

    async fn process(&self, mut rec: SourceRecord) -> Result<Outcome, Failure> {
        let (mut mapped, mut canonical_json, mut content_hash) = self.map(&rec);
        let held = self.deps.ledger.get(&self.notice.tenant, &self.key).await?;
        // A notice body that is not newer than what Ferry holds, with other content,
        // cannot be ordered by its version: two changes within one second share one
        // (ConnectWise's timestamps are whole seconds), and a reordered webhook is
        // older. Ask the source for the current state instead of trusting the body.
        // Nor can a body be ordered against a deletion: the deletion's version is
        // Ferry's clock, the body's the source's. A deleted record stays deleted
        // unless the source still has it.
        if self.notice.record.is_some()
            && let Some(held) = &held
            && held.content_hash != content_hash
            && (rec.version <= held.version || held_deleted(held))
        {
            match self.ctx.psa.fetch(rec.domain, &rec.id).await? {
                Some(current) => {
                    rec = current;
                    (mapped, canonical_json, content_hash) = self.map(&rec);
                }
                None => return Ok(Outcome::Done),
            }
        }
        let version = held.as_ref().map_or_else(
            || rec.version.clone(),
            |h| ferry_order(h, &rec.version, &content_hash),
        );
        let observed = self
            .deps
            .ledger
            .observe(Observation {
                tenant: &self.notice.tenant,
                source_key: &self.key,
                domain: self.notice.domain,
                version: &version,
                content_hash: &content_hash,
                received_at: self.notice.received_at,
                canonical: canonical_json.as_deref(),
            })
            .await?;
        let last_doc = match observed {
            Observe::Stale { current } => {
                tracing::info!(stale = %rec.version.updated_at, current = %current.updated_at, "older version ignored");
                return Ok(Outcome::Done);
            }
            // A replay reprocesses on purpose: the template or the ERP may have changed.
            Observe::Duplicate { last_doc, .. }
                if matches!(self.notice.origin, Origin::Replay { .. }) =>
            {
                last_doc
            }
            Observe::Duplicate { .. } => return Ok(Outcome::Done),
            Observe::New { last_doc, .. } => last_doc,
        };
        let canon = match mapped {
            Ok(c) => c,
            Err(e) => {
                let owner = self
                    .rule()
                    .map(|r| r.owner)
                    .unwrap_or(Owner::ProjectOperations);
                let v = Violation::new(
                    ReasonCode::SourceRecord,
                    owner,
                    format!("{} {} cannot be read: {e}", self.notice.domain, self.key),
                )
                .field(e.field.clone())
                .rule(e.rule.clone());
                self.exception(&version, None, v, None).await?;
                return Ok(Outcome::Done);
            }
        };
        self.decide(&version, &canon, last_doc).await
    }

    fn rule(&self) -> Option<&CompiledRule> {
        self.ctx.template.rule(self.notice.domain)
    }

    /// The record to work on: the notice's copy (fat), or the source's current state.
    /// A delete is confirmed with the source: if the record still exists, the
    /// delete notice is out of date and the current state is used instead.
    async fn current_record(&self) -> Result<Option<SourceRecord>, Failure> {
        let n = self.notice;
        if n.action == ChangeAction::Upsert
            && let (Some(raw), Some(version)) = (&n.record, &n.version)
        {
            return Ok(Some(SourceRecord {
                domain: n.domain,
                id: n.id.clone(),
                version: version.clone(),
                deleted: false,
                raw: raw.clone(),
            }));
        }
        if let Some(current) = self.ctx.psa.fetch(n.domain, &n.id).await? {
            return Ok(Some(current));
        }
        // Gone at the source. The deletion is newer than anything we hold.
        let mut found = self
            .deps
            .ledger
            .get(&n.tenant, &self.key)
            .await?
            .map(|h| (n.domain, h));
        for d in self.ctx.psa.shares_ids_with(n.domain) {
            if found.is_some() {
                break;
            }
            let key = ChangeNotice {
                domain: d,
                ..n.clone()
            }
            .source_key();
            found = self.deps.ledger.get(&n.tenant, &key).await?.map(|h| (d, h));
        }
        let Some((domain, held)) = found else {
            tracing::info!("delete of a record Ferry never saw; nothing to do");
            return Ok(None);
        };
        let at = std::cmp::max(
            n.received_at,
            held.version.updated_at + chrono::Duration::microseconds(1),
        );
        let mut raw = held
            .canonical
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .unwrap_or(serde_json::Value::Null);
        // Carry the last known content, flagged deleted, so mappers can build a reversal.
        if let Some(obj) = raw.get_mut("record").and_then(|r| r.get_mut("meta")) {
            obj["deleted"] = serde_json::Value::Bool(true);
        }
        Ok(Some(SourceRecord {
            domain,
            id: n.id.clone(),
            version: SourceVersion::at(at),
            deleted: true,
            raw: serde_json::json!({ "ferry_tombstone": raw }),
        }))
    }
}

/// A mapped record, its canonical JSON and its content hash.
type Mapped = (
    Result<CanonicalRecord, crate::error::MappingError>,
    Option<String>,
    String,
);
