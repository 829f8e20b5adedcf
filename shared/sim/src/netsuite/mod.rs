//! A NetSuite simulator: a real HTTP server on loopback holding one account's
//! customers, invoices, credit memos and customer payments, served as NetSuite's
//! REST web services describe them: OAuth 2.0 client credentials with a signed
//! JWT assertion (ES256, the certificate id as `kid`, verified against the
//! public key the simulator generated), the Record API (`GET`/`DELETE` by
//! internal id or `eid:<external id>`), asynchronous batch upserts of up to 100
//! records by external id (`Prefer: respond-async`, the collection content
//! type, `X-NetSuite-Idempotency-Key`: a key seen before is refused 400
//! `IDEMPOTENCY_ERROR` with `Location` at the first job), jobs and their tasks,
//! SuiteQL (`suiteql.rs`: the query shapes Ferry sends, 1,000 rows a page), the
//! account's concurrency limit (429), closed accounting periods, and RFC
//! 7807-style errors with `o:errorDetails`. NetSuite sends no webhooks.
//!
//! Facts from `../shared/docs/VENDORS.md` §1 ([N1]-[N7]). The simulator's own
//! (‡, not documented where Ferry could read): the job and task resource
//! shapes, error codes other than `IDEMPOTENCY_ERROR`, and transaction lines
//! of an invoice being credits (below zero) in `transactionline`.

pub mod stage;
mod suiteql;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDate, Utc};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::connectwise::VendorClock;
use crate::num;
use crate::server::{self, Server};

/// The records one batch may carry.
pub const MAX_BATCH: usize = 100;

/// The account as it is set up.
#[derive(Debug, Clone)]
pub struct NetSuiteSimConfig {
    pub account_id: String,
    pub client_id: String,
    pub certificate_id: String,
    pub subsidiary: String,
    /// Currency internal ids by ISO code.
    pub currencies: BTreeMap<String, String>,
    /// Items by external id.
    pub items: BTreeSet<String>,
    /// Sales tax codes by external id, with their rate in percent.
    pub tax_codes: BTreeMap<String, Decimal>,
    /// Department, class and location external ids, by field name.
    pub segments: BTreeMap<String, BTreeSet<String>>,
    /// Accounting periods are closed through this date.
    pub closed_through: Option<NaiveDate>,
    /// Requests in flight at once before 429.
    pub concurrency: u32,
    /// Polls a job answers `completed: false` before it finishes.
    pub job_polls: u32,
}

impl Default for NetSuiteSimConfig {
    fn default() -> Self {
        NetSuiteSimConfig {
            account_id: "1234567_SB1".into(),
            client_id: "ferry-integration-client-id".into(),
            certificate_id: "ferry-cert-1".into(),
            subsidiary: "1".into(),
            currencies: [("USD", "1"), ("GBP", "2"), ("CAD", "3"), ("EUR", "4")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            items: BTreeSet::new(),
            tax_codes: BTreeMap::new(),
            segments: BTreeMap::new(),
            closed_through: None,
            concurrency: 5,
            job_polls: 1,
        }
    }
}

/// Fault knobs; counters are consumed as faults fire.
#[derive(Debug, Clone, Default)]
pub struct NetSuiteFaults {
    pub fail_next: u32,
    pub throttle_next: u32,
    pub garbage_next: u32,
    /// Jobs started from now on never finish (the client must give up and find
    /// the documents later by external id; the records are written).
    pub jobs_hang: bool,
}

/// One request and its answer, for tests.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub request: Option<Value>,
    pub response: Value,
}

#[derive(Debug, Clone)]
struct Job {
    /// Per item: `None` succeeded (with the record's path), `Some(error)` failed.
    tasks: Vec<Result<String, Value>>,
    polls_left: u32,
    hangs: bool,
}

