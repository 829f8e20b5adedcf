//! Lambda hosting for Ferry's handlers. A function's `main` reads [`Config`] from
//! the environment (a missing or malformed setting stops the cold start with a
//! message naming it), builds [`Deps`] once, and hands each event to one of the
//! `handle_*` functions here, which translate AWS event shapes to the use cases
//! and back: SQS partial batch responses, API Gateway HTTP API v2 (through
//! `lambda_http`) and EventBridge schedules.

pub mod config;
pub mod error;
pub mod metrics;
pub mod serve;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, NaiveDate};
use ferry_canon::{Domain, TenantId};
use ferry_core::Deps;
use ferry_core::messages::Envelope;
use ferry_core::ports::{QueueName, ReceivedMessage, previous_month};
use ferry_core::usecases::intake::{self, WebhookRequest};
use ferry_core::usecases::outcome::Outcome;
use ferry_core::usecases::retry;
use ferry_core::usecases::{post, reconcile, transform};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde::Deserialize;
use serde_json::Value;

pub use config::{Config, ConfigError, StoreConfig};
pub use error::FunctionError;

/// The function's name, for logs and metrics (Lambda sets `AWS_LAMBDA_FUNCTION_NAME`).
pub fn function_name(default: &str) -> String {
    std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| default.to_string())
}

/// The invocation's deadline (`Lambda-Runtime-Deadline-Ms`) as an instant.
pub fn deadline(ctx: &lambda_runtime::Context) -> Option<chrono::DateTime<chrono::Utc>> {
    i64::try_from(ctx.deadline)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

/// Structured JSON logs (CloudWatch), filter from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .try_init();
}

fn received(m: &aws_lambda_events::sqs::SqsMessage) -> Option<ReceivedMessage> {
    let sent_ms: i64 = m
        .attributes
        .get("SentTimestamp")
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    Some(ReceivedMessage {
        id: m.message_id.clone()?,
        receipt: m.receipt_handle.clone()?,
        body: m.body.clone()?,
        receive_count: m
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1),
        sent_at: DateTime::from_timestamp_millis(sent_ms).unwrap_or_default(),
    })
}

fn failure(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_string();
    f
}

/// An SQS batch for `transform` or `post`: runs the use case, hides each retried
/// message for its backoff (or the vendor's `Retry-After`), and reports only the
/// failed message ids, so the rest of the batch is deleted by the event source.
pub async fn handle_sqs(
    deps: &Deps,
    call: ferry_core::Invocation,
    queue: QueueName,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut messages = Vec::new();
    for m in &event.records {
        match received(m) {
            Some(r) => messages.push(r),
            None => {
                // A record without id, receipt or body cannot be processed; let SQS redrive it.
                if let Some(id) = &m.message_id {
                    tracing::warn!(message_id = %id, "record without receipt or body");
                    response.batch_item_failures.push(failure(id));
                }
            }
        }
    }
    let outcomes = match queue {
        QueueName::Transform => transform::handle_batch(deps, &messages).await,
        QueueName::Post => post::handle_batch(deps, call, &messages).await,
        other => {
            tracing::error!(queue = %other, "no handler for this queue");
            messages
                .iter()
                .map(|_| Outcome::retry(std::time::Duration::from_secs(60), "no handler"))
                .collect()
        }
    };
    let (mut done, mut retried, mut throttled) = (0u64, 0u64, 0u64);
    for (m, o) in messages.iter().zip(outcomes) {
        let envelope = Envelope::from_body(&m.body).ok();
        let tenant = envelope
            .as_ref()
            .map(|e| e.tenant().to_string())
            .unwrap_or_default();
        let correlation_id = envelope
            .as_ref()
            .map(|e| e.correlation_id().to_string())
            .unwrap_or_default();
        match o {
            Outcome::Retry {
                after,
                reason,
                throttled: erp_429,
            } => {
                retried += 1;
                throttled += u64::from(erp_429);
                tracing::info!(message_id = %m.id, %tenant, %correlation_id, receive_count = m.receive_count, %reason, ?after, "will retry");
                match ferry_core::usecases::outcome::put_back(
                    deps.queue.as_ref(),
                    queue,
                    m,
                    after,
                    erp_429,
                )
                .await
                {
                    // Sent again and deleted: not a batch item failure.
                    Ok(true) => {}
                    Ok(false) => response.batch_item_failures.push(failure(&m.id)),
                    Err(e) => {
                        tracing::warn!(message_id = %m.id, %tenant, %correlation_id, error = %e, "could not set the retry delay");
                        response.batch_item_failures.push(failure(&m.id));
                    }
                }
            }
            _ => {
                done += 1;
                tracing::info!(message_id = %m.id, %tenant, %correlation_id, "done");
            }
        }
    }
    metrics::emit(
        &function_name(queue.as_str()),
        deps.clock.now(),
        &[
            ("Messages", event.records.len() as u64),
            ("Done", done),
            ("Retried", retried),
            ("ErpThrottled", throttled),
            ("Unreadable", (event.records.len() - messages.len()) as u64),
        ],
        &[],
    );
    response
}

