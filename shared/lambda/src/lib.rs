//! Lambda hosting for Ferry's handlers. A function's `main` reads [`Config`] from
//! the environment (a missing or malformed setting stops the cold start with a
//! message naming it), builds [`Deps`] once, and hands each event to one of the
//! `handle_*` functions here, which translate AWS event shapes to the use cases
//! and back (SQS partial batch responses, API Gateway HTTP API v2 responses).

pub mod serve;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Datelike, Months, NaiveDate};
use ferry_canon::{Domain, TenantId};
use ferry_connectors::tenant::{self, ConfiguredTenants, TenantConfig, Wiring};
use ferry_core::ports::{Clock, QueueName, ReceivedMessage, SystemClock};
use ferry_core::usecases::intake::{self, WebhookRequest};
use ferry_core::usecases::retry::{self, Outcome};
use ferry_core::usecases::{post, reconcile, transform};
use ferry_core::{Deps, Settings};
use ferry_embedded::Store;
use serde::Deserialize;

/// A configuration problem found at cold start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required ({1})")]
    Missing(&'static str, &'static str),
    #[error("environment variable {name} is malformed: {problem}")]
    Malformed { name: &'static str, problem: String },
    #[error("tenant wiring failed: {0}")]
    Wiring(#[from] tenant::WiringError),
    #[error("store: {0}")]
    Store(#[from] ferry_core::PortError),
}

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// `sqlite:/path/to/ferry.db`: the embedded adapters (local runs, `cargo lambda watch`).
    Sqlite(PathBuf),
}

/// Typed function configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    /// Tenant files (`tenant.toml`), one per tenant of this stack.
    pub tenant_files: Vec<PathBuf>,
    pub max_receives: u32,
    pub settings: Settings,
}

fn var(
    name: &'static str,
    why: &'static str,
    env: &HashMap<String, String>,
) -> Result<String, ConfigError> {
    env.get(name)
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .ok_or(ConfigError::Missing(name, why))
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads settings from a map (tests pass their own).
    pub fn from_map(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let store = var(
            "FERRY_STORE",
            "where state lives, e.g. sqlite:/tmp/ferry.db",
            env,
        )?;
        let store = match store.split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => StoreConfig::Sqlite(PathBuf::from(path)),
            _ => {
                return Err(ConfigError::Malformed {
                    name: "FERRY_STORE",
                    problem: format!("expected sqlite:<path>, got {store:?}"),
                });
            }
        };
        let tenants = var(
            "FERRY_TENANT_FILES",
            "comma-separated tenant.toml paths",
            env,
        )?;
        let tenant_files = tenants
            .split(',')
            .map(|p| PathBuf::from(p.trim()))
            .collect();
        let max_receives = match env.get("FERRY_MAX_RECEIVES") {
            None => 5,
            Some(v) => v.parse().map_err(|_| ConfigError::Malformed {
                name: "FERRY_MAX_RECEIVES",
                problem: format!("expected a whole number, got {v:?}"),
            })?,
        };
        Ok(Config {
            store,
            tenant_files,
            max_receives,
            settings: Settings::default(),
        })
    }

    /// Builds the handlers' dependencies once (at cold start).
    pub async fn build(&self) -> Result<Deps, ConfigError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let StoreConfig::Sqlite(path) = &self.store;
        let store = Store::open(path, clock.clone(), self.max_receives)?;
        let tenants = Arc::new(ConfiguredTenants::new());
        let wiring = Wiring {
            secrets: store.secrets.clone(),
            budget: store.budget.clone(),
            clock: clock.clone(),
            budget_max_wait: self.settings.budget_max_wait,
        };
        for file in &self.tenant_files {
            let (cfg, dir) = TenantConfig::read(file)?;
            let template = cfg.load_template(&dir)?;
            tenants.insert(tenant::build(&cfg, template, &wiring).await?);
        }
        Ok(store.deps(clock, tenants, self.settings.clone()))
    }
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