#[derive(Default)]
struct Data {
    /// Customers by internal id.
    customers: BTreeMap<u64, Value>,
    /// Invoices, credit memos and payments by internal id.
    transactions: BTreeMap<u64, Value>,
    /// Payment applications: (payment, invoice, amount).
    links: Vec<(u64, u64, Decimal)>,
    jobs: BTreeMap<u64, Job>,
    keys: BTreeMap<String, u64>,
    tokens: BTreeMap<String, DateTime<Utc>>,
    next_id: u64,
}

struct Inner {
    cfg: NetSuiteSimConfig,
    public_key: Vec<u8>,
    clock: Mutex<Option<VendorClock>>,
    origin: Mutex<String>,
    data: Mutex<Data>,
    faults: Mutex<NetSuiteFaults>,
    exchanges: Mutex<Vec<Exchange>>,
    inflight: AtomicU32,
    requests: AtomicU64,
}

/// A running simulator.
#[derive(Clone)]
pub struct NetSuiteSim {
    inner: Arc<Inner>,
    server: Arc<Server>,
    private_key_pem: String,
}

fn pem(der: &[u8]) -> String {
    let b = STANDARD.encode(der);
    let lines: Vec<&str> = b
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

impl NetSuiteSim {
    pub async fn start(cfg: NetSuiteSimConfig) -> std::io::Result<NetSuiteSim> {
        Self::start_on(cfg, "127.0.0.1:0".parse().expect("valid address")).await
    }

    /// Starts the account, with a fresh key pair for the integration's certificate.
    pub async fn start_on(
        cfg: NetSuiteSimConfig,
        addr: SocketAddr,
    ) -> std::io::Result<NetSuiteSim> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| std::io::Error::other(format!("key generation: {e}")))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|e| std::io::Error::other(format!("key: {e}")))?;
        let inner = Arc::new(Inner {
            cfg,
            public_key: pair.public_key().as_ref().to_vec(),
            clock: Mutex::new(None),
            origin: Mutex::new(String::new()),
            data: Mutex::new(Data {
                next_id: 1000,
                ..Data::default()
            }),
            faults: Mutex::new(NetSuiteFaults::default()),
            exchanges: Mutex::new(Vec::new()),
            inflight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/services/rest/auth/oauth2/v1/token", post(token))
            .route("/services/rest/{*rest}", any(api))
            .with_state(inner.clone());
        let server = server::serve(app, addr).await?;
        *inner.origin.lock().expect("not poisoned") = server.origin();
        Ok(NetSuiteSim {
            inner,
            server: Arc::new(server),
            private_key_pem: pem(pkcs8.as_ref()),
        })
    }

    /// The REST root (`base_url` in the tenant's settings).
    pub fn base_url(&self) -> String {
        self.server.origin()
    }

    pub fn config(&self) -> &NetSuiteSimConfig {
        &self.inner.cfg
    }

    /// The integration's private key (the tenant's `netsuite.private_key`).
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }

    pub fn set_faults(&self, f: NetSuiteFaults) {
        *self.inner.faults.lock().expect("not poisoned") = f;
    }

    pub fn set_clock(&self, clock: VendorClock) {
        *self.inner.clock.lock().expect("not poisoned") = Some(clock);
    }

    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.inner.exchanges.lock().expect("not poisoned").clone()
    }

    pub fn customers(&self) -> Vec<Value> {
        let d = self.inner.data.lock().expect("not poisoned");
        d.customers.values().cloned().collect()
    }

    /// Invoices (`invoice`) or credit memos (`creditMemo`).
    pub fn transactions(&self, record_type: &str) -> Vec<Value> {
        let d = self.inner.data.lock().expect("not poisoned");
        d.transactions
            .values()
            .filter(|t| t["recordType"] == record_type)
            .cloned()
            .collect()
    }

    /// Finance approves a pending invoice: `approvalStatus` 2.
    pub fn approve(&self, external_id: &str) -> bool {
        let stamp = now(&self.inner);
        let mut d = self.inner.data.lock().expect("not poisoned");
        let Some(t) = d.transactions.values_mut().find(|t| {
            t["externalId"] == external_id
                && t["recordType"] == "invoice"
                && t["approvalStatus"]["id"] == "1"
        }) else {
            return false;
        };
        t["approvalStatus"] = json!({ "id": "2" });
        t["lastModifiedDate"] = json!(stamp);
        true
    }

    /// A customer pays `amount` of an invoice on `date` (a customer payment applied to it).
    pub fn pay(&self, invoice_id: u64, amount: Decimal, date: NaiveDate) -> Result<u64, String> {
        let stamp = now(&self.inner);
        let mut d = self.inner.data.lock().expect("not poisoned");
        let inv = d
            .transactions
            .get(&invoice_id)
            .filter(|t| t["recordType"] == "invoice")
            .cloned()
            .ok_or_else(|| format!("no invoice {invoice_id}"))?;
        let unpaid = dec(&inv["amountRemaining"]);
        if amount <= Decimal::ZERO || amount > unpaid {
            return Err(format!("{amount} is not between 0 and the {unpaid} due"));
        }
        d.next_id += 1;
        let id = d.next_id;
        d.transactions.insert(
            id,
            json!({ "id": id.to_string(), "recordType": "customerPayment", "tranId": format!("PYMT{id}"),
                    "tranDate": date.to_string(), "currency": inv["currency"], "voided": "F",
                    "lastModifiedDate": stamp }),
        );
        d.links.push((id, invoice_id, amount));
        let t = d.transactions.get_mut(&invoice_id).expect("present");
        let left = unpaid - amount;
        t["amountRemaining"] = num(left);
        t["amountPaid"] = num(dec(&t["total"]) - left);
        if left.is_zero() {
            t["status"] = json!("B");
        }
        t["lastModifiedDate"] = json!(stamp);
        Ok(id)
    }
}

