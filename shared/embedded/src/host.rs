//! The local host: all five handlers in one process over the embedded adapters.
//! Worker loops poll the queues and apply outcomes the way the Lambda SQS event
//! source does (delete successes, hide failures for their backoff, let the queue
//! redrive to the DLQ); a sweeper parks dead letters; an HTTP edge stands in for
//! API Gateway in front of intake.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferry_core::Deps;
use ferry_core::ports::{QueueDepth, QueueName, ReceivedMessage};
use ferry_core::usecases::intake::{self, WebhookRequest};
use ferry_core::usecases::outcome::{self, Outcome};
use ferry_core::usecases::retry;
use ferry_core::usecases::{post as post_uc, transform};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How many workers, and how they poll.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub transform_workers: usize,
    pub post_workers: usize,
    pub transform_batch: usize,
    /// Larger post batches let the post handler put more documents in one ERP call.
    pub post_batch: usize,
    /// Like the SQS event source's batching window: after a short receive, wait up
    /// to this long for more messages so they share one invocation (and one ERP call).
    pub post_batch_window: Duration,
    pub idle_poll: Duration,
    pub dlq_sweep: Duration,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            transform_workers: 2,
            post_workers: 2,
            transform_batch: 10,
            post_batch: 50,
            post_batch_window: Duration::from_millis(750),
            idle_poll: Duration::from_millis(50),
            dlq_sweep: Duration::from_millis(500),
        }
    }
}

/// Running workers; dropped or shut down, they stop.
pub struct LocalHost {
    deps: Deps,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The queues were still busy when the wait ended.
#[derive(Debug, Clone, thiserror::Error)]
#[error("pipeline still busy after {waited:?}: {depths:?}")]
pub struct Busy {
    pub waited: Duration,
    pub depths: Vec<(QueueName, QueueDepth)>,
}

/// How one invocation's messages were settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// Deleted: the handler is done with them.
    pub done: usize,
    /// Hidden for their backoff, to be received again.
    pub retried: usize,
}

/// One handler invocation over messages received from a work queue, each then
/// settled as the SQS event source settles it (done: deleted; retry: hidden for
/// its backoff; the queue redrives to the dead-letter queue).
pub async fn handle_and_settle(deps: &Deps, queue: QueueName, msgs: &[ReceivedMessage]) -> Settled {
    let outcomes = match queue {
        QueueName::Transform => transform::handle_batch(deps, msgs).await,
        QueueName::Post => {
            post_uc::handle_batch(deps, ferry_core::Invocation::UNBOUNDED, msgs).await
        }
        _ => unreachable!("only work queues have handlers"),
    };
    let mut settled = Settled::default();
    for (m, o) in msgs.iter().zip(outcomes) {
        let r = match o {
            Outcome::Done => {
                settled.done += 1;
                deps.queue.delete(queue, &m.receipt).await
            }
            Outcome::Retry {
                after, throttled, ..
            } => {
                settled.retried += 1;
                outcome::put_back(deps.queue.as_ref(), queue, m, after, throttled)
                    .await
                    .map(|_| ())
            }
        };
        if let Err(e) = r {
            // The message reappears after its visibility timeout; handlers are idempotent.
            tracing::warn!(%queue, message_id = %m.id, error = %e, "could not settle message");
        }
    }
    settled
}

async fn worker(
    deps: Deps,
    queue: QueueName,
    batch: usize,
    window: Duration,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let vt = deps.settings.visibility_timeout;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut msgs = match deps.queue.receive(queue, batch, vt).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(%queue, error = %e, "receive failed");
                Vec::new()
            }
        };
        if !msgs.is_empty() && msgs.len() < batch && !window.is_zero() {
            tokio::time::sleep(window).await;
            if let Ok(more) = deps.queue.receive(queue, batch - msgs.len(), vt).await {
                msgs.extend(more);
            }
        }
        if msgs.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        handle_and_settle(&deps, queue, &msgs).await;
    }
}

