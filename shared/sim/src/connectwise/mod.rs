//! A ConnectWise PSA simulator: a real HTTP server on loopback holding records,
//! serving the REST API (Basic + clientId auth, `conditions`, `orderBy`,
//! `page`/`pageSize` up to 1,000), accepting invoice payments, and sending signed
//! callbacks (`x-content-signature`, key served at the callback key URL) with
//! fault knobs: duplicate and out-of-order deliveries, 5xx and 429 bursts.
//! ConnectWise documents no hard rate limit; `max_per_second` makes one.

pub mod stage;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::conditions;
use crate::server::{self, Server};

/// Record kinds the simulator holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Company,
    Project,
    Time,
    Expense,
    Invoice,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Company,
        Kind::Project,
        Kind::Time,
        Kind::Expense,
        Kind::Invoice,
    ];

    /// The REST collection path.
    pub fn path(&self) -> &'static str {
        match self {
            Kind::Company => "company/companies",
            Kind::Project => "project/projects",
            Kind::Time => "time/entries",
            Kind::Expense => "expense/entries",
            Kind::Invoice => "finance/invoices",
        }
    }

    /// The callback `Type`.
    pub fn callback_type(&self) -> &'static str {
        match self {
            Kind::Company => "company",
            Kind::Project => "project",
            Kind::Time => "time",
            Kind::Expense => "expense",
            Kind::Invoice => "invoice",
        }
    }

    fn from_path(p: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.path() == p)
    }
}

/// Credentials and keys the simulator accepts.
#[derive(Debug, Clone)]
pub struct CwSimConfig {
    pub company_id: String,
    pub public_key: String,
    pub private_key: String,
    pub client_id: String,
    pub signing_key: String,
    /// Requests per second before answering 429; `None` = unlimited.
    pub max_per_second: Option<u32>,
}

impl Default for CwSimConfig {
    fn default() -> Self {
        CwSimConfig {
            company_id: "demofirm".into(),
            public_key: "pub-demo".into(),
            private_key: "priv-demo".into(),
            client_id: "00000000-0000-4000-8000-000000000001".into(),
            signing_key: "cw-signing-key-demo".into(),
            max_per_second: None,
        }
    }
}

/// Fault knobs. Counters are consumed as faults are injected.
#[derive(Debug, Clone, Default)]
pub struct CwFaults {
    /// Deliver every callback twice.
    pub duplicate_callbacks: bool,
    /// Hold each callback until the next one is sent, then send it (pairwise swap).
    pub reorder_callbacks: bool,
    /// Sign the next N callbacks with a wrong key.
    pub forge_next_callbacks: u32,
    /// Answer the next N API requests with 500.
    pub fail_next: u32,
    /// Answer the next N API requests with 429.
    pub throttle_next: u32,
    /// Answer the next N API requests with 200 and a body that is not JSON.
    pub garbage_next: u32,
    /// Send no callbacks at all (Ferry was not running, or the subscription lapsed).
    pub drop_callbacks: bool,
    /// Sign callbacks and keep them in an outbox instead of sending them: the
    /// test delivers them itself, in any order, more than once, late or never
    /// ([`CwSim::take_outbox`]).
    pub outbox: bool,
}

/// A signed callback as ConnectWise would send it.
#[derive(Debug, Clone)]
pub struct SignedCallback {
    pub body: Vec<u8>,
    /// The `x-content-signature` header.
    pub signature: String,
}

/// Counters for tests and the demo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CwStats {
    pub requests: u64,
    pub callbacks_sent: u64,
    pub callbacks_failed: u64,
    /// Requests for the callback signing key.
    pub key_fetches: u64,
}

struct Callback {
    url: String,
    kind: String,
}

#[derive(Default)]
struct Data {
    tables: BTreeMap<Kind, BTreeMap<i64, Value>>,
    payments: BTreeMap<i64, Vec<Value>>,
    next_id: i64,
    callbacks: Vec<Callback>,
}

/// Where the simulator reads the time it stamps on records.
pub type VendorClock = Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>;

struct Inner {
    cfg: CwSimConfig,
    clock: Mutex<Option<VendorClock>>,
    origin: Mutex<String>,
    data: Mutex<Data>,
    faults: Mutex<CwFaults>,
    held: Mutex<Option<(String, Vec<u8>, String)>>,
    outbox: Mutex<Vec<SignedCallback>>,
    recent: Mutex<VecDeque<Instant>>,
    requests: AtomicU64,
    callbacks_sent: AtomicU64,
    callbacks_failed: AtomicU64,
    key_fetches: AtomicU64,
    http: reqwest::Client,
}