fn now_at(inner: &Inner) -> DateTime<Utc> {
    let custom = inner.clock.lock().expect("not poisoned").clone();
    custom.map(|c| c()).unwrap_or_else(crate::vendor_now)
}

/// NetSuite's modification stamp as Ferry reads it (`YYYY-MM-DD HH:MM:SS`, UTC).
fn now(inner: &Inner) -> String {
    now_at(inner).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn dec(v: &Value) -> Decimal {
    match v {
        Value::Number(n) => n.to_string().parse().unwrap_or_default(),
        Value::String(s) => s.parse().unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

/// NetSuite's error body.
fn problem(status: StatusCode, code: &str, detail: &str) -> Value {
    json!({
        "type": format!("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.{}", status.as_u16()),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "o:errorDetails": [{ "detail": detail, "o:errorCode": code }],
    })
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `POST /services/rest/auth/oauth2/v1/token`: the client-credentials grant
/// with a JWT assertion.
async fn token(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let refuse = |error: &str, why: &str| {
        answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": error, "error_description": why }),
        )
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return refuse(
            "unsupported_grant_type",
            "client_credentials with a JWT assertion",
        );
    }
    let Some(jwt) = form.get("client_assertion") else {
        return refuse("invalid_request", "no client_assertion");
    };
    let origin = inner.origin.lock().expect("not poisoned").clone();
    match verify(
        &inner,
        jwt,
        &format!("{origin}/services/rest/auth/oauth2/v1/token"),
    ) {
        Ok(()) => {}
        Err(why) => return refuse("invalid_client", &why),
    }
    let token = format!("ns-{}", crate::uuid());
    let until = now_at(&inner) + chrono::Duration::hours(1);
    inner
        .data
        .lock()
        .expect("not poisoned")
        .tokens
        .insert(token.clone(), until);
    answer(
        StatusCode::OK,
        json!({ "access_token": token, "token_type": "bearer", "expires_in": 3600 }),
    )
}

/// Checks a JWT assertion: ES256 signed by the certificate's key, issued by
/// the integration, for this token endpoint, not expired, at most an hour long.
fn verify(inner: &Inner, jwt: &str, audience: &str) -> Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err("the assertion is not a compact JWS".into());
    };
    let decode = |p: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|e| format!("base64url: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("JSON: {e}"))
    };
    let header = decode(h)?;
    let claims = decode(c)?;
    if header["alg"] != "ES256" {
        return Err(format!(
            "alg {} is not one this integration accepts",
            header["alg"]
        ));
    }
    if header["kid"] != inner.cfg.certificate_id.as_str() {
        return Err("unknown certificate id (kid)".into());
    }
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| format!("signature: {e}"))?;
    ring::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &inner.public_key)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "the signature does not verify with the certificate's key".to_string())?;
    if claims["iss"] != inner.cfg.client_id.as_str() {
        return Err("iss is not this integration's client id".into());
    }
    if claims["aud"] != audience {
        return Err(format!("aud must be {audience}"));
    }
    let now = now_at(inner).timestamp();
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    match (iat, exp) {
        (Some(iat), Some(exp)) if iat <= now + 60 && exp > now && exp - iat <= 3600 => Ok(()),
        _ => Err("iat/exp missing, expired, or more than an hour apart".into()),
    }
}

