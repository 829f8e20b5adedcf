//! A Xero Accounting API simulator: a real HTTP server on loopback holding one
//! organisation's contacts, invoices, credit notes and payments, enforcing Xero's
//! limits (60 calls per rolling minute, 5 concurrent, 5,000 per day; 429 with
//! `Retry-After` and `X-Rate-Limit-Problem`), honouring `Idempotency-Key`,
//! `summarizeErrors`, `where`, `page`/`pageSize`, validating documents against
//! the organisation's accounts, items, tax rates, tracking options, currencies
//! and period lock date, and sending signed webhooks when invoices are paid.
//!
//! Faithful to the official OpenAPI and Xero's documentation where they speak;
//! the wording of validation messages, and the answer to an `Idempotency-Key`
//! reused with a different request (400), are this simulator's own (‡).

pub mod stage;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use chrono::{NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

use crate::server::{self, Server};
use crate::xero_where;
use crate::{num, uuid};

/// The organisation's setup.
#[derive(Debug, Clone)]
pub struct XeroSimConfig {
    /// A long-lived bearer token the API always accepts (the demo's static credential).
    pub token: String,
    /// The OAuth app: `POST /connect/token` exchanges a refresh token for an
    /// access token (valid `access_token_ttl`) and a new refresh token; the
    /// previous refresh token keeps working for a 30-minute grace period.
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    pub tenant_id: String,
    pub webhook_key: String,
    pub name: String,
    pub base_currency: String,
    pub currencies: BTreeSet<String>,
    /// Revenue account codes.
    pub accounts: BTreeSet<String>,
    /// Item codes.
    pub items: BTreeSet<String>,
    /// Tax type → percent.
    pub tax_rates: BTreeMap<String, Decimal>,
    /// Tracking category → options.
    pub tracking: BTreeMap<String, BTreeSet<String>>,
    pub period_lock: Option<NaiveDate>,
    pub per_minute: usize,
    pub per_day: usize,
    pub concurrent: u32,
}

impl Default for XeroSimConfig {
    fn default() -> Self {
        XeroSimConfig {
            token: "xero-access-token-demo".into(),
            client_id: "xero-client-id-demo".into(),
            client_secret: "xero-client-secret-demo".into(),
            refresh_token: "xero-refresh-token-0".into(),
            tenant_id: "7f0c3b2a-0000-4000-8000-00000000beef".into(),
            webhook_key: "xero-webhook-key-demo".into(),
            name: "Demo Firm LLC".into(),
            base_currency: "USD".into(),
            currencies: ["USD", "EUR", "GBP"]
                .into_iter()
                .map(String::from)
                .collect(),
            accounts: ["200", "260", "270"]
                .into_iter()
                .map(String::from)
                .collect(),
            items: BTreeSet::new(),
            tax_rates: [("OUTPUT", "8.875"), ("EXEMPTOUTPUT", "0"), ("NONE", "0")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), Decimal::from_str(v).expect("valid")))
                .collect(),
            tracking: BTreeMap::new(),
            period_lock: None,
            per_minute: 60,
            per_day: 5000,
            concurrent: 5,
        }
    }
}

/// Fault knobs; counters are consumed as faults fire.
#[derive(Debug, Clone, Default)]
pub struct XeroFaults {
    /// Answer the next N requests with 500 (nothing committed).
    pub fail_next: u32,
    /// Answer the next N requests with 200 and a body that is not JSON (a
    /// proxy's maintenance page); nothing committed.
    pub garbage_next: u32,
    /// Answer the next N requests with 429 (`Retry-After: retry_after_secs`), nothing committed.
    pub throttle_next: u32,
    pub retry_after_secs: u64,
    /// Commit the next N writes, then answer 504 as if the response were lost on the way back.
    pub lose_next_responses: u32,
    /// Commit the next N writes, then wait this long before answering (client timeouts).
    pub slow_next: u32,
    pub slow_for: Duration,
    /// Slow writes wait `slow_for` before committing instead of after: Xero
    /// commits after the client has given up.
    pub commit_late: bool,
    /// Commit the next N writes and answer with fields of unexpected types
    /// (a text `SubTotal`, `LineItems` that is not a list, an unknown object).
    pub malformed_next: u32,
    /// Answer the next N requests with the daily limit's 429
    /// (`X-Rate-Limit-Problem: day`, `Retry-After: retry_after_secs`).
    pub day_cap_next: u32,
    /// Park the next N writes before they commit, until [`XeroSim::release_stalled`]:
    /// the client times out, and Xero commits later (whenever the test says).
    pub stall_next: u32,
    /// Refuse documents with these references, one by one inside a batch, as
    /// Xero refuses a line whose account code finance archived (until finance
    /// restores it: the test removes the reference).
    pub refuse_references: BTreeSet<String>,
}

/// One request and its answer, for spec validation in tests.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub request: Option<Value>,
    pub response: Value,
}

/// Rate-limit accounting, for the "limits never exceeded" assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XeroStats {
    pub calls: u64,
    /// Most calls accepted within any rolling 60 seconds.
    pub max_in_minute: usize,
    /// Most calls in flight at once.
    pub max_concurrent: u32,
    /// 429s because Ferry exceeded a limit (should stay 0).
    pub throttled_by_limits: u64,
    /// 429s injected by `XeroFaults`.
    pub throttled_injected: u64,
}

#[derive(Default)]
struct Org {
    contacts: BTreeMap<String, Value>,
    invoices: BTreeMap<String, Value>,
    credit_notes: BTreeMap<String, Value>,
    payments: BTreeMap<String, Value>,
    idem: HashMap<String, (String, u16, Value)>,
    next_invoice: u32,
    next_credit: u32,
    period_lock: Option<NaiveDate>,
    webhook: Option<String>,
    sequence: i64,
}

#[derive(Default)]
struct Rate {
    minute: VecDeque<Instant>,
    day: VecDeque<Instant>,
    stats: XeroStats,
}

/// OAuth state: issued access tokens, the current and the previous refresh token.
struct Auth {
    access: HashMap<String, Instant>,
    access_ttl: Duration,
    refresh: String,
    previous: Option<(String, Instant)>,
    refreshes: u64,
    generation: u64,
}

