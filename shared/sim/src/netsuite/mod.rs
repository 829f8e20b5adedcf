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

mod api;
mod auth;
mod jobs;
mod records;
pub mod stage;
mod suiteql;

use api::*;
use auth::*;
use jobs::*;
use records::*;

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