/// A running simulator.
#[derive(Clone)]
pub struct CwSim {
    inner: Arc<Inner>,
    server: Arc<Server>,
}

/// The API root under the server origin.
pub const API_ROOT: &str = "/v4_6_release/apis/3.0";

impl CwSim {
    /// Starts on an ephemeral loopback port.
    pub async fn start(cfg: CwSimConfig) -> std::io::Result<CwSim> {
        Self::start_on(cfg, "127.0.0.1:0".parse().expect("valid address")).await
    }

    pub async fn start_on(cfg: CwSimConfig, addr: SocketAddr) -> std::io::Result<CwSim> {
        let inner = Arc::new(Inner {
            cfg,
            origin: Mutex::new(String::new()),
            data: Mutex::new(Data {
                next_id: 1000,
                ..Data::default()
            }),
            faults: Mutex::new(CwFaults::default()),
            held: Mutex::new(None),
            outbox: Mutex::new(Vec::new()),
            clock: Mutex::new(None),
            recent: Mutex::new(VecDeque::new()),
            requests: AtomicU64::new(0),
            callbacks_sent: AtomicU64::new(0),
            callbacks_failed: AtomicU64::new(0),
            key_fetches: AtomicU64::new(0),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("static client"),
        });
        let app = Router::new()
            .route("/v4_6_release/apis/3.0/{*rest}", any(api))
            .route(
                "/v4_6_release/system/callbackkey/index.rails",
                get(signing_key),
            )
            .with_state(inner.clone());
        let server = server::serve(app, addr).await?;
        *inner.origin.lock().expect("not poisoned") = server.origin();
        Ok(CwSim {
            inner,
            server: Arc::new(server),
        })
    }

    /// `http://127.0.0.1:port`.
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// The REST API root.
    pub fn base_url(&self) -> String {
        format!("{}{API_ROOT}", self.origin())
    }

    pub fn config(&self) -> &CwSimConfig {
        &self.inner.cfg
    }

    pub fn set_faults(&self, f: CwFaults) {
        *self.inner.faults.lock().expect("not poisoned") = f;
    }

    pub fn stats(&self) -> CwStats {
        CwStats {
            requests: self.inner.requests.load(Ordering::Relaxed),
            callbacks_sent: self.inner.callbacks_sent.load(Ordering::Relaxed),
            callbacks_failed: self.inner.callbacks_failed.load(Ordering::Relaxed),
            key_fetches: self.inner.key_fetches.load(Ordering::Relaxed),
        }
    }

    /// Loads records without sending callbacks (the state before Ferry is connected).
    /// Records without an id get one; every record gets `_info.lastUpdated = now`.
    pub fn seed(&self, kind: Kind, records: Vec<Value>) {
        let mut d = self.inner.data.lock().expect("not poisoned");
        let stamp = now_stamp(&self.inner);
        for mut r in records {
            let id = match r.get("id").and_then(Value::as_i64) {
                Some(id) => id,
                None => {
                    d.next_id += 1;
                    d.next_id
                }
            };
            d.next_id = d.next_id.max(id);
            r["id"] = json!(id);
            r["_info"] = json!({ "lastUpdated": stamp, "updatedBy": "seed" });
            d.tables.entry(kind).or_default().insert(id, r);
        }
    }

    pub fn get(&self, kind: Kind, id: i64) -> Option<Value> {
        self.inner
            .data
            .lock()
            .expect("not poisoned")
            .tables
            .get(&kind)?
            .get(&id)
            .cloned()
    }

