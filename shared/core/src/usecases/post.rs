//! post: write documents to the ERP exactly once in effect.
//!
//! Per document: an idempotency record (Powertools protocol: INPROGRESS /
//! COMPLETED, expiry, payload hash) plus a per-document lease in the id map that
//! refuses versions not newer than the one written (an older update never
//! overwrites a newer one), plus the ERP's own key (`Idempotency-Key`).
//!
//! The rule against a second ERP document is about the document, not the
//! attempt: once a post has claimed a document, a create of it may have reached
//! the ERP, so every later write of that document without a recorded ERP id,
//! whatever its version or idempotency key, first looks it up by Ferry's
//! reference and adopts what it finds. After a write that got no answer
//! (`ConnectorError::Unanswered`) the document stays held
//! (`Settings::unknown_outcome_hold`), so the lookup is not made while the ERP
//! may still be committing the earlier create. Connectors
//! only supply `find_by_reference`; the rule lives here.
//! Documents of one kind are batched into one ERP call where the ERP allows it,
//! within the account's shared rate budget.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_canon::{Domain, Money, TenantId};
use tracing::Instrument;

use crate::ReasonCode;
use crate::deps::{Deps, TenantContext, chrono_duration};
use crate::error::{ConnectorError, PortError, RetryClass};
use crate::hash::{hash_json, hash_parts};
use crate::mapping::{self, StagedLine};
use crate::messages::{Envelope, FlushGroup, Origin, PostCommand, Resync, ResyncItem};
use crate::ports::{
    AuditEntry, Begin, BeginRequest, Claim, ClaimRequest, CommitRequest, Disposition, DomainEvent,
    ExceptionRecord, ExceptionStatus, IdMapEntry, ItemResult, OutboundItem, OutboundMessage, Owner,
    QueueName, ReceivedMessage,
};
use crate::posting::{DocKind, PostingDoc};
use crate::usecases::exceptions::{self, exception_id};
use crate::usecases::outcome::{self, Outcome};
use crate::usecases::transform::{SummaryHeader, release_dependents};

/// One document to write, from a post command or a summary flush.
#[derive(Debug, Clone)]
struct Job {
    index: usize,
    tenant: TenantId,
    domain: Domain,
    doc: PostingDoc,
    version: i64,
    content_hash: String,
    source_keys: Vec<String>,
    source_hash: String,
    template_version: String,
    correlation_id: String,
    receive_count: u32,
    /// What a replay re-reads if the ERP refuses the document.
    resync: Vec<ResyncItem>,
    /// The message the job came from (kept queued when its tenant is not served).
    body: String,
}

impl Job {
    fn idempotency_key(&self) -> String {
        let v = self.version.to_string();
        let h = hash_parts(&[
            self.tenant.as_str(),
            &self.doc.key,
            &v,
            &self.template_version,
        ]);
        format!("post-{}", &h[..40])
    }
}

/// A job holding its idempotency key and document lease.
#[derive(Debug, Clone)]
struct Held {
    job: Job,
    key: String,
    erp_id: Option<String>,
    /// An earlier post claimed this document and recorded no ERP id: a create
    /// of it may have reached the ERP (under any version or key).
    maybe_created: bool,
    adopted: bool,
    /// The version and content the id map recorded before this claim.
    prior: (i64, Option<String>),
}