struct Flight<'a>(&'a AtomicU32);

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn admit(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    {
        let mut f = inner.faults.lock().expect("not poisoned");
        if f.fail_next > 0 {
            f.fail_next -= 1;
            return Some(answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNEXPECTED_ERROR",
                    "simulated failure",
                ),
            ));
        }
        if f.throttle_next > 0 {
            f.throttle_next -= 1;
            return Some(throttled());
        }
        if f.garbage_next > 0 {
            f.garbage_next -= 1;
            return Some((StatusCode::OK, "<html>maintenance</html>").into_response());
        }
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let valid = {
        let d = inner.data.lock().expect("not poisoned");
        d.tokens
            .get(bearer)
            .is_some_and(|until| *until > now_at(inner))
    };
    if !valid {
        return Some(answer(
            StatusCode::UNAUTHORIZED,
            problem(
                StatusCode::UNAUTHORIZED,
                "INVALID_LOGIN",
                "Invalid login attempt. For more details, see the Login Audit Trail.",
            ),
        ));
    }
    None
}

fn throttled() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", "1")],
        axum::Json(problem(
            StatusCode::TOO_MANY_REQUESTS,
            "CONCURRENCY_LIMIT_EXCEEDED",
            "Request limit exceeded: the account's concurrency limit is reached",
        )),
    )
        .into_response()
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
    if let Some(refused) = admit(&inner, &headers) {
        return refused;
    }
    let flying = inner.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    let _flight = Flight(&inner.inflight);
    if flying > inner.cfg.concurrency {
        return throttled();
    }
    let request = serde_json::from_slice::<Value>(&body).ok();
    let path = rest.trim_matches('/').to_string();
    let (status, response, location) =
        route(&inner, &method, &path, &q, &headers, request.as_ref());
    inner
        .exchanges
        .lock()
        .expect("not poisoned")
        .push(Exchange {
            method: method.to_string(),
            path: path.clone(),
            status: status.as_u16(),
            request,
            response: response.clone(),
        });
    let mut resp = if response.is_null() {
        status.into_response()
    } else {
        answer(status, response)
    };
    if let Some(l) = location
        && let Ok(v) = l.parse()
    {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    resp
}

type Routed = (StatusCode, Value, Option<String>);

fn not_found(what: &str) -> Routed {
    (
        StatusCode::NOT_FOUND,
        problem(
            StatusCode::NOT_FOUND,
            "NONEXISTENT_ID",
            &format!("The record {what} was not found."),
        ),
        None,
    )
}