    pub fn all(&self, kind: Kind) -> Vec<Value> {
        self.inner
            .data
            .lock()
            .expect("not poisoned")
            .tables
            .get(&kind)
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Creates a record (as a user would in ConnectWise) and sends `added` callbacks.
    /// A record carrying an `id` keeps it.
    pub async fn create(&self, kind: Kind, mut record: Value) -> Value {
        let stored = {
            let mut d = self.inner.data.lock().expect("not poisoned");
            let id = match record.get("id").and_then(Value::as_i64) {
                Some(id) => {
                    d.next_id = d.next_id.max(id);
                    id
                }
                None => {
                    d.next_id += 1;
                    d.next_id
                }
            };
            record["id"] = json!(id);
            record["_info"] = json!({ "lastUpdated": now_stamp(&self.inner), "updatedBy": "user" });
            d.tables.entry(kind).or_default().insert(id, record.clone());
            record
        };
        self.notify(kind, "added", &stored).await;
        stored
    }

    /// Changes a record and sends `updated` callbacks. Returns the new record.
    pub async fn update(
        &self,
        kind: Kind,
        id: i64,
        change: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let stored = {
            let mut d = self.inner.data.lock().expect("not poisoned");
            let r = d.tables.get_mut(&kind)?.get_mut(&id)?;
            change(r);
            r["_info"] = json!({ "lastUpdated": now_stamp(&self.inner), "updatedBy": "user" });
            r.clone()
        };
        self.notify(kind, "updated", &stored).await;
        Some(stored)
    }

    /// Deletes a record and sends `deleted` callbacks.
    pub async fn delete(&self, kind: Kind, id: i64) -> bool {
        let removed = self
            .inner
            .data
            .lock()
            .expect("not poisoned")
            .tables
            .get_mut(&kind)
            .and_then(|t| t.remove(&id));
        match removed {
            Some(r) => {
                let stub = json!({ "id": id, "_info": r["_info"].clone() });
                self.notify(kind, "deleted", &stub).await;
                true
            }
            None => false,
        }
    }

    /// Payments recorded on an invoice.
    pub fn payments(&self, invoice_id: i64) -> Vec<Value> {
        self.inner
            .data
            .lock()
            .expect("not poisoned")
            .payments
            .get(&invoice_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The key URL callbacks carry.
    pub fn key_url(&self) -> String {
        format!(
            "{}/v4_6_release/system/callbackkey/index.rails?id=1",
            self.origin()
        )
    }

    /// Stamps records with this clock's time instead of the wall clock's (a
    /// simulation's manual clock: record versions then follow the simulation).
    pub fn set_clock(&self, clock: VendorClock) {
        *self.inner.clock.lock().expect("not poisoned") = Some(clock);
    }

    /// Takes the callbacks kept while [`CwFaults::outbox`] was on, oldest first.
    pub fn take_outbox(&self) -> Vec<SignedCallback> {
        std::mem::take(&mut *self.inner.outbox.lock().expect("not poisoned"))
    }

    /// Sends the held (out-of-order) callback, if any.
    pub async fn flush_held(&self) {
        let held = self.inner.held.lock().expect("not poisoned").take();
        if let Some((url, body, sig)) = held {
            deliver(&self.inner, &url, body, sig).await;
        }
    }

    async fn notify(&self, kind: Kind, action: &str, record: &Value) {
        notify(&self.inner, kind, action, record).await
    }
}

/// Sends callbacks for a change to every matching subscription, with the fault knobs applied.
async fn notify(inner: &Arc<Inner>, kind: Kind, action: &str, record: &Value) {
    if inner.faults.lock().expect("not poisoned").drop_callbacks {
        return;
    }
    let targets: Vec<String> = inner
        .data
        .lock()
        .expect("not poisoned")
        .callbacks
        .iter()
        .filter(|c| c.kind.eq_ignore_ascii_case(kind.callback_type()))
        .map(|c| c.url.clone())
        .collect();
    for url in targets {
        let payload = json!({
            "MessageId": crate::uuid(),
            "FromUrl": inner.origin.lock().expect("not poisoned").clone(),
            "CompanyId": inner.cfg.company_id,
            "MemberId": "admin",
            "Action": action,
            "Type": kind.callback_type(),
            "ID": record["id"],
            "ProductInstanceId": "sim-instance",
            "PartnerId": "ferry",
            "Entity": if action == "deleted" { Value::Null } else { Value::String(record.to_string()) },
            "Metadata": { "key_url": format!("{}/v4_6_release/system/callbackkey/index.rails?id=1", inner.origin.lock().expect("not poisoned")) },
            "CallbackObjectRecId": record["id"],
        });
        let body = payload.to_string().into_bytes();
        let (dup, reorder, forge, outbox) = {
            let mut f = inner.faults.lock().expect("not poisoned");
            let forge = f.forge_next_callbacks > 0;
            if forge {
                f.forge_next_callbacks -= 1;
            }
            (f.duplicate_callbacks, f.reorder_callbacks, forge, f.outbox)
        };
        let key = if forge {
            "forged-key"
        } else {
            inner.cfg.signing_key.as_str()
        };
        let sig = sign(key, &body);
        if outbox {
            inner
                .outbox
                .lock()
                .expect("not poisoned")
                .push(SignedCallback {
                    body,
                    signature: sig,
                });
            continue;
        }
        if reorder {
            let older = inner.held.lock().expect("not poisoned").take();
            match older {
                None => *inner.held.lock().expect("not poisoned") = Some((url, body, sig)),
                Some((u, b, s)) => {
                    // The newer callback arrives first, the older one after it.
                    deliver(inner, &url, body, sig).await;
                    deliver(inner, &u, b, s).await;
                }
            }
            continue;
        }
        deliver(inner, &url, body.clone(), sig.clone()).await;
        if dup {
            deliver(inner, &url, body, sig).await;
        }
    }
}

/// The `x-content-signature` for a body under a signing key.
pub fn sign(signing_key: &str, body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let key = Sha256::digest(signing_key.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn deliver(inner: &Inner, url: &str, body: Vec<u8>, sig: String) {
    for attempt in 0..3u32 {
        let r = inner
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-content-signature", &sig)
            .body(body.clone())
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() || resp.status().is_client_error() => {
                inner.callbacks_sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            _ => tokio::time::sleep(Duration::from_millis(200 * (attempt as u64 + 1))).await,
        }
    }
    inner.callbacks_failed.fetch_add(1, Ordering::Relaxed);
}

fn now_stamp(inner: &Inner) -> String {
    let custom = inner.clock.lock().expect("not poisoned").clone();
    custom
        .map(|c| c())
        .unwrap_or_else(crate::vendor_now)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": code, "message": message, "errors": [] })),
    )
        .into_response()
}

fn authorised(inner: &Inner, headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}+{}:{}",
            inner.cfg.company_id, inner.cfg.public_key, inner.cfg.private_key
        ))
    );
    let auth_ok =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    let client_ok =
        headers.get("clientid").and_then(|v| v.to_str().ok()) == Some(inner.cfg.client_id.as_str());
    auth_ok && client_ok
}