/// The refresh-token grace Xero documents.
const REFRESH_GRACE: Duration = Duration::from_secs(30 * 60);

struct Inner {
    cfg: XeroSimConfig,
    auth: Mutex<Auth>,
    org: Mutex<Org>,
    rate: Mutex<Rate>,
    inflight: AtomicU32,
    faults: Mutex<XeroFaults>,
    /// Writes parked by `XeroFaults::stall_next`, and how many have not committed yet.
    stalled: Mutex<Vec<tokio::sync::oneshot::Sender<()>>>,
    stalled_pending: AtomicU32,
    log: Mutex<Vec<Exchange>>,
    webhooks_sent: AtomicU64,
    http: reqwest::Client,
}

/// A running simulator.
#[derive(Clone)]
pub struct XeroSim {
    inner: Arc<Inner>,
    server: Arc<Server>,
}

/// The API root under the server origin.
pub const API_ROOT: &str = "/api.xro/2.0";

fn ms_date(d: NaiveDate) -> String {
    let ms = d
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_millis();
    format!("/Date({ms}+0000)/")
}

fn ms_instant(s: &str) -> Option<chrono::DateTime<Utc>> {
    let inner = s.strip_prefix("/Date(")?.strip_suffix(")/")?;
    let ms: i64 = inner
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()?;
    chrono::DateTime::from_timestamp_millis(ms)
}

fn now_ms() -> String {
    format!("/Date({}+0000)/", crate::vendor_now().timestamp_millis())
}

fn dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        Value::String(s) => Decimal::from_str(s).ok(),
        _ => None,
    }
}

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn xero_error(message: &str, elements: Vec<Value>) -> Value {
    json!({ "ErrorNumber": 10, "Type": "ValidationException", "Message": message, "Elements": elements })
}

/// `POST /connect/token` (grant_type=refresh_token), as Xero's identity server
/// answers it: client credentials in Basic auth, the refresh token rotates on
/// every use, the previous one is honoured for the grace period.
async fn token(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            inner.cfg.client_id, inner.cfg.client_secret
        ))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let presented = form.get("refresh_token").cloned().unwrap_or_default();
    let now = Instant::now();
    let mut auth = inner.auth.lock().expect("not poisoned");
    let in_grace = auth
        .previous
        .as_ref()
        .is_some_and(|(t, until)| *t == presented && *until > now);
    if presented != auth.refresh && !in_grace {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    auth.refreshes += 1;
    if presented == auth.refresh {
        auth.generation += 1;
        let next = format!("xero-refresh-token-{}-{}", auth.generation, uuid());
        let old = std::mem::replace(&mut auth.refresh, next);
        auth.previous = Some((old, now + REFRESH_GRACE));
    }
    let access = format!("xero-access-{}", uuid());
    let ttl = auth.access_ttl;
    auth.access.insert(access.clone(), now + ttl);
    axum::Json(json!({
        "access_token": access,
        "expires_in": ttl.as_secs(),
        "token_type": "Bearer",
        "refresh_token": auth.refresh,
        "scope": "offline_access accounting.transactions accounting.contacts accounting.settings",
    }))
    .into_response()
}