/// Handles a batch from the post queue; one outcome per message, in order.
pub async fn handle_batch(deps: &Deps, messages: &[ReceivedMessage]) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; messages.len()];
    let mut jobs = Vec::new();
    for (index, msg) in messages.iter().enumerate() {
        let envelope = match Envelope::from_body(&msg.body) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(message_id = %msg.id, error = %e, "unreadable post message");
                outcomes[index] = Some(Outcome::backoff(
                    &deps.settings,
                    msg.receive_count,
                    format!("unreadable message: {e}"),
                ));
                continue;
            }
        };
        match envelope {
            Envelope::Post(cmd) => jobs.push(job_from_command(index, *cmd, msg)),
            Envelope::Flush(f) => match job_from_flush(deps, index, &f, msg).await {
                Ok(Flushed::Job(job)) => jobs.push(*job),
                Ok(Flushed::Nothing) => outcomes[index] = Some(Outcome::Done),
                Ok(Flushed::NotServed) => {
                    outcomes[index] = Some(
                        exceptions::not_served(
                            deps,
                            exceptions::Unserved {
                                tenant: &f.tenant,
                                stage: "post",
                                domain: f.domain,
                                source_key: &f.group,
                                receive_count: msg.receive_count,
                                queue: QueueName::Post,
                                body: &msg.body,
                            },
                        )
                        .await,
                    )
                }
                Err(e) => {
                    outcomes[index] = Some(Outcome::backoff(
                        &deps.settings,
                        msg.receive_count,
                        e.to_string(),
                    ))
                }
            },
            other => {
                let sent = deps
                    .queue
                    .send(
                        QueueName::Transform,
                        vec![OutboundMessage::now(other.to_body())],
                    )
                    .await;
                outcomes[index] = Some(match sent {
                    Ok(()) => Outcome::Done,
                    Err(e) => Outcome::backoff(&deps.settings, msg.receive_count, e.to_string()),
                });
            }
        }
    }

    // Same document twice in one batch: only the newest version is worth writing.
    let mut newest: BTreeMap<(TenantId, String), usize> = BTreeMap::new();
    for (i, j) in jobs.iter().enumerate() {
        let k = (j.tenant.clone(), j.doc.key.clone());
        match newest.get(&k) {
            Some(&other) if jobs[other].version >= j.version => {}
            _ => {
                newest.insert(k, i);
            }
        }
    }
    let mut groups: BTreeMap<(TenantId, DocKind), Vec<Job>> = BTreeMap::new();
    for (i, j) in jobs.into_iter().enumerate() {
        if newest.get(&(j.tenant.clone(), j.doc.key.clone())) == Some(&i) {
            groups
                .entry((j.tenant.clone(), j.doc.kind))
                .or_default()
                .push(j);
        } else {
            outcomes[j.index] = Some(Outcome::Done);
        }
    }
    for ((tenant, kind), jobs) in groups {
        let span = tracing::info_span!("post", tenant = %tenant, kind = kind.as_str(), documents = jobs.len());
        for (index, outcome) in post_group(deps, &tenant, kind, jobs).instrument(span).await {
            outcomes[index] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Done))
        .collect()
}

fn job_from_command(index: usize, cmd: PostCommand, msg: &ReceivedMessage) -> Job {
    let resync = cmd
        .source_keys
        .iter()
        .filter_map(|k| crate::messages::parse_record_key(k))
        .map(|(domain, system, id)| ResyncItem { domain, system, id })
        .collect();
    Job {
        index,
        tenant: cmd.tenant,
        domain: cmd.domain,
        doc: cmd.doc,
        version: cmd.version,
        content_hash: cmd.content_hash,
        source_keys: cmd.source_keys,
        source_hash: cmd.source_hash,
        template_version: cmd.template_version,
        correlation_id: cmd.correlation_id,
        receive_count: msg.receive_count,
        resync,
        body: msg.body.clone(),
    }
}

/// What a summary flush comes to.
enum Flushed {
    Job(Box<Job>),
    /// Nothing to write (an empty group that never reached the ERP, or a render
    /// refusal already recorded).
    Nothing,
    /// The group's tenant is not configured in this process.
    NotServed,
}