/// A webhook delivery: `/webhooks/{connector}/{tenant}` (any prefix, so Lambda
/// function URLs and custom domains route too).
pub async fn handle_webhook(deps: &Deps, req: lambda_http::Request) -> lambda_http::Response<Body> {
    let path = req.raw_http_path().to_string();
    let path = if path.is_empty() {
        req.uri().path().to_string()
    } else {
        path
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (route, tenant) = match parts.iter().rposition(|p| *p == "webhooks") {
        Some(i) if parts.len() == i + 3 => (parts[i + 1].to_string(), parts[i + 2].to_string()),
        _ => (String::new(), String::new()),
    };
    let headers = req
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let body = req.body().to_vec();
    let query = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let resp = intake::handle_webhook(
        deps,
        WebhookRequest {
            route: route.clone(),
            tenant: tenant.clone(),
            headers,
            query,
            body,
        },
    )
    .await;
    tracing::info!(%tenant, %route, status = resp.status, "webhook");
    metrics::emit(
        &function_name("intake"),
        deps.clock.now(),
        &[
            ("WebhookAccepted", u64::from(resp.status < 300)),
            (
                "WebhookRefused",
                u64::from((400..500).contains(&resp.status)),
            ),
            ("WebhookUnavailable", u64::from(resp.status >= 500)),
        ],
        &[
            ("tenant", Value::from(tenant)),
            ("route", Value::from(route)),
        ],
    );
    lambda_http::Response::builder()
        .status(resp.status)
        .header(http::header::CONTENT_TYPE, resp.content_type)
        .body(Body::Text(resp.body))
        .unwrap_or_default()
}

/// What reaches `intake`: HTTP API requests (webhooks) and, passed through by
/// `lambda_http`, EventBridge schedules (polls). A schedule's summary is the
/// JSON answer; a failed schedule is an error so EventBridge retries it.
pub async fn handle_intake(
    deps: &Deps,
    req: lambda_http::Request,
) -> Result<lambda_http::Response<Body>, FunctionError> {
    if matches!(req.request_context_ref(), Some(RequestContext::PassThrough)) {
        let event: Value = serde_json::from_slice(req.body())
            .map_err(|e| FunctionError::NonRetryable(format!("event is not JSON: {e}")))?;
        let schedule = intake_schedule(event).map_err(FunctionError::NonRetryable)?;
        let summary = handle_schedule(deps, schedule).await?;
        return Ok(lambda_http::Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::Text(summary.to_string()))
            .unwrap_or_default());
    }
    Ok(handle_webhook(deps, req).await)
}

/// What a scheduled invocation asks for (the EventBridge rule's constant input).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Poll changes for every tenant (or one), every pollable domain (or these).
    Poll {
        #[serde(default)]
        tenant: Option<TenantId>,
        #[serde(default)]
        domains: Vec<Domain>,
    },
    /// Park dead letters in the exception store.
    Sweep,
    /// Create or renew the webhook subscriptions Ferry keeps itself (vendors
    /// whose subscriptions expire), for every tenant (or one), pointing at
    /// `base` (the stack's webhook API).
    Subscribe {
        #[serde(default)]
        tenant: Option<TenantId>,
        base: String,
    },
    /// Reconcile a period (default: the previous calendar month).
    Reconcile {
        #[serde(default)]
        tenant: Option<TenantId>,
        #[serde(default)]
        from: Option<NaiveDate>,
        #[serde(default)]
        to: Option<NaiveDate>,
    },
}

/// A schedule for `intake`: a bare EventBridge scheduled event polls everything;
/// a rule's constant input (`{"action": "poll", ...}`) says what to poll.
pub fn intake_schedule(v: Value) -> Result<Schedule, String> {
    if v.get("detail-type").and_then(|d| d.as_str()) == Some("Scheduled Event") {
        return Ok(Schedule::Poll {
            tenant: None,
            domains: Vec::new(),
        });
    }
    serde_json::from_value(v).map_err(|e| format!("not a schedule: {e}"))
}

fn failed(e: impl std::fmt::Display, class: ferry_core::RetryClass) -> FunctionError {
    match class {
        ferry_core::RetryClass::Permanent => FunctionError::NonRetryable(e.to_string()),
        _ => FunctionError::Retryable(e.to_string()),
    }
}

