//! What each document's answer leaves behind: the id map, the ledger, the
//! idempotency record and the audit entry on success; an exception with the
//! ERP's words on a refusal; a retry or a hold when the outcome is unknown.

use super::*;

/// A deletion of a document the ERP never had: complete without a call.
pub(super) async fn finish_without_write(deps: &Deps, h: &Held) -> (usize, Outcome) {
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

pub(super) async fn succeeded(
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

pub(super) async fn record_success(
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
            doc_key: job.doc.key.to_string(),
            erp_system: ctx.erp.system().to_string(),
            erp_id: Some(erp_id.to_string()),
            action: action.into(),
            version: job.version,
            source_keys: job.source_keys.iter().map(|k| k.to_string()).collect(),
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
        doc_key: job.doc.key.to_string(),
        revision: job.version,
    };
    deps.ledger
        .settle_doc(&job.tenant, &job.doc.key, job.version, &posted, now)
        .await?;
    let mut resolved = exceptions::resolve_moved_on(deps, &job.tenant, &job.doc.key, now).await?;
    // A per-record document's key is its record's key: resolved just above.
    for k in job
        .source_keys
        .iter()
        .filter(|k| k.as_str() != job.doc.key.as_str())
    {
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
pub(super) async fn let_go(deps: &Deps, h: &Held) -> Result<(), PortError> {
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

pub(super) async fn rejected(
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
pub(super) async fn call_failed(deps: &Deps, h: &Held, e: &ConnectorError) -> (usize, Outcome) {
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

pub(super) fn post_exception(
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
        source_key: job.doc.key.to_string(),
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
        doc_key: Some(job.doc.key.to_string()),
        blocked_by: None,
        replay_queue: QueueName::Transform,
        replay_body: replay.to_body(),
    }
}

pub(super) async fn raise_post_exception(
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