/// Renders a summary group's current state.
async fn job_from_flush(
    deps: &Deps,
    index: usize,
    f: &FlushGroup,
    msg: &ReceivedMessage,
) -> Result<Flushed, PortError> {
    let Some(ctx) = deps.tenants.context(&f.tenant).await? else {
        return Ok(Flushed::NotServed);
    };
    let Some(rule) = ctx.template.rule(f.domain) else {
        tracing::warn!(tenant = %f.tenant, domain = %f.domain, "flush for a domain the template no longer summarises");
        return Ok(Flushed::Nothing);
    };
    // Clear the schedule first: a change staged after this point schedules a new flush.
    deps.staging.unschedule(&f.tenant, &f.group).await?;
    let snapshot = deps.staging.snapshot(&f.tenant, &f.group).await?;
    if snapshot.header.is_none() && snapshot.members.is_empty() {
        // Nothing was ever staged in this group (or the message names a group of
        // another store): there is nothing to flush.
        return Ok(Flushed::Nothing);
    }
    let Some(header) = snapshot
        .header
        .as_deref()
        .and_then(|h| serde_json::from_str::<SummaryHeader>(h).ok())
    else {
        return Err(PortError::permanent(
            "staging",
            "snapshot",
            format!("group {} has no readable header", f.group),
        ));
    };
    let members: Vec<StagedLine> = snapshot
        .members
        .iter()
        .filter_map(|(_, j)| serde_json::from_str(j).ok())
        .collect();
    if members.is_empty()
        && !IdMapEntry::may_exist_in_erp(
            deps.idmap
                .get(&f.tenant, &header.group.doc_key)
                .await?
                .as_ref(),
        )
    {
        return Ok(Flushed::Nothing);
    }
    let doc = match mapping::render_summary(
        &ctx.template,
        rule,
        &header.group,
        &members,
        &header.contact,
    ) {
        Ok(d) => d,
        Err(v) => {
            tracing::error!(group = %f.group, reason = %v.reason, "summary cannot render");
            return Ok(Flushed::Nothing);
        }
    };
    Ok(Flushed::Job(Box::new(Job {
        index,
        tenant: f.tenant.clone(),
        domain: f.domain,
        content_hash: hash_json(&doc),
        source_hash: hash_json(&members),
        source_keys: members.iter().map(|m| m.source_key.clone()).collect(),
        resync: members
            .iter()
            .filter_map(|m| crate::messages::parse_record_key(&m.source_key))
            .map(|(domain, system, id)| ResyncItem { domain, system, id })
            .collect(),
        doc,
        version: snapshot.revision,
        template_version: ctx.template.version.clone(),
        correlation_id: f.correlation_id.clone(),
        receive_count: msg.receive_count,
        body: msg.body.clone(),
    })))
}