fn route(
    inner: &Inner,
    method: &Method,
    path: &str,
    q: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: Option<&Value>,
) -> Routed {
    let parts: Vec<&str> = path.split('/').collect();
    let origin = inner.origin.lock().expect("not poisoned").clone();
    match (method, parts.as_slice()) {
        (&Method::POST, ["query", "v1", "suiteql"]) => {
            let text = body.and_then(|b| b["q"].as_str()).unwrap_or_default();
            let d = inner.data.lock().expect("not poisoned");
            let (status, v) = suiteql::answer(&inner.cfg, &d, text, q);
            (status, v, None)
        }
        (&Method::GET, ["record", "v1", ty, id]) => match find(inner, ty, id) {
            Some(r) => (StatusCode::OK, r, None),
            None => not_found(id),
        },
        (&Method::DELETE, ["record", "v1", ty, id]) => delete(inner, ty, id),
        (&Method::PUT, ["record", "v1", ty]) => submit(inner, ty, headers, body, &origin),
        (&Method::GET, ["async", "v1", "job", id]) => job(inner, id),
        (&Method::GET, ["async", "v1", "job", id, "task"]) => tasks(inner, id),
        (&Method::GET, ["async", "v1", "job", id, "task", n, "result"]) => {
            task_result(inner, id, n)
        }
        _ => not_found(path),
    }
}

/// A record by internal id or `eid:<external id>`.
fn find(inner: &Inner, ty: &str, id: &str) -> Option<Value> {
    let d = inner.data.lock().expect("not poisoned");
    let table = match *ty {
        _ if ty == "customer" => &d.customers,
        _ => &d.transactions,
    };
    let hit = |r: &&Value| ty == "customer" || r["recordType"] == ty;
    match id.strip_prefix("eid:") {
        Some(ext) => table
            .values()
            .filter(hit)
            .find(|r| r["externalId"] == ext)
            .cloned(),
        None => id
            .parse::<u64>()
            .ok()
            .and_then(|n| table.get(&n))
            .filter(hit)
            .cloned(),
    }
}

fn delete(inner: &Inner, ty: &str, id: &str) -> Routed {
    let Some(found) = find(inner, ty, id) else {
        return not_found(id);
    };
    let n: u64 = found["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    let mut d = inner.data.lock().expect("not poisoned");
    if d.links.iter().any(|(_, inv, _)| *inv == n) {
        return (
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "USER_ERROR",
                "This record cannot be deleted because it has dependent records (payments).",
            ),
            None,
        );
    }
    if ty == "customer" {
        d.customers.remove(&n);
    } else {
        d.transactions.remove(&n);
    }
    (StatusCode::NO_CONTENT, Value::Null, None)
}

/// `PUT /record/v1/{type}` as an asynchronous batch upsert.
fn submit(
    inner: &Inner,
    ty: &str,
    headers: &HeaderMap,
    body: Option<&Value>,
    origin: &str,
) -> Routed {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let bad = |detail: &str| {
        (
            StatusCode::BAD_REQUEST,
            problem(StatusCode::BAD_REQUEST, "INVALID_REQUEST", detail),
            None,
        )
    };
    if !matches!(ty, "customer" | "invoice" | "creditMemo") {
        return bad(&format!("record type {ty} is not supported here"));
    }
    if header("prefer") != "respond-async"
        || header("content-type") != "application/vnd.oracle.resource+json; type=collection"
    {
        return bad("a batch needs Prefer: respond-async and the collection content type");
    }
    let Some(items) = body.and_then(|b| b["items"].as_array()) else {
        return bad("the body must be {\"items\": [...]}");
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return bad(&format!("a batch holds 1 to {MAX_BATCH} records"));
    }
    let key = header("x-netsuite-idempotency-key").to_string();
    let job_url = |id: u64| format!("{origin}/services/rest/async/v1/job/{id}");
    let stamp = now(inner);
    let hangs = inner.faults.lock().expect("not poisoned").jobs_hang;
    let mut d = inner.data.lock().expect("not poisoned");
    if !key.is_empty()
        && let Some(first) = d.keys.get(&key)
    {
        return (
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "IDEMPOTENCY_ERROR",
                "A request with this idempotency key has already been received.",
            ),
            Some(job_url(*first)),
        );
    }
    let tasks: Vec<Result<String, Value>> = items
        .iter()
        .map(|item| upsert(&inner.cfg, &mut d, ty, item, &stamp))
        .collect();
    d.next_id += 1;
    let id = d.next_id;
    d.jobs.insert(
        id,
        Job {
            tasks,
            polls_left: inner.cfg.job_polls,
            hangs,
        },
    );
    if !key.is_empty() {
        d.keys.insert(key, id);
    }
    (StatusCode::ACCEPTED, Value::Null, Some(job_url(id)))
}