/// An SQS batch for `transform` or `post`: runs the use case, hides each retried
/// message for its backoff, and reports only the failed message ids.
pub async fn handle_sqs(deps: &Deps, queue: QueueName, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut messages = Vec::new();
    for m in &event.records {
        match received(m) {
            Some(r) => messages.push(r),
            None => {
                // A record without id, receipt or body cannot be processed; let SQS redrive it.
                if let Some(id) = &m.message_id {
                    let mut f = BatchItemFailure::default();
                    f.item_identifier = id.clone();
                    response.batch_item_failures.push(f);
                }
            }
        }
    }
    let outcomes = match queue {
        QueueName::Transform => transform::handle_batch(deps, &messages).await,
        QueueName::Post => post::handle_batch(deps, &messages).await,
        other => {
            tracing::error!(queue = %other, "no handler for this queue");
            messages
                .iter()
                .map(|_| Outcome::retry(std::time::Duration::from_secs(60), "no handler"))
                .collect()
        }
    };
    for (m, o) in messages.iter().zip(outcomes) {
        if let Outcome::Retry { after, reason } = o {
            if let Err(e) = deps.queue.change_visibility(queue, &m.receipt, after).await {
                tracing::warn!(message_id = %m.id, error = %e, "could not set the retry delay");
            }
            tracing::info!(message_id = %m.id, %reason, ?after, "will retry");
            let mut f = BatchItemFailure::default();
            f.item_identifier = m.id.clone();
            response.batch_item_failures.push(f);
        }
    }
    response
}

/// An API Gateway HTTP API v2 request to `/webhooks/{connector}/{tenant}`.
pub async fn handle_webhook(deps: &Deps, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let path = req.raw_path.clone().unwrap_or_default();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (route, tenant) = match parts.iter().position(|p| *p == "webhooks") {
        Some(i) if parts.len() == i + 3 => (parts[i + 1].to_string(), parts[i + 2].to_string()),
        _ => (String::new(), String::new()),
    };
    let body = match (req.body, req.is_base64_encoded) {
        (Some(b), true) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default()
        }
        (Some(b), false) => b.into_bytes(),
        (None, _) => Vec::new(),
    };
    let headers = req
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let resp = intake::handle_webhook(
        deps,
        WebhookRequest {
            route,
            tenant,
            headers,
            body,
        },
    )
    .await;
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(resp.status);
    out.body = Some(Body::Text(resp.body));
    out.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    out
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

/// Runs a scheduled action; returns a JSON summary for the invocation log.
pub async fn handle_schedule(deps: &Deps, s: Schedule) -> Result<serde_json::Value, String> {
    let tenants_for = |t: &Option<TenantId>| {
        let t = t.clone();
        async move {
            match t {
                Some(t) => Ok(vec![t]),
                None => deps.tenants.list().await.map_err(|e| e.to_string()),
            }
        }
    };
    match s {
        Schedule::Poll { tenant, domains } => {
            let mut enqueued = 0;
            for t in tenants_for(&tenant).await? {
                let ctx = deps
                    .tenants
                    .context(&t)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("unknown tenant")?;
                let ds = if domains.is_empty() {
                    ctx.psa.pollable()
                } else {
                    domains.clone()
                };
                for d in ds {
                    let r = intake::poll(deps, &t, d, &|_| {})
                        .await
                        .map_err(|e| format!("{t} {d}: {e}"))?;
                    enqueued += r.enqueued;
                }
                if domains.is_empty() || domains.contains(&Domain::Payments) {
                    let r = intake::poll_erp_payments(deps, &t)
                        .await
                        .map_err(|e| format!("{t} payments: {e}"))?;
                    enqueued += r.enqueued;
                }
            }
            Ok(serde_json::json!({ "enqueued": enqueued }))
        }
        Schedule::Sweep => {
            let mut parked = 0;
            for dlq in [QueueName::TransformDlq, QueueName::PostDlq] {
                parked += retry::drain_dead_letters(deps, dlq, 1_000)
                    .await
                    .map_err(|e| e.to_string())?
                    .parked;
            }
            Ok(serde_json::json!({ "parked": parked }))
        }
        Schedule::Reconcile { tenant, from, to } => {
            let today = deps.clock.now().date_naive();
            let first = today.with_day(1).unwrap_or(today) - Months::new(1);
            let from = from.unwrap_or(first);
            let to = to.unwrap_or_else(|| (first + Months::new(1)).pred_opt().unwrap_or(first));
            let mut clean = true;
            for t in tenants_for(&tenant).await? {
                let r = reconcile::run(deps, &t, from, to)
                    .await
                    .map_err(|e| format!("{t}: {e}"))?;
                clean &= r.clean;
            }
            Ok(serde_json::json!({ "from": from, "to": to, "clean": clean }))
        }
    }
}