async fn post_group(
    deps: &Deps,
    tenant: &TenantId,
    kind: DocKind,
    jobs: Vec<Job>,
) -> Vec<(usize, Outcome)> {
    let mut out = Vec::new();
    let ctx = match deps.tenants.context(tenant).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            let mut out = Vec::new();
            for j in jobs {
                let body = j.body.clone();
                let outcome = exceptions::not_served(
                    deps,
                    exceptions::Unserved {
                        tenant,
                        stage: "post",
                        domain: j.domain,
                        source_key: &j.doc.key,
                        receive_count: j.receive_count,
                        queue: QueueName::Post,
                        body: &body,
                    },
                )
                .await;
                out.push((j.index, outcome));
            }
            return out;
        }
        Err(e) => {
            return jobs
                .into_iter()
                .map(|j| {
                    (
                        j.index,
                        Outcome::backoff(&deps.settings, j.receive_count, e.to_string()),
                    )
                })
                .collect();
        }
    };

    let mut held = Vec::new();
    for job in jobs {
        let index = job.index;
        let receive_count = job.receive_count;
        match hold(deps, job).await {
            Ok(Ok(h)) => held.push(h),
            Ok(Err(outcome)) => out.push((index, outcome)),
            Err(e) => out.push((
                index,
                Outcome::backoff(&deps.settings, receive_count, e.to_string()),
            )),
        }
    }

    // An earlier create may have reached the ERP: find it by our reference before creating.
    let mut ready = Vec::new();
    for mut h in held {
        if h.erp_id.is_none() && h.maybe_created {
            match ctx.erp.find_by_reference(&h.job.doc).await {
                Ok(Some(found)) => {
                    tracing::info!(doc = %h.job.doc.key, erp_id = %found.erp_id, "adopting the document an earlier attempt created");
                    h.erp_id = Some(found.erp_id);
                    h.adopted = true;
                }
                Ok(None) => {}
                Err(e) => {
                    out.push(call_failed(deps, &h, &e).await);
                    continue;
                }
            }
        }
        // A deletion of something the ERP never had is already done.
        if h.erp_id.is_none() && h.job.doc.is_removal() {
            out.push(finish_without_write(deps, &h).await);
            continue;
        }
        ready.push(h);
    }

    // A stable order: the same batch always reaches the ERP the same way.
    ready.sort_by(|a, b| a.job.doc.key.cmp(&b.job.doc.key));
    for chunk in ready.chunks(ctx.erp.capabilities().max_batch.max(1)) {
        let items: Vec<OutboundItem> = chunk
            .iter()
            .map(|h| OutboundItem {
                doc: h.job.doc.clone(),
                erp_id: h.erp_id.clone(),
            })
            .collect();
        // The ERP's key covers exactly what is sent: a retry of the same request
        // replays, while a changed request (an adopted id) gets a key of its own.
        let parts: Vec<String> = chunk
            .iter()
            .map(|h| {
                format!(
                    "{}|{}|{}",
                    h.key,
                    h.erp_id.as_deref().unwrap_or("-"),
                    h.job.content_hash
                )
            })
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let batch_key = format!("ferry-{}", &hash_parts(&parts)[..48]);
        match ctx.erp.upsert(kind, &items, &batch_key).await {
            Ok(results) if results.len() == chunk.len() => {
                for ((h, item), result) in chunk.iter().zip(&items).zip(results) {
                    let outcome = match result {
                        ItemResult::Ok {
                            erp_id,
                            erp_number,
                            response,
                        } => {
                            succeeded(
                                deps,
                                &ctx,
                                h,
                                item,
                                &erp_id,
                                erp_number.as_deref(),
                                &response,
                            )
                            .await
                        }
                        ItemResult::Rejected { messages, response } => {
                            rejected(deps, &ctx, h, &messages, &response).await
                        }
                        ItemResult::Unconfirmed { message, .. } => {
                            call_failed(deps, h, &ConnectorError::transient(message))
                                .await
                                .1
                        }
                    };
                    out.push((h.job.index, outcome));
                }
            }
            Ok(results) => {
                let e = ConnectorError::transient(format!(
                    "ERP answered {} results for {} documents; it may hold them",
                    results.len(),
                    chunk.len()
                ));
                for h in chunk {
                    out.push(call_failed(deps, h, &e).await);
                }
            }
            Err(e) => {
                let e = outcome_of_write(e);
                for h in chunk {
                    out.push(call_failed(deps, h, &e).await);
                }
            }
        }
    }
    out
}

/// What a failed write means for the documents it carried. An answer Ferry
/// cannot read came after the ERP received the request, so the ERP may hold the
/// documents: that is an unknown outcome (hold, then look up), not a refusal.
fn outcome_of_write(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::Protocol { message } => ConnectorError::transient(format!(
            "the ERP's answer cannot be read, so it may hold the documents: {message}"
        )),
        other => other,
    }
}

/// The stored result of a deletion that needed no ERP call.
const NOTHING_TO_DELETE: &str = "nothing to delete";
const DELETED_BEFORE_ERP: &str = "deleted before it reached the ERP";

