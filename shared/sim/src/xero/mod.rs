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
//!
//! Size: the organisation's setup, fault knobs and the simulator's handle (what
//! tests and the demo call); the API is in `api`, `handlers`, `validate`.

mod api;
mod auth;
mod handlers;
pub mod stage;
mod validate;
pub mod where_clause;

use api::*;
use auth::*;
use handlers::*;
use validate::*;

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
