//! The pipeline on AWS adapters against the emulator (moto), driven the way AWS
//! drives the functions: an API Gateway stand-in turns webhook POSTs into HTTP
//! API v2 events for `intake`, and an event-source-mapping stand-in polls the
//! SQS queues, invokes `transform` / `post` with SQS events, and deletes only
//! the messages the function did not report as failed (the rest redrive).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use ferry_aws::{Resources, provision};
use ferry_canon::TenantId;
use ferry_cli::local::{Simulators, repo_dir, tenant_file};
use ferry_core::Deps;
use ferry_core::ports::QueueName;
use ferry_lambda::config::QUEUE_VARS;
use ferry_sim::demo::DemoSpec;
use lambda_http::request::LambdaRequest;
use serde_json::{Value, json};

/// A customer stack on the emulator: simulators, provisioned resources, the
/// tenant file and secrets, and the handlers' dependencies built by the same
/// `Config` a Lambda cold start uses.
pub struct AwsStack {
    pub sdk: aws_config::SdkConfig,
    pub resources: Resources,
    pub sims: Simulators,
    pub tenant: TenantId,
    pub deps: Deps,
    pub env: HashMap<String, String>,
    _dir: tempfile::TempDir,
}

/// The environment a function of this stack is deployed with.
pub fn function_env(
    r: &Resources,
    tenant_file: &std::path::Path,
    max_receives: u32,
) -> HashMap<String, String> {
    let mut env = HashMap::from([
        ("FERRY_STORE".to_string(), "aws".to_string()),
        (
            "FERRY_TENANT_FILES".into(),
            tenant_file.display().to_string(),
        ),
        ("FERRY_TABLE".into(), r.table.clone()),
        ("FERRY_EVENT_BUS".into(), r.event_bus.clone()),
        ("FERRY_SECRET_PREFIX".into(), r.secret_prefix.clone()),
        ("FERRY_MAX_RECEIVES".into(), max_receives.to_string()),
    ]);
    for (q, var) in QUEUE_VARS {
        env.insert(var.to_string(), r.queues[&q].clone());
    }
    env
}

impl AwsStack {
    pub async fn start(spec: &DemoSpec, max_receives: u32) -> AwsStack {
        crate::init_tracing();
        let sims = Simulators::start(spec).await.expect("simulators start");
        let sdk = ferry_aws::testing::emulator().await;
        let prefix = format!("e2e-{}", fastrand::u32(..));
        let resources = provision::create(&sdk, &prefix, max_receives)
            .await
            .expect("provision the stack on the emulator");
        let tenant = TenantId::parse("test-firm").expect("valid");
        let secrets: BTreeMap<String, String> = sims
            .secrets()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        provision::put_secret(&sdk, &resources, &tenant, &secrets)
            .await
            .expect("tenant secret");
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = repo_dir();
        let mut cfg = sims.tenant_config(&tenant, &repo.join("templates"));
        cfg.template.overlay = Some(repo.join("tenants/demo-firm/template.toml"));
        let path = dir.path().join("tenant.toml");
        std::fs::write(&path, tenant_file(&cfg)).expect("write tenant file");
        let env = function_env(&resources, &path, max_receives);
        let deps = build(&env).await;
        AwsStack {
            sdk,
            resources,
            sims,
            tenant,
            deps,
            env,
            _dir: dir,
        }
    }

    /// Dependencies for a function deployed with `env` changed by `change`.
    pub async fn deps_with(&self, change: impl FnOnce(&mut HashMap<String, String>)) -> Deps {
        let mut env = self.env.clone();
        change(&mut env);
        build(&env).await
    }

    /// An API Gateway stand-in in front of `deps`, subscribed with both simulators.
    pub async fn gateway(&self, deps: &Deps) -> Gateway {
        let gateway = Gateway::start(deps.clone()).await;
        self.sims
            .subscribe(
                &gateway.url("connectwise", &self.tenant),
                &gateway.url("xero", &self.tenant),
            )
            .await
            .expect("subscribe the gateway with the simulators");
        gateway
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }
}

/// What a cold start does, with the test's short waits.
pub async fn build(env: &HashMap<String, String>) -> Deps {
    let mut config = ferry_lambda::Config::from_map(env).expect("function config");
    config.settings = ferry_cli::local::local_settings();
    config.build().await.expect("cold start")
}