/// Takes the idempotency key and the document lease, or says why not.
async fn hold(deps: &Deps, job: Job) -> Result<Result<Held, Outcome>, PortError> {
    let now = deps.clock.now();
    let key = job.idempotency_key();
    let lease_until = deps.in_progress_until(now);
    let begin = deps
        .idempotency
        .begin(BeginRequest {
            tenant: &job.tenant,
            key: &key,
            payload_hash: &job.content_hash,
            now,
            in_progress_until: lease_until,
            expires_at: now + chrono_duration(deps.settings.idempotency_ttl),
        })
        .await?;
    match begin {
        // Whether or not an earlier attempt used this key, the id map says whether
        // a create of the document may have reached the ERP (`maybe_created`):
        // every attempt that could send claimed it first.
        Begin::Started { .. } => {}
        Begin::Completed { response } => {
            // The write is done, but the records folded into this version may
            // have been queued again since it was recorded (a notice handled
            // twice around a crash): they are settled as the write ended.
            tracing::info!(doc = %job.doc.key, "already posted (duplicate delivery)");
            let settled = match response.as_deref() {
                Some(NOTHING_TO_DELETE) => Disposition::Skipped {
                    reason: DELETED_BEFORE_ERP.into(),
                },
                _ => Disposition::Posted {
                    doc_key: job.doc.key.clone(),
                    revision: job.version,
                },
            };
            deps.ledger
                .settle_doc(&job.tenant, &job.doc.key, job.version, &settled, now)
                .await?;
            return Ok(Err(Outcome::Done));
        }
        Begin::InProgress { until } => {
            let wait = (until - now).to_std().unwrap_or(Duration::from_secs(1));
            return Ok(Err(Outcome::retry(
                wait,
                "another attempt holds this document",
            )));
        }
        Begin::PayloadMismatch { stored_hash } => {
            let message = format!(
                "idempotency key {key} was used before with a different payload (stored {}, now {})",
                &stored_hash[..12.min(stored_hash.len())],
                &job.content_hash[..12.min(job.content_hash.len())]
            );
            raise_post_exception(
                deps,
                &job,
                ReasonCode::IdempotencyPayloadMismatch,
                &message,
                None,
                Owner::Support,
            )
            .await?;
            return Ok(Err(Outcome::Done));
        }
    };
    let claim = deps
        .idmap
        .claim(ClaimRequest {
            tenant: &job.tenant,
            doc_key: &job.doc.key,
            version: job.version,
            content_hash: &job.content_hash,
            now,
            lease_until,
        })
        .await?;
    match claim {
        Claim::Granted { entry } => Ok(Ok(Held {
            maybe_created: entry.as_ref().is_some_and(|e| e.erp_id.is_none()),
            prior: entry
                .as_ref()
                .map(|e| (e.version, e.content_hash.clone()))
                .unwrap_or((0, None)),
            erp_id: entry.and_then(|e| e.erp_id),
            key,
            adopted: false,
            job,
        })),
        Claim::Stale {
            current_version, ..
        } => {
            // The ERP already holds this version or a newer one: nothing to write,
            // and every record folded into this version is in the ERP.
            tracing::info!(doc = %job.doc.key, version = job.version, current_version, "not newer than the ERP's copy");
            deps.idempotency
                .complete(
                    &job.tenant,
                    &key,
                    "superseded",
                    now + chrono_duration(deps.settings.idempotency_ttl),
                )
                .await?;
            let posted = Disposition::Posted {
                doc_key: job.doc.key.clone(),
                revision: current_version,
            };
            deps.ledger
                .settle_doc(&job.tenant, &job.doc.key, job.version, &posted, now)
                .await?;
            Ok(Err(Outcome::Done))
        }
        Claim::Busy { until } => {
            deps.idempotency.release(&job.tenant, &key).await?;
            let wait = (until - now).to_std().unwrap_or(Duration::from_secs(1));
            Ok(Err(Outcome::retry(
                wait,
                "another post holds this document",
            )))
        }
    }
}