async fn sweeper(deps: Deps, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        for dlq in [QueueName::TransformDlq, QueueName::PostDlq] {
            match retry::drain_dead_letters(&deps, dlq, 1_000).await {
                Ok(r) if r.parked + r.unreadable + r.superseded > 0 => {
                    tracing::info!(%dlq, parked = r.parked, unreadable = r.unreadable, superseded = r.superseded, "dead letters parked")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(%dlq, error = %e, "could not drain dead letters"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

impl LocalHost {
    pub fn start(deps: Deps, cfg: HostConfig) -> LocalHost {
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..cfg.transform_workers.max(1) {
            tasks.push(tokio::spawn(worker(
                deps.clone(),
                QueueName::Transform,
                cfg.transform_batch,
                Duration::ZERO,
                cfg.idle_poll,
                rx.clone(),
            )));
        }
        for _ in 0..cfg.post_workers.max(1) {
            tasks.push(tokio::spawn(worker(
                deps.clone(),
                QueueName::Post,
                cfg.post_batch,
                cfg.post_batch_window,
                cfg.idle_poll,
                rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(sweeper(deps.clone(), cfg.dlq_sweep, rx)));
        LocalHost { deps, stop, tasks }
    }

    /// Depth of every queue.
    pub async fn depths(&self) -> Vec<(QueueName, QueueDepth)> {
        queue_depths(&self.deps).await
    }

    /// Waits until every queue is empty (including delayed and in-flight messages)
    /// on three checks in a row, or the timeout passes.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<(), Busy> {
        let start = Instant::now();
        let mut quiet = 0;
        loop {
            let depths = self.depths().await;
            if depths.iter().all(|(_, d)| d.total() == 0) {
                quiet += 1;
                if quiet >= 3 {
                    return Ok(());
                }
            } else {
                quiet = 0;
            }
            if start.elapsed() > timeout {
                return Err(Busy {
                    waited: start.elapsed(),
                    depths,
                });
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Stops the workers after their current batch; returns what stays queued.
    pub async fn shutdown(self) -> Vec<(QueueName, QueueDepth)> {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        queue_depths(&self.deps).await
    }
}

/// Every queue's depth (a queue that cannot be read counts as empty).
pub async fn queue_depths(deps: &Deps) -> Vec<(QueueName, QueueDepth)> {
    let mut out = Vec::new();
    for q in QueueName::ALL {
        out.push((q, deps.queue.depth(q).await.unwrap_or_default()));
    }
    out
}

/// The local stand-in for API Gateway: `POST /webhooks/{connector}/{tenant}`.
pub struct WebhookEdge {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl WebhookEdge {
    /// `http://127.0.0.1:port`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL a vendor should call for a tenant.
    pub fn url(&self, connector: &str, tenant: &str) -> String {
        format!("{}/webhooks/{connector}/{tenant}", self.origin())
    }
}

impl Drop for WebhookEdge {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn answer(resp: intake::WebhookResponse) -> Response {
    (
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", resp.content_type)],
        resp.body,
    )
        .into_response()
}

async fn webhook(
    State(deps): State<Deps>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    query: axum::extract::RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // A path that is not UTF-8 names no route or tenant: not found, in JSON.
    let Ok(Path((route, tenant))) = path else {
        return answer(intake::WebhookResponse::error(404, "not found"));
    };
    let limit = deps.settings.max_webhook_body;
    // A body announced larger than the limit is refused before any of it is
    // read (and before `Expect: 100-continue` is answered).
    if headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
    {
        return answer(intake::WebhookResponse::too_large(limit));
    }
    let read = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit));
    let body = match tokio::time::timeout(deps.settings.edge_read_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return answer(intake::WebhookResponse::too_large(limit));
        }
        Ok(Err(e)) => {
            tracing::info!(error = %e, "webhook body could not be read");
            return answer(intake::WebhookResponse::error(
                400,
                "body could not be read",
            ));
        }
        Err(_) => {
            return answer(intake::WebhookResponse::error(
                408,
                "the body did not arrive in time",
            ));
        }
    };
    let headers = headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    answer(
        intake::handle_webhook(
            &deps,
            WebhookRequest {
                route,
                tenant,
                headers,
                query: query
                    .0
                    .map(|q| {
                        url::form_urlencoded::parse(q.as_bytes())
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect()
                    })
                    .unwrap_or_default(),
                body: body.to_vec(),
            },
        )
        .await,
    )
}

/// Connections the local edge serves at once.
pub const MAX_CONNECTIONS: usize = 256;

/// Starts the webhook edge on `addr` (port 0 for an ephemeral port). Every
/// refusal, the edge's own (unknown path, wrong method, body too large or too
/// slow) and intake's, is JSON of one shape; a client that does not finish its
/// headers within `edge_read_timeout` is disconnected, and one that does not
/// finish its body within it is answered 408.
pub async fn serve_webhooks(deps: Deps, addr: SocketAddr) -> std::io::Result<WebhookEdge> {
    let read_timeout = deps.settings.edge_read_timeout;
    let app = Router::new()
        .route("/webhooks/{route}/{tenant}", post(webhook))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { answer(intake::WebhookResponse::error(404, "not found")) })
        .method_not_allowed_fallback(|| async {
            answer(intake::WebhookResponse::error(405, "method not allowed"))
        })
        // The handler reads the body itself, with its limit and timeout.
        .layer(DefaultBodyLimit::disable())
        .with_state(deps);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    // Each connection's memory is bounded by the body limit; their number is too.
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, say: back off instead of spinning.
                        tracing::warn!(error = %e, "webhook edge could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut rx => return,
            };
            let Ok(permit) = open.clone().try_acquire_owned() else {
                // At the limit: closed at once rather than queued.
                tracing::warn!("webhook edge at {MAX_CONNECTIONS} connections; one refused");
                drop(stream);
                continue;
            };
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(read_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "webhook connection ended with an error");
                }
                drop(permit);
            });
        }
    });
    Ok(WebhookEdge {
        addr,
        stop: Some(tx),
    })
}