impl XeroSim {
    /// How long access tokens from `/connect/token` live (Xero: 30 minutes).
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        self.inner.auth.lock().expect("not poisoned").access_ttl = ttl;
    }

    /// Invalidates every access token issued by `/connect/token` (as a
    /// revocation or an early expiry would); the fixed demo token stays valid.
    pub fn revoke_access_tokens(&self) {
        self.inner.auth.lock().expect("not poisoned").access.clear();
    }

    /// Refresh-token exchanges answered so far.
    pub fn token_refreshes(&self) -> u64 {
        self.inner.auth.lock().expect("not poisoned").refreshes
    }

    /// The refresh token that is current now.
    pub fn current_refresh_token(&self) -> String {
        self.inner
            .auth
            .lock()
            .expect("not poisoned")
            .refresh
            .clone()
    }

    /// The token endpoint's URL.
    pub fn token_url(&self) -> String {
        format!("{}/connect/token", self.origin())
    }

    pub async fn start(cfg: XeroSimConfig) -> std::io::Result<XeroSim> {
        Self::start_on(cfg, "127.0.0.1:0".parse().expect("valid address")).await
    }

    pub async fn start_on(cfg: XeroSimConfig, addr: SocketAddr) -> std::io::Result<XeroSim> {
        let inner = Arc::new(Inner {
            auth: Mutex::new(Auth {
                access: HashMap::new(),
                access_ttl: Duration::from_secs(30 * 60),
                refresh: cfg.refresh_token.clone(),
                previous: None,
                refreshes: 0,
                generation: 0,
            }),
            org: Mutex::new(Org {
                period_lock: cfg.period_lock,
                ..Org::default()
            }),
            cfg,
            rate: Mutex::new(Rate::default()),
            inflight: AtomicU32::new(0),
            faults: Mutex::new(XeroFaults::default()),
            stalled: Mutex::new(Vec::new()),
            stalled_pending: AtomicU32::new(0),
            log: Mutex::new(Vec::new()),
            webhooks_sent: AtomicU64::new(0),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("static client"),
        });
        let app = Router::new()
            .route("/api.xro/2.0/{*rest}", any(api))
            .route("/connect/token", axum::routing::post(token))
            .with_state(inner.clone());
        let server = server::serve(app, addr).await?;
        Ok(XeroSim {
            inner,
            server: Arc::new(server),
        })
    }

    pub fn origin(&self) -> String {
        self.server.origin()
    }

    pub fn base_url(&self) -> String {
        format!("{}{API_ROOT}", self.origin())
    }

    pub fn config(&self) -> &XeroSimConfig {
        &self.inner.cfg
    }

    pub fn set_faults(&self, f: XeroFaults) {
        *self.inner.faults.lock().expect("not poisoned") = f;
    }

    /// The fault knobs as they stand (counters fall as faults fire).
    pub fn faults(&self) -> XeroFaults {
        self.inner.faults.lock().expect("not poisoned").clone()
    }

    /// Writes parked by `XeroFaults::stall_next` that have not committed yet.
    pub fn stalled(&self) -> u32 {
        self.inner.stalled_pending.load(Ordering::SeqCst)
    }

    /// Lets every parked write commit, and returns once they all have.
    pub async fn release_stalled(&self) {
        let parked = std::mem::take(&mut *self.inner.stalled.lock().expect("not poisoned"));
        for tx in parked {
            let _ = tx.send(());
        }
        for _ in 0..2_000 {
            if self.stalled() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("parked Xero writes did not commit within 10 s");
    }

    pub fn stats(&self) -> XeroStats {
        self.inner.rate.lock().expect("not poisoned").stats.clone()
    }

    /// Every request and answer so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.inner.log.lock().expect("not poisoned").clone()
    }

    pub fn set_period_lock(&self, d: Option<NaiveDate>) {
        self.inner.org.lock().expect("not poisoned").period_lock = d;
    }

    /// Where to send webhooks (signed with the organisation's webhook key).
    pub fn set_webhook(&self, url: Option<String>) {
        self.inner.org.lock().expect("not poisoned").webhook = url;
    }

    pub fn webhooks_sent(&self) -> u64 {
        self.inner.webhooks_sent.load(Ordering::Relaxed)
    }

    /// Applies a write as `POST /{coll}?summarizeErrors=false` would, without
    /// HTTP or faults: tests seed large collections with it.
    pub fn post_direct(&self, coll: &str, body: &Value) -> (u16, Value) {
        let q = BTreeMap::from([("summarizeErrors".to_string(), "false".to_string())]);
        let (status, v) = write(&self.inner, coll, false, &q, Some(body));
        (status.as_u16(), v)
    }

    pub fn contacts(&self) -> Vec<Value> {
        self.inner
            .org
            .lock()
            .expect("not poisoned")
            .contacts
            .values()
            .cloned()
            .collect()
    }

    pub fn invoices(&self) -> Vec<Value> {
        self.inner
            .org
            .lock()
            .expect("not poisoned")
            .invoices
            .values()
            .cloned()
            .collect()
    }

    pub fn credit_notes(&self) -> Vec<Value> {
        self.inner
            .org
            .lock()
            .expect("not poisoned")
            .credit_notes
            .values()
            .cloned()
            .collect()
    }

    pub fn payments(&self) -> Vec<Value> {
        self.inner
            .org
            .lock()
            .expect("not poisoned")
            .payments
            .values()
            .cloned()
            .collect()
    }

    /// Finance approves a draft invoice in Xero's UI. Sends an INVOICE webhook.
    pub async fn authorise(&self, invoice_id: &str) -> Result<(), String> {
        {
            let mut org = self.inner.org.lock().expect("not poisoned");
            let inv = org
                .invoices
                .get_mut(invoice_id)
                .ok_or_else(|| format!("no invoice {invoice_id}"))?;
            if !matches!(inv["Status"].as_str(), Some("DRAFT" | "SUBMITTED")) {
                return Err(format!("invoice {invoice_id} is {}", inv["Status"]));
            }
            inv["Status"] = json!("AUTHORISED");
            inv["UpdatedDateUTC"] = json!(now_ms());
        }
        self.send_webhook(invoice_id).await;
        Ok(())
    }

    /// A customer pays an invoice (as if recorded in Xero's UI). Sends an INVOICE webhook.
    pub async fn pay_invoice(
        &self,
        invoice_id: &str,
        amount: Decimal,
        date: NaiveDate,
    ) -> Result<Value, String> {
        let payment = {
            let mut org = self.inner.org.lock().expect("not poisoned");
            apply_payment(&mut org, invoice_id, amount, date, "090")?
        };
        self.send_webhook(invoice_id).await;
        Ok(payment)
    }

    async fn send_webhook(&self, invoice_id: &str) {
        let (url, seq) = {
            let mut org = self.inner.org.lock().expect("not poisoned");
            org.sequence += 1;
            (org.webhook.clone(), org.sequence)
        };
        let Some(url) = url else { return };
        let body = json!({
            "events": [{
                "resourceUrl": format!("{}/Invoices/{invoice_id}", self.base_url()),
                "resourceId": invoice_id,
                "eventDateUtc": crate::vendor_now().to_rfc3339(),
                "eventType": "UPDATE",
                "eventCategory": "INVOICE",
                "tenantId": self.inner.cfg.tenant_id,
                "tenantType": "ORGANISATION",
            }],
            "firstEventSequence": seq,
            "lastEventSequence": seq,
            "entropy": uuid(),
        })
        .to_string();
        let sig = sign(&self.inner.cfg.webhook_key, body.as_bytes());
        let r = self
            .inner
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-xero-signature", sig)
            .body(body)
            .send()
            .await;
        if r.is_ok() {
            self.inner.webhooks_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `x-xero-signature` for a body.
pub fn sign(key: &str, body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn apply_payment(
    org: &mut Org,
    invoice_id: &str,
    amount: Decimal,
    date: NaiveDate,
    account: &str,
) -> Result<Value, String> {
    let inv = org
        .invoices
        .get_mut(invoice_id)
        .ok_or("Invoice not found")?;
    if inv["Status"] != "AUTHORISED" {
        return Err("Payments can only be made against authorised documents".into());
    }
    let due = dec(&inv["AmountDue"]).unwrap_or_default();
    if amount <= Decimal::ZERO || amount > due {
        return Err(format!(
            "Payment amount {amount} exceeds the amount due {due}"
        ));
    }
    let paid = dec(&inv["AmountPaid"]).unwrap_or_default() + amount;
    inv["AmountPaid"] = num(paid);
    inv["AmountDue"] = num(due - amount);
    if (due - amount).is_zero() {
        inv["Status"] = json!("PAID");
        inv["FullyPaidOnDate"] = json!(ms_date(date));
    }
    inv["UpdatedDateUTC"] = json!(now_ms());
    let payment = json!({
        "PaymentID": uuid(),
        "Date": ms_date(date),
        "Amount": num(amount),
        "Reference": "Customer payment",
        "Status": "AUTHORISED",
        "PaymentType": "ACCRECPAYMENT",
        "IsReconciled": false,
        "UpdatedDateUTC": now_ms(),
        "Account": { "Code": account },
        "Invoice": {
            "InvoiceID": invoice_id,
            "InvoiceNumber": inv["InvoiceNumber"],
            "CurrencyCode": inv["CurrencyCode"],
            "Type": "ACCREC",
        },
    });
    org.payments.insert(
        payment["PaymentID"].as_str().expect("string").to_string(),
        payment.clone(),
    );
    Ok(payment)
}

struct Flight<'a>(&'a AtomicU32);
impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn respond(
    inner: &Inner,
    status: StatusCode,
    body: Value,
    extra: &[(&'static str, String)],
) -> Response {
    let (min_left, day_left) = {
        let r = inner.rate.lock().expect("not poisoned");
        (
            inner.cfg.per_minute.saturating_sub(r.minute.len()),
            inner.cfg.per_day.saturating_sub(r.day.len()),
        )
    };
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert("x-minlimit-remaining", HeaderValue::from(min_left as u64));
    h.insert("x-daylimit-remaining", HeaderValue::from(day_left as u64));
    h.insert("x-appminlimit-remaining", HeaderValue::from(9_999u64));
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(*k, v);
        }
    }
    resp
}

fn throttle(inner: &Inner, problem: &str, retry: u64, injected: bool) -> Response {
    {
        let mut r = inner.rate.lock().expect("not poisoned");
        if injected {
            r.stats.throttled_injected += 1;
        } else {
            r.stats.throttled_by_limits += 1;
        }
    }
    respond(
        inner,
        StatusCode::TOO_MANY_REQUESTS,
        json!({ "Title": "Too Many Requests", "Status": 429, "Detail": format!("rate limit exceeded: {problem}") }),
        &[
            ("retry-after", retry.to_string()),
            ("x-rate-limit-problem", problem.to_string()),
        ],
    )
}

async fn api(
    State(inner): State<Arc<Inner>>,
    method: Method,
    Path(rest): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Authentication comes before any accounting, as in Xero.
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let known = presented == inner.cfg.token || {
        let auth = inner.auth.lock().expect("not poisoned");
        auth.access
            .get(presented)
            .is_some_and(|exp| *exp > Instant::now())
    };
    if !known {
        return respond(
            &inner,
            StatusCode::UNAUTHORIZED,
            json!({ "Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful" }),
            &[],
        );
    }
    if headers.get("xero-tenant-id").and_then(|v| v.to_str().ok())
        != Some(inner.cfg.tenant_id.as_str())
    {
        return respond(
            &inner,
            StatusCode::FORBIDDEN,
            json!({ "Title": "Forbidden", "Status": 403, "Detail": "AuthorizationUnsuccessful" }),
            &[],
        );
    }
    {
        let mut f = inner.faults.lock().expect("not poisoned");
        if f.garbage_next > 0 {
            f.garbage_next -= 1;
            return (StatusCode::OK, "<html>maintenance</html>").into_response();
        }
    }
    let flying = inner.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    let _flight = Flight(&inner.inflight);
    // Injected faults: nothing is committed or counted.
    let (fail, throttle_injected, retry_after, lose, slow, commit_late, malformed, day_cap, stall) = {
        let mut f = inner.faults.lock().expect("not poisoned");
        let fail = f.fail_next > 0;
        if fail {
            f.fail_next -= 1;
        }
        let day_cap = !fail && f.day_cap_next > 0;
        if day_cap {
            f.day_cap_next -= 1;
        }
        let thr = !fail && !day_cap && f.throttle_next > 0;
        if thr {
            f.throttle_next -= 1;
        }
        let writes = method != Method::GET;
        let stall = writes && !fail && !day_cap && !thr && f.stall_next > 0;
        if stall {
            f.stall_next -= 1;
        }
        let lose = writes && !fail && !thr && f.lose_next_responses > 0;
        if lose {
            f.lose_next_responses -= 1;
        }
        let slow = writes && !fail && !thr && !lose && f.slow_next > 0;
        if slow {
            f.slow_next -= 1;
        }
        let malformed = writes && !fail && !thr && !lose && f.malformed_next > 0;
        if malformed {
            f.malformed_next -= 1;
        }
        (
            fail,
            thr,
            f.retry_after_secs.max(1),
            lose,
            slow.then_some(f.slow_for),
            f.commit_late,
            malformed,
            day_cap,
            stall,
        )
    };
    if fail {
        return respond(
            &inner,
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "Title": "Internal Server Error", "Status": 500 }),
            &[],
        );
    }
    if throttle_injected {
        return throttle(&inner, "minute", retry_after, true);
    }
    if day_cap {
        return throttle(&inner, "day", retry_after, true);
    }
    // Xero's limits: concurrent, per rolling minute, per day.
    {
        let now = Instant::now();
        let mut r = inner.rate.lock().expect("not poisoned");
        if flying > inner.cfg.concurrent {
            drop(r);
            return throttle(&inner, "concurrent", 1, false);
        }
        while r
            .minute
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            r.minute.pop_front();
        }
        while r
            .day
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(86_400))
        {
            r.day.pop_front();
        }
        if r.minute.len() >= inner.cfg.per_minute {
            let oldest = *r.minute.front().expect("non-empty");
            let wait = 60u64
                .saturating_sub(now.duration_since(oldest).as_secs())
                .max(1);
            drop(r);
            return throttle(&inner, "minute", wait, false);
        }
        if r.day.len() >= inner.cfg.per_day {
            drop(r);
            return throttle(&inner, "day", 3600, false);
        }
        r.minute.push_back(now);
        r.day.push_back(now);
        r.stats.calls += 1;
        r.stats.max_in_minute = r.stats.max_in_minute.max(r.minute.len());
        r.stats.max_concurrent = r.stats.max_concurrent.max(flying);
    }

    let request: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                return respond(
                    &inner,
                    StatusCode::BAD_REQUEST,
                    xero_error(&format!("The request body is not valid JSON: {e}"), vec![]),
                    &[],
                );
            }
        }
    };
    let path = rest.trim_matches('/').to_string();
    let idem_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let fingerprint = format!("{method} {path} {q:?} {}", String::from_utf8_lossy(&body));
    if let Some(k) = &idem_key {
        if k.len() > 128 {
            return respond(
                &inner,
                StatusCode::BAD_REQUEST,
                xero_error("Idempotency-Key must be 128 characters or fewer", vec![]),
                &[],
            );
        }
        let org = inner.org.lock().expect("not poisoned");
        if let Some((fp, status, resp)) = org.idem.get(k) {
            if *fp != fingerprint {
                drop(org);
                return respond(
                    &inner,
                    StatusCode::BAD_REQUEST,
                    xero_error(
                        "The Idempotency-Key was already used with a different request",
                        vec![],
                    ),
                    &[],
                );
            }
            let (status, resp) = (*status, resp.clone());
            drop(org);
            return respond(
                &inner,
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                resp,
                &[],
            );
        }
    }

    let modified_since = headers
        .get("if-modified-since")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc));
    // The request is processed to the end even if the client hangs up (a client
    // timeout does not stop Xero committing): the work runs in its own task.
    let work = {
        let inner = inner.clone();
        let method = method.clone();
        let path = path.clone();
        let request = request.clone();
        let late = if commit_late { slow } else { None };
        let parked = stall.then(|| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            inner.stalled.lock().expect("not poisoned").push(tx);
            inner.stalled_pending.fetch_add(1, Ordering::SeqCst);
            rx
        });
        tokio::spawn(async move {
            if let Some(d) = late {
                tokio::time::sleep(d).await;
            }
            if let Some(rx) = parked {
                // Released, or the simulator is going away: commit either way.
                let _ = rx.await;
            }
            let (status, mut resp) =
                handle(&inner, &method, &path, &q, request.as_ref(), modified_since);
            if malformed {
                malform(&mut resp);
            }
            if let Some(k) = idem_key
                && method != Method::GET
            {
                inner
                    .org
                    .lock()
                    .expect("not poisoned")
                    .idem
                    .insert(k, (fingerprint, status.as_u16(), resp.clone()));
            }
            inner.log.lock().expect("not poisoned").push(Exchange {
                method: method.to_string(),
                path,
                status: status.as_u16(),
                request,
                response: resp.clone(),
            });
            if stall {
                inner.stalled_pending.fetch_sub(1, Ordering::SeqCst);
            }
            (status, resp)
        })
    };
    let (status, resp) = match work.await {
        Ok(done) => done,
        Err(e) => {
            return respond(
                &inner,
                StatusCode::INTERNAL_SERVER_ERROR,
                xero_error(&format!("simulator task failed: {e}"), vec![]),
                &[],
            );
        }
    };
    if lose {
        return respond(
            &inner,
            StatusCode::GATEWAY_TIMEOUT,
            json!({ "Title": "Gateway Timeout", "Status": 504 }),
            &[],
        );
    }
    if !commit_late && let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    respond(&inner, status, resp, &[])
}