/// A deletion of a document the ERP never had: complete without a call.
async fn finish_without_write(deps: &Deps, h: &Held) -> (usize, Outcome) {
    let now = deps.clock.now();
    let r = async {
        deps.idempotency
            .complete(
                &h.job.tenant,
                &h.key,
                NOTHING_TO_DELETE,
                now + chrono_duration(deps.settings.idempotency_ttl),
            )
            .await?;
        let_go(deps, h).await?;
        let skipped = Disposition::Skipped {
            reason: DELETED_BEFORE_ERP.into(),
        };
        deps.ledger
            .settle_doc(&h.job.tenant, &h.job.doc.key, h.job.version, &skipped, now)
            .await?;
        Ok::<_, PortError>(())
    }
    .await;
    match r {
        Ok(()) => (h.job.index, Outcome::Done),
        Err(e) => (
            h.job.index,
            Outcome::backoff(&deps.settings, h.job.receive_count, e.to_string()),
        ),
    }
}

async fn succeeded(
    deps: &Deps,
    ctx: &Arc<TenantContext>,
    h: &Held,
    item: &OutboundItem,
    erp_id: &str,
    erp_number: Option<&str>,
    response: &serde_json::Value,
) -> Outcome {
    match record_success(deps, ctx, h, item, erp_id, erp_number, response).await {
        Ok(()) => Outcome::Done,
        Err(e) => {
            // The ERP has the document but our bookkeeping failed. The idempotency record
            // stays in progress, so the retry looks the document up instead of creating it.
            tracing::error!(doc = %h.job.doc.key, error = %e, "bookkeeping after a successful write failed");
            let _ = deps
                .idempotency
                .abandon(&h.job.tenant, &h.key, deps.clock.now())
                .await;
            let _ = let_go(deps, h).await;
            Outcome::backoff(&deps.settings, h.job.receive_count, e.to_string())
        }
    }
}

async fn record_success(
    deps: &Deps,
    ctx: &Arc<TenantContext>,
    h: &Held,
    item: &OutboundItem,
    erp_id: &str,
    erp_number: Option<&str>,
    response: &serde_json::Value,
) -> Result<(), PortError> {
    let job = &h.job;
    let now = deps.clock.now();
    deps.idmap
        .commit(CommitRequest {
            tenant: &job.tenant,
            doc_key: &job.doc.key,
            // A removed document is gone: the next write creates one anew.
            erp_id: (!job.doc.is_removal()).then_some(erp_id),
            erp_number,
            version: job.version,
            content_hash: &job.content_hash,
            now,
        })
        .await?;
    let action = if h.adopted {
        "adopt"
    } else if job.doc.is_removal() || job.doc.contact().is_some_and(|c| c.archived) {
        "delete"
    } else if h.erp_id.is_some() {
        "update"
    } else {
        "create"
    };
    let request = ctx
        .erp
        .render(item)
        .map(|v| v.to_string())
        .unwrap_or_else(|e| format!("(render failed: {e})"));
    deps.audit
        .append(&AuditEntry {
            tenant: job.tenant.clone(),
            at: now,
            doc_key: job.doc.key.clone(),
            erp_system: ctx.erp.system().to_string(),
            erp_id: Some(erp_id.to_string()),
            action: action.into(),
            version: job.version,
            source_keys: job.source_keys.clone(),
            source_hash: job.source_hash.clone(),
            template_version: job.template_version.clone(),
            idempotency_key: h.key.clone(),
            request,
            response: response.to_string(),
            correlation_id: job.correlation_id.clone(),
        })
        .await?;
    let result = serde_json::json!({ "erp_id": erp_id, "erp_number": erp_number }).to_string();
    deps.idempotency
        .complete(
            &job.tenant,
            &h.key,
            &result,
            now + chrono_duration(deps.settings.idempotency_ttl),
        )
        .await?;
    let posted = Disposition::Posted {
        doc_key: job.doc.key.clone(),
        revision: job.version,
    };
    deps.ledger
        .settle_doc(&job.tenant, &job.doc.key, job.version, &posted, now)
        .await?;
    let mut resolved = exceptions::resolve_moved_on(deps, &job.tenant, &job.doc.key, now).await?;
    // A per-record document's key is its record's key: resolved just above.
    for k in job.source_keys.iter().filter(|k| **k != job.doc.key) {
        resolved += exceptions::resolve_moved_on(deps, &job.tenant, k, now).await?;
    }
    // What a customer or project held back (records that need it in the ERP)
    // goes through again now that it is there.
    if matches!(job.doc.kind, DocKind::Contact | DocKind::Project) {
        for k in &job.source_keys {
            release_dependents(deps, &job.tenant, k).await?;
        }
    }
    let mut events = vec![DomainEvent::new(
        DomainEvent::RECORD_POSTED,
        &job.tenant,
        now,
        serde_json::json!({
            "doc_key": job.doc.key,
            "kind": job.doc.kind,
            "erp_id": erp_id,
            "erp_number": erp_number,
            "version": job.version,
            "action": action,
            "sources": job.source_keys.len(),
            "template_version": job.template_version,
        }),
    )];
    if resolved > 0 {
        events.push(DomainEvent::new(
            DomainEvent::EXCEPTION_RESOLVED,
            &job.tenant,
            now,
            serde_json::json!({ "doc_key": job.doc.key, "resolved": resolved }),
        ));
    }
    if let Err(e) = deps.events.publish(events).await {
        tracing::warn!(error = %e, "could not publish posted event");
    }
    tracing::info!(doc = %job.doc.key, erp_id, action, version = job.version, "posted");
    Ok(())
}