/// What an `intake` invocation carries: an HTTP API request or a schedule.
pub enum IntakeEvent {
    Http(Box<ApiGatewayV2httpRequest>),
    Schedule(Schedule),
}

/// Tells the two apart: HTTP API v2 events have `requestContext` and `rawPath`.
pub fn classify(v: serde_json::Value) -> Result<IntakeEvent, String> {
    if v.get("requestContext").is_some() && v.get("rawPath").is_some() {
        return serde_json::from_value(v)
            .map(|r| IntakeEvent::Http(Box::new(r)))
            .map_err(|e| e.to_string());
    }
    // An EventBridge scheduled event with no constant input polls everything.
    if v.get("detail-type").and_then(|d| d.as_str()) == Some("Scheduled Event") {
        return Ok(IntakeEvent::Schedule(Schedule::Poll {
            tenant: None,
            domains: Vec::new(),
        }));
    }
    serde_json::from_value(v)
        .map(IntakeEvent::Schedule)
        .map_err(|e| format!("not an HTTP API request nor a schedule: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_missing_or_malformed_setting_is_named_at_cold_start() {
        let e = Config::from_map(&env(&[])).unwrap_err().to_string();
        assert!(e.contains("FERRY_STORE"), "{e}");
        let e = Config::from_map(&env(&[("FERRY_STORE", "dynamodb")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("FERRY_STORE is malformed"), "{e}");
        let e = Config::from_map(&env(&[("FERRY_STORE", "sqlite:/tmp/x.db")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("FERRY_TENANT_FILES"), "{e}");
        let e = Config::from_map(&env(&[
            ("FERRY_STORE", "sqlite:/tmp/x.db"),
            ("FERRY_TENANT_FILES", "t.toml"),
            ("FERRY_MAX_RECEIVES", "many"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("FERRY_MAX_RECEIVES"), "{e}");
        let ok = Config::from_map(&env(&[
            ("FERRY_STORE", "sqlite:/tmp/x.db"),
            ("FERRY_TENANT_FILES", "a.toml, b.toml"),
        ]))
        .unwrap();
        assert_eq!(ok.tenant_files.len(), 2);
    }

    #[test]
    fn intake_tells_http_requests_from_schedules() {
        let http = serde_json::json!({
            "version": "2.0", "routeKey": "POST /webhooks/{connector}/{tenant}", "rawPath": "/webhooks/connectwise/acme",
            "rawQueryString": "", "headers": {"x-content-signature": "abc"},
            "requestContext": {"http": {"method": "POST", "path": "/webhooks/connectwise/acme", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1", "userAgent": "cw"},
                               "accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d", "requestId": "r", "routeKey": "POST /webhooks/{connector}/{tenant}", "stage": "$default", "time": "25/Nov/2026:18:00:00 +0000", "timeEpoch": 1},
            "body": "{}", "isBase64Encoded": false
        });
        assert!(matches!(classify(http), Ok(IntakeEvent::Http(_))));
        let sched = serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert!(matches!(
            classify(sched),
            Ok(IntakeEvent::Schedule(Schedule::Poll { .. }))
        ));
        let poll =
            serde_json::json!({"action": "poll", "tenant": "acme", "domains": ["time_entries"]});
        assert!(
            matches!(classify(poll), Ok(IntakeEvent::Schedule(Schedule::Poll { domains, .. })) if domains == vec![Domain::TimeEntries])
        );
        assert!(classify(serde_json::json!({"action": "dance"})).is_err());
    }
}
