//! One ERP call for a group of documents of one kind: claim and hold each,
//! write what still needs writing, and read the answers.

use super::*;

pub(super) async fn post_group(
    deps: &Deps,
    call: Invocation,
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
        match hold(deps, call, job).await {
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
pub(super) fn outcome_of_write(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::Protocol { message } => ConnectorError::transient(format!(
            "the ERP's answer cannot be read, so it may hold the documents: {message}"
        )),
        other => other,
    }
}

/// The stored result of a deletion that needed no ERP call.
pub(super) const NOTHING_TO_DELETE: &str = "nothing to delete";
pub(super) const DELETED_BEFORE_ERP: &str = "deleted before it reached the ERP";

/// Takes the idempotency key and the document lease, or says why not.
pub(super) async fn hold(
    deps: &Deps,
    call: Invocation,
    job: Job,
) -> Result<Result<Held, Outcome>, PortError> {
    let now = deps.clock.now();
    let key = job.idempotency_key();
    let lease_until = call.in_progress_until(&deps.settings, now);
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
                    doc_key: job.doc.key.to_string(),
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
                doc_key: job.doc.key.to_string(),
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