/// Runs a scheduled action; returns a JSON summary for the invocation log.
pub async fn handle_schedule(deps: &Deps, s: Schedule) -> Result<Value, FunctionError> {
    let tenants_for = |t: &Option<TenantId>| {
        let t = t.clone();
        async move {
            match t {
                Some(t) => Ok(vec![t]),
                None => deps.tenants.list().await,
            }
        }
    };
    let summary = match s {
        Schedule::Poll { tenant, domains } => {
            let mut enqueued = 0;
            for t in tenants_for(&tenant).await? {
                let ctx =
                    deps.tenants.context(&t).await?.ok_or_else(|| {
                        FunctionError::NonRetryable(format!("unknown tenant {t}"))
                    })?;
                let ds = if domains.is_empty() {
                    ctx.psa.pollable()
                } else {
                    domains.clone()
                };
                for d in ds {
                    let r = intake::poll(deps, &t, d, &|_| {})
                        .await
                        .map_err(|e| failed(format!("{t} {d}: {e}"), e.class()))?;
                    enqueued += r.enqueued;
                }
                // Deletions the PSA does not announce: compare the last year's ids.
                let since =
                    deps.clock.now().date_naive() - chrono::Days::new(intake::DELETION_SWEEP_DAYS);
                for d in ctx.psa.swept() {
                    if domains.is_empty() || domains.contains(&d) {
                        let r = intake::sweep_deletions(deps, &t, d, since)
                            .await
                            .map_err(|e| failed(format!("{t} {d} deletions: {e}"), e.class()))?;
                        enqueued += r.enqueued;
                    }
                }
                if domains.is_empty() || domains.contains(&Domain::Payments) {
                    let r = intake::poll_erp_payments(deps, &t)
                        .await
                        .map_err(|e| failed(format!("{t} payments: {e}"), e.class()))?;
                    enqueued += r.enqueued;
                }
            }
            metrics::emit(
                &function_name("intake"),
                deps.clock.now(),
                &[("PollEnqueued", enqueued as u64)],
                &[],
            );
            serde_json::json!({ "enqueued": enqueued })
        }
        Schedule::Subscribe { tenant, base } => {
            let mut done = Vec::new();
            for t in tenants_for(&tenant).await? {
                done.extend(
                    intake::subscribe_webhooks(deps, &t, &base)
                        .await
                        .map_err(|e| failed(format!("{t} subscriptions: {e}"), e.class()))?
                        .into_iter()
                        .map(|d| format!("{t} {d}")),
                );
            }
            serde_json::json!({ "subscriptions": done })
        }
        Schedule::Sweep => {
            let (mut parked, mut unreadable, mut superseded) = (0, 0, 0);
            for dlq in [QueueName::TransformDlq, QueueName::PostDlq] {
                let r = retry::drain_dead_letters(deps, dlq, 1_000).await?;
                parked += r.parked;
                unreadable += r.unreadable;
                superseded += r.superseded;
            }
            metrics::emit(
                &function_name("retry"),
                deps.clock.now(),
                &[
                    ("Parked", parked as u64),
                    ("UnreadableDeadLetters", unreadable as u64),
                    ("SupersededDeadLetters", superseded as u64),
                ],
                &[],
            );
            serde_json::json!({ "parked": parked, "unreadable": unreadable, "superseded": superseded })
        }
        Schedule::Reconcile { tenant, from, to } => {
            let (first, last) = previous_month(deps.clock.now().date_naive());
            let from = from.unwrap_or(first);
            let to = to.unwrap_or(last);
            let (mut clean, mut mismatched) = (true, 0u64);
            for t in tenants_for(&tenant).await? {
                let r = reconcile::run(deps, &t, from, to)
                    .await
                    .map_err(|e| FunctionError::Retryable(format!("{t}: {e}")))?;
                clean &= r.clean;
                mismatched += u64::from(!r.clean);
            }
            metrics::emit(
                &function_name("reconcile"),
                deps.clock.now(),
                &[("TenantsMismatched", mismatched)],
                &[],
            );
            serde_json::json!({ "from": from, "to": to, "clean": clean })
        }
    };
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferry_core::ports::SystemClock;

    use super::*;

    #[test]
    fn work_started_in_an_invocation_is_in_progress_until_its_deadline() {
        let clock = Arc::new(SystemClock);
        let store = ferry_embedded::Store::memory(clock.clone(), 3).expect("store");
        let deps = store.deps(
            clock,
            Arc::new(ferry_connectors::tenant::ConfiguredTenants::new()),
            ferry_core::Settings::default(),
        );
        let now = deps.clock.now();
        let lease = now + chrono::Duration::seconds(60);
        let settings = &deps.settings;
        assert_eq!(
            ferry_core::Invocation::UNBOUNDED.in_progress_until(settings, now),
            lease,
            "outside Lambda: the post lease"
        );
        let mut ctx = lambda_runtime::Context::default();
        ctx.deadline = u64::try_from((now + chrono::Duration::seconds(7)).timestamp_millis())
            .expect("after 1970");
        let within = ferry_core::Invocation::until(deadline(&ctx));
        assert_eq!(
            within.in_progress_until(settings, now).timestamp_millis(),
            (now + chrono::Duration::seconds(7)).timestamp_millis(),
            "in an invocation: its deadline"
        );
        let late = ferry_core::Invocation::until(Some(now - chrono::Duration::seconds(1)));
        assert_eq!(
            late.in_progress_until(settings, now),
            lease,
            "a passed deadline falls back to the lease"
        );
    }
}
