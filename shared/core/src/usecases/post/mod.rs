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

mod group;
mod settle;

use group::*;
use settle::*;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_canon::{Domain, Money, TenantId};
use tracing::Instrument;

use crate::ReasonCode;
use crate::deps::{Deps, Invocation, TenantContext, chrono_duration};
use crate::error::{ConnectorError, PortError, RetryClass};
use crate::hash::{hash_json, hash_parts};
use crate::keys::{DocKey, RecordKey};
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
    source_keys: Vec<RecordKey>,
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
pub async fn handle_batch(
    deps: &Deps,
    call: Invocation,
    messages: &[ReceivedMessage],
) -> Vec<Outcome> {
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
    let mut newest: BTreeMap<(TenantId, DocKey), usize> = BTreeMap::new();
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
        for (index, outcome) in post_group(deps, call, &tenant, kind, jobs)
            .instrument(span)
            .await
        {
            outcomes[index] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Done))
        .collect()
}

fn job_from_command(index: usize, cmd: PostCommand, msg: &ReceivedMessage) -> Job {
    let resync = cmd.source_keys.iter().map(ResyncItem::of).collect();
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
            .map(|m| ResyncItem::of(&m.source_key))
            .collect(),
        doc,
        version: snapshot.revision,
        template_version: ctx.template.version.clone(),
        correlation_id: f.correlation_id.clone(),
        receive_count: msg.receive_count,
        body: msg.body.clone(),
    })))
}