/// Ends this post's hold on the document without recording a write of it. A
/// document found by Ferry's reference (adopted) is recorded with its ERP id all
/// the same, at the version the map had: the ERP holds it, whatever became of
/// this write, and the next post updates it instead of looking again (or, if the
/// lookup missed it then, creating a second one). The one ending that does not
/// come here is a write that got no answer: that keeps the hold, and the next
/// post looks the document up again after it.
async fn let_go(deps: &Deps, h: &Held) -> Result<(), PortError> {
    match (&h.erp_id, h.adopted) {
        (Some(erp_id), true) => {
            deps.idmap
                .commit(CommitRequest {
                    tenant: &h.job.tenant,
                    doc_key: &h.job.doc.key,
                    erp_id: Some(erp_id),
                    erp_number: None,
                    version: h.prior.0,
                    content_hash: h.prior.1.as_deref().unwrap_or_default(),
                    now: deps.clock.now(),
                })
                .await
        }
        _ => deps.idmap.release(&h.job.tenant, &h.job.doc.key).await,
    }
}

async fn rejected(
    deps: &Deps,
    ctx: &Arc<TenantContext>,
    h: &Held,
    messages: &[String],
    response: &serde_json::Value,
) -> Outcome {
    let job = &h.job;
    let erp = ctx.erp.system();
    let text = messages.join("; ");
    tracing::warn!(doc = %job.doc.key, erp_message = %text, "ERP refused the document");
    let r = async {
        deps.idempotency.release(&job.tenant, &h.key).await?;
        let_go(deps, h).await?;
        let message = format!(
            "{erp} refused {} {}: {text}",
            job.doc.kind.as_str(),
            job.doc.key
        );
        raise_post_exception(
            deps,
            job,
            ReasonCode::ErpValidation,
            &message,
            Some((text.clone(), response)),
            Owner::Finance,
        )
        .await
    }
    .await;
    match r {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::backoff(&deps.settings, job.receive_count, e.to_string()),
    }
}