fn user_error(detail: String) -> Value {
    problem(StatusCode::BAD_REQUEST, "USER_ERROR", &detail)
}

/// One record of a batch, created or updated by its external id.
fn upsert(
    cfg: &NetSuiteSimConfig,
    d: &mut Data,
    ty: &str,
    item: &Value,
    stamp: &str,
) -> Result<String, Value> {
    let Some(ext) = item["externalId"].as_str().filter(|e| !e.is_empty()) else {
        return Err(user_error("externalId is required for an upsert".into()));
    };
    if item["subsidiary"]["id"] != cfg.subsidiary.as_str() {
        return Err(user_error(format!(
            "Invalid subsidiary reference key {}.",
            item["subsidiary"]
        )));
    }
    if let Some(cur) = item.get("currency")
        && !cfg.currencies.values().any(|v| cur["id"] == v.as_str())
    {
        return Err(user_error(format!("Invalid currency reference key {cur}.")));
    }
    let existing = if ty == "customer" {
        d.customers
            .iter()
            .find(|(_, r)| r["externalId"] == ext)
            .map(|(k, _)| *k)
    } else {
        d.transactions
            .iter()
            .find(|(_, r)| r["externalId"] == ext && r["recordType"] == ty)
            .map(|(k, _)| *k)
    };
    let id = match existing {
        Some(id) => id,
        None => {
            d.next_id += 1;
            d.next_id
        }
    };
    let record = if ty == "customer" {
        let name = item["companyName"].as_str().unwrap_or_default();
        if name.trim().is_empty() {
            return Err(user_error("Please enter a value for Company Name.".into()));
        }
        if d.customers
            .iter()
            .any(|(k, c)| *k != id && c["companyName"] == name)
        {
            return Err(user_error(format!(
                "A customer record with this ID already exists: {name}."
            )));
        }
        if let Some(t) = item["taxItem"]["externalId"].as_str()
            && !cfg.tax_codes.contains_key(t)
        {
            return Err(user_error(format!("Invalid taxitem reference key {t}.")));
        }
        let mut r = item.clone();
        r["id"] = json!(id.to_string());
        r["entityId"] = json!(format!("CUST{id}"));
        r["lastModifiedDate"] = json!(stamp);
        d.customers.insert(id, r.clone());
        r
    } else {
        transaction(cfg, d, ty, id, item, existing.is_some(), stamp)?
    };
    let _ = record;
    Ok(format!("/services/rest/record/v1/{ty}/{id}"))
}