async fn signing_key(State(inner): State<Arc<Inner>>) -> Response {
    inner.key_fetches.fetch_add(1, Ordering::Relaxed);
    axum::Json(json!({ "signing_key": inner.cfg.signing_key })).into_response()
}

async fn api(
    State(inner): State<Arc<Inner>>,
    method: Method,
    Path(rest): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.requests.fetch_add(1, Ordering::Relaxed);
    {
        let mut f = inner.faults.lock().expect("not poisoned");
        if f.fail_next > 0 {
            f.fail_next -= 1;
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "simulated failure",
            );
        }
        if f.throttle_next > 0 {
            f.throttle_next -= 1;
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
        }
        if f.garbage_next > 0 {
            f.garbage_next -= 1;
            return (StatusCode::OK, "<html>maintenance</html>").into_response();
        }
    }
    if let Some(max) = inner.cfg.max_per_second {
        let mut recent = inner.recent.lock().expect("not poisoned");
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
        {
            recent.pop_front();
        }
        if recent.len() >= max as usize {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
        }
        recent.push_back(now);
    }
    if !authorised(&inner, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "invalid credentials or clientId",
        );
    }
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (Method::GET, [a, b]) => match Kind::from_path(&format!("{a}/{b}")) {
            Some(kind) => list(&inner, kind, &q),
            None => error(StatusCode::NOT_FOUND, "NotFound", "unknown resource"),
        },
        (Method::GET, [a, b, id]) => {
            match (Kind::from_path(&format!("{a}/{b}")), id.parse::<i64>()) {
                (Some(kind), Ok(id)) => match inner
                    .data
                    .lock()
                    .expect("not poisoned")
                    .tables
                    .get(&kind)
                    .and_then(|t| t.get(&id))
                {
                    Some(r) => axum::Json(r.clone()).into_response(),
                    None => error(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        &format!("{} {id} not found", kind.path()),
                    ),
                },
                _ => error(StatusCode::NOT_FOUND, "NotFound", "unknown resource"),
            }
        }
        (Method::POST, ["finance", "invoices", id, "payments"]) => match id.parse::<i64>() {
            Ok(id) => {
                let resp = add_payment(&inner, id, &body);
                if resp.status().is_success() {
                    // A payment changes the invoice: ConnectWise reports it like any update.
                    let invoice = inner
                        .data
                        .lock()
                        .expect("not poisoned")
                        .tables
                        .get(&Kind::Invoice)
                        .and_then(|t| t.get(&id))
                        .cloned();
                    if let Some(invoice) = invoice {
                        let inner = inner.clone();
                        tokio::spawn(async move {
                            notify(&inner, Kind::Invoice, "updated", &invoice).await
                        });
                    }
                }
                resp
            }
            Err(_) => error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                "invoice id must be a number",
            ),
        },
        (Method::GET, ["finance", "invoices", id, "payments"]) => {
            let id: i64 = id.parse().unwrap_or_default();
            axum::Json(Value::Array(
                inner
                    .data
                    .lock()
                    .expect("not poisoned")
                    .payments
                    .get(&id)
                    .cloned()
                    .unwrap_or_default(),
            ))
            .into_response()
        }
        (Method::POST, ["system", "callbacks"]) => {
            let v: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidObject", &e.to_string()),
            };
            let (Some(url), Some(kind)) = (v["url"].as_str(), v["type"].as_str()) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidObject",
                    "url and type are required",
                );
            };
            let mut d = inner.data.lock().expect("not poisoned");
            d.callbacks.push(Callback {
                url: url.to_string(),
                kind: kind.to_string(),
            });
            let mut out = v.clone();
            out["id"] = json!(d.callbacks.len());
            (StatusCode::CREATED, axum::Json(out)).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "NotFound", "unknown resource"),
    }
}