/// Turns an HTTP request into the HTTP API v2 event API Gateway would send.
pub fn http_api_event(method: &str, path: &str, headers: &HeaderMap, body: &[u8]) -> Value {
    let mut h = serde_json::Map::new();
    for (k, v) in headers {
        if let Ok(v) = v.to_str() {
            h.insert(k.as_str().to_ascii_lowercase(), json!(v));
        }
    }
    let (body, b64) = match std::str::from_utf8(body) {
        Ok(t) => (t.to_string(), false),
        Err(_) => {
            use base64::Engine;
            (base64::engine::general_purpose::STANDARD.encode(body), true)
        }
    };
    // API Gateway stamps the request with AWS's clock, not Ferry's.
    let now = ferry_sim::vendor_now();
    json!({
        "version": "2.0",
        "routeKey": "POST /webhooks/{connector}/{tenant}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "127.0.0.1",
            "domainPrefix": "local", "requestId": format!("r-{}", fastrand::u64(..)),
            "routeKey": "POST /webhooks/{connector}/{tenant}", "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(), "timeEpoch": now.timestamp_millis(),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "sim"}
        },
        "isBase64Encoded": b64,
        "body": body,
    })
}

/// Runs one HTTP API v2 event through `intake` as the Lambda runtime would.
pub async fn invoke_intake(deps: &Deps, event: Value) -> (u16, String) {
    let req: LambdaRequest = serde_json::from_value(event).expect("lambda_http reads the event");
    let resp = ferry_lambda::handle_intake(deps, req.into())
        .await
        .expect("webhooks always get an HTTP answer");
    let status = resp.status().as_u16();
    let body = match resp.into_body() {
        lambda_http::Body::Text(t) => t,
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    (status, body)
}

/// An API Gateway stand-in on loopback: every POST becomes an HTTP API event
/// for `intake`. It keeps the events it forwarded, for redelivery.
pub struct Gateway {
    pub addr: SocketAddr,
    pub events: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type GatewayState = (Deps, Arc<Mutex<Vec<Value>>>);

async fn forward(
    State((deps, seen)): State<GatewayState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let event = http_api_event(method.as_str(), uri.path(), &headers, &body);
    seen.lock().expect("not poisoned").push(event.clone());
    let (status, body) = invoke_intake(&deps, event).await;
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        body,
    )
}

impl Gateway {
    pub async fn start(deps: Deps) -> Gateway {
        let events = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .fallback(forward)
            .with_state((deps, events.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Gateway { addr, events, task }
    }

    pub fn url(&self, connector: &str, tenant: &TenantId) -> String {
        format!("http://{}/webhooks/{connector}/{tenant}", self.addr)
    }
}

/// What the event-source-mapping stand-in did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub invocations: u32,
    pub deleted: u32,
    pub failed: u32,
}

/// One poll of `queue`, as the Lambda event source mapping does it: receive a
/// batch, invoke the function with an SQS event, delete the successes.
pub async fn poll_once(
    stack: &AwsStack,
    deps: &Deps,
    queue: QueueName,
    visibility: Duration,
) -> Drained {
    let sqs = stack.sqs();
    let url = &stack.resources.queues[&queue];
    let got = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(i32::try_from(visibility.as_secs()).unwrap_or(30))
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .expect("receive");
    let messages = got.messages.unwrap_or_default();
    if messages.is_empty() {
        return Drained::default();
    }
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attrs: serde_json::Map<String, Value> = m
                .attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                .collect();
            json!({
                "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
                "attributes": attrs, "messageAttributes": {}, "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs", "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    let event = serde_json::from_value(json!({ "Records": records })).expect("an SQS event");
    let response =
        ferry_lambda::handle_sqs(deps, ferry_core::Invocation::UNBOUNDED, queue, event).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .filter(|m| {
            !failed
                .iter()
                .any(|f| Some(f.as_str()) == m.message_id.as_deref())
        })
        .enumerate()
        .map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                .build()
                .expect("entry")
        })
        .collect();
    let deleted = entries.len() as u32;
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("delete the successes");
    }
    Drained {
        invocations: 1,
        deleted,
        failed: failed.len() as u32,
    }
}

/// Polls `transform` and `post` until both queues are empty (nothing visible,
/// in flight or delayed) or `deadline` passes. Returns the totals.
pub async fn drain(stack: &AwsStack, deps: &Deps, deadline: Duration) -> Drained {
    let started = Instant::now();
    let mut total = Drained::default();
    loop {
        let mut progressed = false;
        for q in [QueueName::Transform, QueueName::Post] {
            let d = poll_once(stack, deps, q, Duration::from_secs(5)).await;
            total.invocations += d.invocations;
            total.deleted += d.deleted;
            total.failed += d.failed;
            progressed |= d.invocations > 0;
        }
        if !progressed {
            let mut pending = 0;
            for q in [QueueName::Transform, QueueName::Post] {
                pending += deps.queue.depth(q).await.expect("depth").total();
            }
            if pending == 0 {
                return total;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(
            started.elapsed() < deadline,
            "queues did not drain within {deadline:?}: {total:?}"
        );
    }
}