/// An invoice or credit memo, checked as NetSuite checks one.
fn transaction(
    cfg: &NetSuiteSimConfig,
    d: &mut Data,
    ty: &str,
    id: u64,
    item: &Value,
    update: bool,
    stamp: &str,
) -> Result<Value, Value> {
    let entity = item["entity"]["id"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok());
    if !entity.is_some_and(|e| d.customers.contains_key(&e)) {
        return Err(user_error(format!(
            "Invalid entity reference key {}.",
            item["entity"]
        )));
    }
    let Some(date) = item["tranDate"]
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    else {
        return Err(user_error("Please enter a value for Date.".into()));
    };
    if cfg.closed_through.is_some_and(|c| date <= c) {
        return Err(user_error(format!(
            "The accounting period for {date} is closed; you cannot post to it."
        )));
    }
    if update && d.links.iter().any(|(_, inv, _)| *inv == id) {
        return Err(user_error(
            "This transaction has payments applied; it cannot be changed.".into(),
        ));
    }
    let lines = item["item"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if lines.is_empty() {
        return Err(user_error(
            "You must enter at least one line item for this transaction.".into(),
        ));
    }
    let mut subtotal = Decimal::ZERO;
    let mut tax = Decimal::ZERO;
    let mut stored = Vec::new();
    for (n, l) in lines.iter().enumerate() {
        let code = l["item"]["externalId"].as_str().unwrap_or_default();
        if !cfg.items.contains(code) {
            return Err(user_error(format!(
                "Invalid item reference key {code} on line {}.",
                n + 1
            )));
        }
        for (field, allowed) in &cfg.segments {
            if let Some(v) = l.get(field.as_str()).and_then(|v| v["externalId"].as_str())
                && !allowed.contains(v)
            {
                return Err(user_error(format!("Invalid {field} reference key {v}.")));
            }
        }
        let amount = dec(&l["amount"]);
        let rate = match l["taxCode"]["externalId"].as_str() {
            None => Decimal::ZERO,
            Some(t) => *cfg
                .tax_codes
                .get(t)
                .ok_or_else(|| user_error(format!("Invalid taxcode reference key {t}.")))?,
        };
        // Legacy tax: each line's tax is rounded on its own.
        let line_tax = (amount * rate / Decimal::from(100))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        subtotal += amount;
        tax += line_tax;
        stored.push(
            json!({ "line": n + 1, "item": code, "quantity": l["quantity"], "rate": l["rate"],
                            "amount": num(amount), "description": l["description"] }),
        );
    }
    let total = subtotal + tax;
    let mut r = item.clone();
    r["id"] = json!(id.to_string());
    r["recordType"] = json!(ty);
    r["tranId"] = json!(format!(
        "{}{id}",
        if ty == "invoice" { "INV" } else { "CM" }
    ));
    r["item"] = json!({ "items": stored });
    r["subtotal"] = num(subtotal);
    r["taxTotal"] = num(tax);
    r["total"] = num(total);
    r["amountPaid"] = num(Decimal::ZERO);
    r["amountRemaining"] = num(total);
    r["status"] = json!("A");
    if ty == "invoice" && r.get("approvalStatus").is_none() {
        r["approvalStatus"] = json!({ "id": "2" });
    }
    r["lastModifiedDate"] = json!(stamp);
    d.transactions.insert(id, r.clone());
    Ok(r)
}

fn job_of(inner: &Inner, id: &str) -> Option<(u64, Job)> {
    let n = id.parse::<u64>().ok()?;
    let d = inner.data.lock().expect("not poisoned");
    d.jobs.get(&n).cloned().map(|j| (n, j))
}

fn job(inner: &Inner, id: &str) -> Routed {
    let Some((n, j)) = job_of(inner, id) else {
        return not_found(id);
    };
    let completed = !j.hangs && j.polls_left == 0;
    if j.polls_left > 0 {
        let mut d = inner.data.lock().expect("not poisoned");
        if let Some(job) = d.jobs.get_mut(&n) {
            job.polls_left -= 1;
        }
    }
    let failed = j.tasks.iter().any(Result::is_err);
    let progress = match (completed, failed) {
        (false, _) => "pending",
        (true, false) => "succeeded",
        (true, true) => "failed",
    };
    (
        StatusCode::OK,
        json!({ "id": n.to_string(), "completed": completed, "progress": progress }),
        None,
    )
}

fn tasks(inner: &Inner, id: &str) -> Routed {
    let Some((_, j)) = job_of(inner, id) else {
        return not_found(id);
    };
    let items: Vec<Value> = j
        .tasks
        .iter()
        .enumerate()
        .map(|(k, t)| {
            json!({ "id": (k + 1).to_string(),
                    "progress": if t.is_ok() { "succeeded" } else { "failed" } })
        })
        .collect();
    (
        StatusCode::OK,
        json!({ "count": items.len(), "items": items }),
        None,
    )
}

fn task_result(inner: &Inner, id: &str, n: &str) -> Routed {
    let Some((_, j)) = job_of(inner, id) else {
        return not_found(id);
    };
    match n
        .parse::<usize>()
        .ok()
        .and_then(|k| k.checked_sub(1))
        .and_then(|k| j.tasks.get(k))
    {
        Some(Ok(location)) => (
            StatusCode::OK,
            json!({ "status": 204, "location": location }),
            None,
        ),
        Some(Err(e)) => (StatusCode::OK, e.clone(), None),
        None => not_found(n),
    }
}