fn list(inner: &Inner, kind: Kind, q: &BTreeMap<String, String>) -> Response {
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let page_size: usize = q
        .get("pageSize")
        .and_then(|p| p.parse().ok())
        .unwrap_or(25)
        .clamp(1, 1000);
    let cond = match q.get("conditions").map(|c| conditions::parse(c)) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidConditions",
                &format!("conditions: {e}"),
            );
        }
        None => None,
    };
    // Filter and sort references; clone only the page that is returned.
    let data = inner.data.lock().expect("not poisoned");
    let mut rows: Vec<&Value> = data
        .tables
        .get(&kind)
        .map(|t| {
            t.values()
                .filter(|r| cond.as_ref().is_none_or(|c| conditions::eval(c, r)))
                .collect()
        })
        .unwrap_or_default();
    if let Err(e) = conditions::sort(
        &mut rows,
        q.get("orderBy").map(String::as_str).unwrap_or("id asc"),
    ) {
        return error(StatusCode::BAD_REQUEST, "InvalidOrderBy", &e);
    }
    let page_rows: Vec<Value> = rows
        .into_iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .cloned()
        .collect();
    drop(data);
    axum::Json(Value::Array(page_rows)).into_response()
}

fn add_payment(inner: &Inner, invoice_id: i64, body: &[u8]) -> Response {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidObject", &e.to_string()),
    };
    let amount = match v
        .get("amount")
        .and_then(|a| a.as_number())
        .and_then(|n| n.to_string().parse::<rust_decimal::Decimal>().ok())
    {
        Some(a) if a > rust_decimal::Decimal::ZERO => a,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                "amount must be a positive number",
            );
        }
    };
    let mut d = inner.data.lock().expect("not poisoned");
    let Some(inv) = d
        .tables
        .get_mut(&Kind::Invoice)
        .and_then(|t| t.get_mut(&invoice_id))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("invoice {invoice_id} not found"),
        );
    };
    let dec = |v: &Value| {
        v.as_number()
            .and_then(|n| n.to_string().parse::<rust_decimal::Decimal>().ok())
            .unwrap_or_default()
    };
    let total = dec(&inv["total"]).abs();
    let paid = dec(&inv["payments"]) + amount;
    if paid > total {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidObject",
            "payment exceeds the invoice balance",
        );
    }
    inv["payments"] = crate::num(paid);
    inv["balance"] = crate::num(total - paid);
    inv["_info"] = json!({ "lastUpdated": now_stamp(inner), "updatedBy": "payments" });
    let mut pay = v.clone();
    let pid = d.next_id + 1;
    d.next_id = pid;
    pay["id"] = json!(pid);
    pay["invoice"] = json!({ "id": invoice_id });
    d.payments.entry(invoice_id).or_default().push(pay.clone());
    (StatusCode::CREATED, axum::Json(pay)).into_response()
}