/// Gives every document of a write answer fields of unexpected types.
fn malform(resp: &mut Value) {
    for key in ["Invoices", "CreditNotes", "Contacts"] {
        if let Some(items) = resp.get_mut(key).and_then(Value::as_array_mut) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                item.insert("SubTotal".into(), json!("twelve"));
                item.insert("LineItems".into(), json!("not a list"));
                item.insert("HasValidationErrors".into(), json!("no"));
                item.insert("Addresses".into(), json!(42));
                item.insert("FutureField".into(), json!({ "Nested": [1, "two"] }));
            }
        }
    }
}

fn envelope(key: &str, items: Vec<Value>) -> Value {
    json!({
        "Id": uuid(),
        "Status": "OK",
        "ProviderName": "Ferry Xero simulator",
        "DateTimeUTC": now_ms(),
        key: items,
    })
}

fn handle(
    inner: &Inner,
    method: &Method,
    path: &str,
    q: &BTreeMap<String, String>,
    body: Option<&Value>,
    modified_since: Option<chrono::DateTime<Utc>>,
) -> (StatusCode, Value) {
    let parts: Vec<&str> = path.split('/').collect();
    match (method.clone(), parts.as_slice()) {
        (Method::GET, ["Organisation"]) => {
            let org = inner.org.lock().expect("not poisoned");
            let mut o = json!({
                "OrganisationID": inner.cfg.tenant_id,
                "Name": inner.cfg.name,
                "BaseCurrency": inner.cfg.base_currency,
                "CountryCode": "US",
                "OrganisationType": "COMPANY",
            });
            if let Some(d) = org.period_lock {
                o["PeriodLockDate"] = json!(ms_date(d));
            }
            (StatusCode::OK, envelope("Organisations", vec![o]))
        }
        (Method::GET, ["TaxRates"]) => {
            let rates = inner
                .cfg
                .tax_rates
                .iter()
                .map(|(kind, rate)| {
                    json!({ "Name": kind, "TaxType": kind, "Status": "ACTIVE",
                            "EffectiveRate": num(*rate), "DisplayTaxRate": num(*rate) })
                })
                .collect();
            (StatusCode::OK, envelope("TaxRates", rates))
        }
        (Method::GET, ["TrackingCategories"]) => {
            let cats = inner
                .cfg
                .tracking
                .iter()
                .map(|(name, opts)| {
                    json!({
                        "TrackingCategoryID": uuid(), "Name": name, "Status": "ACTIVE",
                        "Options": opts.iter().map(|o| json!({"TrackingOptionID": uuid(), "Name": o, "Status": "ACTIVE"})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            (StatusCode::OK, envelope("TrackingCategories", cats))
        }
        (Method::GET, [coll]) | (Method::GET, [coll, _])
            if ["Contacts", "Invoices", "CreditNotes", "Payments"].contains(coll) =>
        {
            list(inner, coll, parts.get(1).copied(), q, modified_since)
        }
        (Method::POST | Method::PUT, [coll])
            if ["Contacts", "Invoices", "CreditNotes"].contains(coll) =>
        {
            write(inner, coll, method == Method::PUT, q, body)
        }
        (Method::PUT, ["Payments"]) => {
            let items = body
                .and_then(|b| b.get("Payments"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut out = Vec::new();
            let mut org = inner.org.lock().expect("not poisoned");
            for p in items {
                let id = p
                    .pointer("/Invoice/InvoiceID")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let amount = dec(&p["Amount"]).unwrap_or_default();
                let date = p["Date"]
                    .as_str()
                    .and_then(|d| {
                        NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d").ok()
                    })
                    .unwrap_or_else(|| crate::vendor_now().date_naive());
                let account = p
                    .pointer("/Account/Code")
                    .and_then(Value::as_str)
                    .unwrap_or("090")
                    .to_string();
                match apply_payment(&mut org, &id, amount, date, &account) {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        return (
                            StatusCode::BAD_REQUEST,
                            xero_error(
                                "A validation exception occurred",
                                vec![json!({"ValidationErrors": [{"Message": e}]})],
                            ),
                        );
                    }
                }
            }
            (StatusCode::OK, envelope("Payments", out))
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({ "Title": "Not Found", "Status": 404, "Detail": format!("no resource {path}") }),
        ),
    }
}

fn list(
    inner: &Inner,
    coll: &str,
    id: Option<&str>,
    q: &BTreeMap<String, String>,
    modified_since: Option<chrono::DateTime<Utc>>,
) -> (StatusCode, Value) {
    let filter = match q.get("where").map(|w| xero_where::parse(w)) {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            return (
                StatusCode::BAD_REQUEST,
                xero_error(&format!("where: {e}"), vec![]),
            );
        }
        None => None,
    };
    let org = inner.org.lock().expect("not poisoned");
    let table = match coll {
        "Contacts" => &org.contacts,
        "Invoices" => &org.invoices,
        "CreditNotes" => &org.credit_notes,
        _ => &org.payments,
    };
    let include_archived = q.get("includeArchived").is_some_and(|v| v == "true");
    let ids: Option<BTreeSet<String>> = q
        .get("IDs")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let statuses: Option<BTreeSet<String>> = q
        .get("Statuses")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let mut rows: Vec<Value> = table
        .iter()
        .filter(|(k, _)| id.is_none_or(|i| *k == i))
        .filter(|(k, _)| ids.as_ref().is_none_or(|s| s.contains(*k)))
        .map(|(_, v)| v)
        .filter(|v| coll != "Contacts" || include_archived || v["ContactStatus"] != "ARCHIVED")
        .filter(|v| {
            statuses
                .as_ref()
                .is_none_or(|s| v["Status"].as_str().is_some_and(|x| s.contains(x)))
        })
        .filter(|v| filter.as_ref().is_none_or(|f| xero_where::eval(f, v)))
        .filter(|v| {
            modified_since.is_none_or(|since| {
                v["UpdatedDateUTC"]
                    .as_str()
                    .and_then(ms_instant)
                    .is_some_and(|u| u > since)
            })
        })
        .cloned()
        .collect();
    if id.is_some() && rows.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            json!({ "Title": "Not Found", "Status": 404 }),
        );
    }
    if let Some(page) = q.get("page").and_then(|p| p.parse::<usize>().ok()) {
        let size = q
            .get("pageSize")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(100)
            .clamp(1, 1000);
        rows = rows
            .into_iter()
            .skip(page.saturating_sub(1) * size)
            .take(size)
            .collect();
    }
    (StatusCode::OK, envelope(coll, rows))
}

/// Validates and applies a batch write. With `summarizeErrors=false` each item
/// succeeds or fails alone (200); otherwise any error refuses the whole batch (400).
fn write(
    inner: &Inner,
    coll: &str,
    create_only: bool,
    q: &BTreeMap<String, String>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let Some(items) = body.and_then(|b| b.get(coll)).and_then(Value::as_array) else {
        return (
            StatusCode::BAD_REQUEST,
            xero_error(
                &format!("The request body must contain a {coll} array"),
                vec![],
            ),
        );
    };
    let summarize = q
        .get("summarizeErrors")
        .map(|v| v != "false")
        .unwrap_or(false);
    // Xero keeps unit amounts to 2 decimal places unless the call opts in to 4.
    let unit_dp = if q.get("unitdp").map(String::as_str) == Some("4") {
        4
    } else {
        2
    };
    let mut org = inner.org.lock().expect("not poisoned");
    // Validate everything first, so a summarised refusal commits nothing.
    let mut results: Vec<Result<Value, Vec<String>>> = Vec::new();
    let mut staged = Org {
        contacts: org.contacts.clone(),
        invoices: BTreeMap::new(),
        credit_notes: BTreeMap::new(),
        ..Org::default()
    };
    for item in items {
        let r = match coll {
            "Contacts" => validate_contact(&staged, item, create_only),
            _ => validate_document(inner, &org, coll, item, create_only, unit_dp),
        };
        if let (Ok(v), "Contacts") = (&r, coll) {
            staged.contacts.insert(
                v["ContactID"].as_str().unwrap_or_default().to_string(),
                v.clone(),
            );
        }
        results.push(r);
    }
    if summarize && results.iter().any(Result::is_err) {
        let elements = items
            .iter()
            .zip(&results)
            .map(|(item, r)| {
                let mut e = item.clone();
                let errs: Vec<Value> = r
                    .as_ref()
                    .err()
                    .map(|m| m.iter().map(|x| json!({"Message": x})).collect())
                    .unwrap_or_default();
                e["ValidationErrors"] = Value::Array(errs);
                e
            })
            .collect();
        return (
            StatusCode::BAD_REQUEST,
            xero_error("A validation exception occurred", elements),
        );
    }
    let mut out = Vec::new();
    for (item, r) in items.iter().zip(results) {
        match r {
            Ok(mut v) => {
                let table = match coll {
                    "Contacts" => &mut org.contacts,
                    "Invoices" => &mut org.invoices,
                    _ => &mut org.credit_notes,
                };
                let id_field = match coll {
                    "Contacts" => "ContactID",
                    "Invoices" => "InvoiceID",
                    _ => "CreditNoteID",
                };
                let is_new = !table.contains_key(v[id_field].as_str().unwrap_or_default());
                if is_new && coll == "Invoices" && v["InvoiceNumber"].is_null() {
                    org.next_invoice += 1;
                    v["InvoiceNumber"] = json!(format!("INV-{:04}", org.next_invoice));
                }
                if is_new && coll == "CreditNotes" && v["CreditNoteNumber"].is_null() {
                    org.next_credit += 1;
                    v["CreditNoteNumber"] = json!(format!("CN-{:04}", org.next_credit));
                }
                let table = match coll {
                    "Contacts" => &mut org.contacts,
                    "Invoices" => &mut org.invoices,
                    _ => &mut org.credit_notes,
                };
                table.insert(
                    v[id_field].as_str().unwrap_or_default().to_string(),
                    v.clone(),
                );
                v["StatusAttributeString"] = json!("OK");
                out.push(v);
            }
            Err(messages) => {
                let mut e = item.clone();
                e["StatusAttributeString"] = json!("ERROR");
                e["HasErrors"] = json!(true);
                if coll == "Contacts" {
                    e.as_object_mut().expect("object").remove("HasErrors");
                    e["HasValidationErrors"] = json!(true);
                }
                e["ValidationErrors"] =
                    Value::Array(messages.iter().map(|m| json!({"Message": m})).collect());
                out.push(e);
            }
        }
    }
    (StatusCode::OK, envelope(coll, out))
}

fn validate_contact(org: &Org, item: &Value, create_only: bool) -> Result<Value, Vec<String>> {
    let mut errors = Vec::new();
    let existing_id = item["ContactID"].as_str().filter(|s| !s.is_empty());
    if create_only && existing_id.is_some() {
        errors.push("A contact cannot be updated with PUT; use POST".to_string());
    }
    let existing = existing_id.and_then(|id| org.contacts.get(id));
    if existing_id.is_some() && existing.is_none() {
        errors.push(format!(
            "Contact {} does not exist",
            existing_id.unwrap_or_default()
        ));
    }
    let mut c = existing.cloned().unwrap_or_else(
        || json!({ "ContactID": uuid(), "ContactStatus": "ACTIVE", "IsCustomer": true }),
    );
    if let Value::Object(fields) = item {
        for (k, v) in fields {
            c[k] = v.clone();
        }
    }
    let name = c["Name"].as_str().unwrap_or_default().trim().to_string();
    if name.is_empty() {
        errors.push("The contact name must be specified".into());
    }
    if name.len() > 255 {
        errors.push("The contact name must be 255 characters or fewer".into());
    }
    if c["ContactNumber"].as_str().is_some_and(|n| n.len() > 50) {
        errors.push("The contact number must be 50 characters or fewer".into());
    }
    let id = c["ContactID"].as_str().unwrap_or_default().to_string();
    if c["ContactStatus"] == "ACTIVE"
        && org.contacts.values().any(|o| {
            o["ContactID"].as_str() != Some(&id)
                && o["ContactStatus"] == "ACTIVE"
                && o["Name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&name))
        })
    {
        errors.push(format!("The contact name {name} is already assigned to another contact. The contact name must be unique across all active contacts."));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    c["UpdatedDateUTC"] = json!(now_ms());
    c["HasValidationErrors"] = json!(false);
    Ok(c)
}

fn validate_document(
    inner: &Inner,
    org: &Org,
    coll: &str,
    item: &Value,
    create_only: bool,
    unit_dp: u32,
) -> Result<Value, Vec<String>> {
    let credit = coll == "CreditNotes";
    let id_field = if credit { "CreditNoteID" } else { "InvoiceID" };
    let table = if credit {
        &org.credit_notes
    } else {
        &org.invoices
    };
    let mut errors = Vec::new();
    let existing_id = item[id_field].as_str().filter(|s| !s.is_empty());
    if create_only && existing_id.is_some() {
        errors.push(format!(
            "{id_field} cannot be given when creating with PUT; use POST to update"
        ));
    }
    let existing = existing_id.and_then(|id| table.get(id));
    if existing_id.is_some() && existing.is_none() {
        return Err(vec![format!(
            "{} {} does not exist",
            if credit { "Credit note" } else { "Invoice" },
            existing_id.unwrap_or_default()
        )]);
    }
    let old_status = existing.map(|e| e["Status"].as_str().unwrap_or_default().to_string());
    let mut d = existing.cloned().unwrap_or_else(
        || json!({ id_field: uuid(), "Status": "DRAFT", "AmountPaid": num(Decimal::ZERO) }),
    );
    let new_status = item["Status"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| d["Status"].as_str().unwrap_or("DRAFT").to_string());
    // Status rules.
    match (old_status.as_deref(), new_status.as_str()) {
        (Some("PAID"), s) if s != "PAID" => errors.push(
            "This document cannot be edited as it has a payment or credit note allocated to it."
                .into(),
        ),
        (Some("DELETED") | Some("VOIDED"), _) => {
            errors.push("A deleted or voided document cannot be changed".into())
        }
        (Some("AUTHORISED"), "DELETED") => {
            errors.push("An authorised document cannot be deleted; void it instead".into())
        }
        // Xero's status changes: DRAFT -> SUBMITTED/AUTHORISED/DELETED,
        // SUBMITTED -> DRAFT/AUTHORISED/DELETED, AUTHORISED -> VOIDED; an approved
        // document never goes back (Xero's words for any other change).
        (Some("AUTHORISED"), "DRAFT" | "SUBMITTED") => {
            errors.push("Invoice not of valid status for modification".into())
        }
        (Some("DRAFT") | Some("SUBMITTED") | None, "VOIDED") => {
            errors.push("Only authorised documents can be voided; delete a draft instead".into())
        }
        _ => {}
    }
    if old_status.as_deref() == Some("AUTHORISED")
        && dec(&d["AmountPaid"]).is_some_and(|p| !p.is_zero())
        && new_status != "VOIDED"
        && item.get("LineItems").is_some()
    {
        errors.push(
            "This document cannot be edited as it has a payment or credit note allocated to it."
                .into(),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if matches!(new_status.as_str(), "DELETED" | "VOIDED") {
        if existing.is_none() {
            return Err(vec![
                "A document must exist before it can be deleted or voided".into(),
            ]);
        }
        d["Status"] = json!(new_status);
        d["UpdatedDateUTC"] = json!(now_ms());
        return Ok(d);
    }
    if let Value::Object(fields) = item {
        for (k, v) in fields {
            d[k] = v.clone();
        }
    }
    let ty = d["Type"].as_str().unwrap_or_default().to_string();
    let expected = if credit {
        ["ACCRECCREDIT", "ACCPAYCREDIT"].as_slice()
    } else {
        ["ACCREC", "ACCPAY"].as_slice()
    };
    if !expected.contains(&ty.as_str()) {
        errors.push(format!("Type must be one of {expected:?}"));
    }
    let contact = d
        .pointer("/Contact/ContactID")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match org.contacts.get(contact) {
        Some(c) if c["ContactStatus"] == "ACTIVE" => {
            d["Contact"] = json!({ "ContactID": contact, "Name": c["Name"] })
        }
        Some(_) => errors.push(
            "The contact is archived; documents cannot be created for archived contacts".into(),
        ),
        None => errors.push("A valid contact must be specified".into()),
    }
    if d["Reference"].as_str().is_some_and(|r| {
        inner
            .faults
            .lock()
            .expect("not poisoned")
            .refuse_references
            .contains(r)
    }) {
        errors.push(
            "Account code '200' has been archived, or has been deleted. Each line item must reference a valid account."
                .into(),
        );
    }
    let date = d["Date"]
        .as_str()
        .and_then(|s| xero_where::date_of(&json!(s)));
    match date {
        None => errors.push("Date must be a valid date".into()),
        Some(date) => {
            if org.period_lock.is_some_and(|l| date <= l) {
                errors.push(format!(
                    "The document date cannot be on or before the period lock date ({})",
                    org.period_lock.expect("checked").format("%d %b %Y")
                ));
            }
            d["Date"] = json!(ms_date(date));
            d["DateString"] = json!(format!("{date}T00:00:00"));
        }
    }
    if let Some(due) = d["DueDate"]
        .as_str()
        .and_then(|s| xero_where::date_of(&json!(s)))
    {
        d["DueDate"] = json!(ms_date(due));
        d["DueDateString"] = json!(format!("{due}T00:00:00"));
    }
    let currency = d["CurrencyCode"]
        .as_str()
        .unwrap_or(&inner.cfg.base_currency)
        .to_string();
    if !inner.cfg.currencies.contains(&currency) {
        errors.push(format!(
            "The currency {currency} is not enabled for this organisation"
        ));
    }
    d["CurrencyCode"] = json!(currency);
    if d["LineAmountTypes"]
        .as_str()
        .is_some_and(|l| l != "Exclusive")
    {
        errors.push("This simulator supports LineAmountTypes Exclusive only".into());
    }
    d["LineAmountTypes"] = json!("Exclusive");
    let lines = d["LineItems"].as_array().cloned().unwrap_or_default();
    if lines.is_empty() && new_status == "AUTHORISED" {
        errors.push("An authorised document must have at least one line item".into());
    }
    let mut subtotal = Decimal::ZERO;
    let mut by_tax: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut out_lines = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let n = i + 1;
        let qty = dec(&l["Quantity"]).unwrap_or(Decimal::ONE);
        let unit = match dec(&l["UnitAmount"]) {
            Some(u) => u.round_dp_with_strategy(
                unit_dp,
                rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            ),
            None => {
                errors.push(format!("Line {n}: UnitAmount must be a number"));
                continue;
            }
        };
        let amount = round2(qty * unit);
        if let Some(given) = dec(&l["LineAmount"])
            && given != amount
        {
            errors.push(format!(
                "Line {n}: the line amount {given} does not equal quantity × unit amount ({amount})"
            ));
        }
        let item_code = l["ItemCode"].as_str();
        let account = l["AccountCode"].as_str();
        if let Some(code) = item_code
            && !inner.cfg.items.contains(code)
        {
            errors.push(format!("Item code '{code}' is not valid"));
        }
        if let Some(code) = account
            && !inner.cfg.accounts.contains(code)
        {
            errors.push(format!(
                "Account code '{code}' is not a valid code for this document."
            ));
        }
        if item_code.is_none() && account.is_none() && new_status == "AUTHORISED" {
            errors.push(format!("Line {n}: an account code must be specified"));
        }
        let tax = l["TaxType"].as_str().unwrap_or("NONE").to_string();
        let rate = match inner.cfg.tax_rates.get(&tax) {
            Some(r) => *r,
            None => {
                errors.push(format!("The TaxType code '{tax}' does not exist or cannot be used for this type of transaction."));
                Decimal::ZERO
            }
        };
        for t in l["Tracking"].as_array().into_iter().flatten() {
            let (cat, opt) = (
                t["Name"].as_str().unwrap_or_default(),
                t["Option"].as_str().unwrap_or_default(),
            );
            if !inner.cfg.tracking.get(cat).is_some_and(|o| o.contains(opt)) {
                errors.push(format!(
                    "The tracking option '{opt}' for category '{cat}' could not be found"
                ));
            }
        }
        subtotal += amount;
        *by_tax.entry(tax.clone()).or_default() += amount;
        let mut ol = l.clone();
        ol["LineItemID"] = json!(
            l["LineItemID"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(uuid)
        );
        ol["Quantity"] = num(qty);
        ol["UnitAmount"] = num(unit);
        ol["LineAmount"] = num(amount);
        ol["TaxType"] = json!(tax);
        ol["TaxAmount"] = num(round2(amount * rate / Decimal::from(100)));
        out_lines.push(ol);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Tax rounded per tax type on the document total (the "round at the total" org setting).
    let tax: Decimal = by_tax
        .iter()
        .map(|(t, amt)| {
            round2(
                *amt * inner.cfg.tax_rates.get(t).copied().unwrap_or_default() / Decimal::from(100),
            )
        })
        .sum();
    let total = subtotal + tax;
    let paid = dec(&d["AmountPaid"]).unwrap_or_default();
    d["LineItems"] = Value::Array(out_lines);
    d["SubTotal"] = num(subtotal);
    d["TotalTax"] = num(tax);
    d["Total"] = num(total);
    d["Status"] = json!(new_status);
    if credit {
        d["RemainingCredit"] = num(total);
        if let Value::Object(m) = &mut d {
            m.remove("AmountPaid");
        }
    } else {
        d["AmountDue"] = num(total - paid);
        d["AmountPaid"] = num(paid);
    }
    d["UpdatedDateUTC"] = json!(now_ms());
    d["HasErrors"] = json!(false);
    Ok(d)
}