/// The whole ERP call failed: throttled, transient (outcome unknown) or refused.
async fn call_failed(deps: &Deps, h: &Held, e: &ConnectorError) -> (usize, Outcome) {
    let job = &h.job;
    let now = deps.clock.now();
    let r: Result<Outcome, PortError> = async {
        match e.class() {
            RetryClass::Throttled { retry_after } => {
                // A 429 means the request was not processed.
                let_go(deps, h).await?;
                deps.idempotency.release(&job.tenant, &h.key).await?;
                let after =
                    outcome::retry_after_or_backoff(&deps.settings, job.receive_count, retry_after);
                Ok(Outcome::throttled(after, e.to_string()))
            }
            RetryClass::Transient => {
                // Maybe committed: keep the record so the next attempt looks before it
                // writes. Without an answer the ERP may still be committing: hold the
                // document a while, so no lookup runs before it has finished.
                if matches!(e, ConnectorError::Unanswered { .. }) {
                    let until = now + chrono_duration(deps.settings.unknown_outcome_hold);
                    deps.idmap.hold(&job.tenant, &job.doc.key, until).await?;
                } else {
                    let_go(deps, h).await?;
                }
                deps.idempotency.abandon(&job.tenant, &h.key, now).await?;
                let ex = post_exception(
                    deps,
                    job,
                    ReasonCode::ErpUnavailable,
                    &e.to_string(),
                    None,
                    Owner::Support,
                );
                deps.exceptions
                    .raise(ExceptionRecord {
                        status: ExceptionStatus::Retrying,
                        ..ex
                    })
                    .await?;
                Ok(Outcome::backoff(
                    &deps.settings,
                    job.receive_count,
                    e.to_string(),
                ))
            }
            RetryClass::Permanent => {
                let_go(deps, h).await?;
                deps.idempotency.release(&job.tenant, &h.key).await?;
                let owner = match e {
                    ConnectorError::Rejected { .. } => Owner::Finance,
                    _ => Owner::Support,
                };
                raise_post_exception(
                    deps,
                    job,
                    ReasonCode::ErpRefusedCall,
                    &e.to_string(),
                    None,
                    owner,
                )
                .await?;
                Ok(Outcome::Done)
            }
        }
    }
    .await;
    match r {
        Ok(o) => (job.index, o),
        Err(pe) => (
            job.index,
            Outcome::backoff(&deps.settings, job.receive_count, pe.to_string()),
        ),
    }
}

fn post_exception(
    deps: &Deps,
    job: &Job,
    reason: ReasonCode,
    message: &str,
    erp: Option<(String, &serde_json::Value)>,
    owner: Owner,
) -> ExceptionRecord {
    let now = deps.clock.now();
    let amount = job
        .doc
        .invoice()
        .map(|i| Money::new(i.subtotal, i.currency));
    let hours = job.doc.invoice().map(|i| {
        i.lines
            .iter()
            .filter(|l| l.kind == ferry_canon::LineKind::Time)
            .map(|l| l.quantity)
            .sum()
    });
    let replay = Envelope::Resync(Resync {
        tenant: job.tenant.clone(),
        items: job.resync.clone(),
        origin: Origin::Replay {
            exception_id: exception_id(&job.tenant, "post", &job.doc.key),
        },
        correlation_id: job.correlation_id.clone(),
    });
    ExceptionRecord {
        id: exception_id(&job.tenant, "post", &job.doc.key),
        tenant: job.tenant.clone(),
        stage: "post".into(),
        domain: job.domain,
        source_key: job.doc.key.clone(),
        reason,
        message: message.into(),
        field: None,
        rule: None,
        erp_message: erp.as_ref().map(|(t, _)| t.clone()),
        owner,
        status: ExceptionStatus::Open,
        attempts: 1,
        first_seen: now,
        last_seen: now,
        amount,
        hours: hours.filter(|h: &rust_decimal::Decimal| !h.is_zero()),
        doc_key: Some(job.doc.key.clone()),
        blocked_by: None,
        replay_queue: QueueName::Transform,
        replay_body: replay.to_body(),
    }
}

async fn raise_post_exception(
    deps: &Deps,
    job: &Job,
    reason: ReasonCode,
    message: &str,
    erp: Option<(String, &serde_json::Value)>,
    owner: Owner,
) -> Result<(), PortError> {
    let stored =
        exceptions::raise(deps, post_exception(deps, job, reason, message, erp, owner)).await?;
    let d = Disposition::Exception {
        exception_id: stored.id,
        reason,
        owner,
    };
    deps.ledger
        .settle_doc(&job.tenant, &job.doc.key, job.version, &d, deps.clock.now())
        .await?;
    Ok(())
}
