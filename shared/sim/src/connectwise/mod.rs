//! A ConnectWise PSA simulator: a real HTTP server on loopback holding records,
//! serving the REST API (Basic + clientId auth, `conditions`, `orderBy`,
//! `page`/`pageSize` up to 1,000), accepting invoice payments, and sending signed
//! callbacks (`x-content-signature`, key served at the callback key URL) with
//! fault knobs: duplicate and out-of-order deliveries, 5xx and 429 bursts.
//! ConnectWise documents no hard rate limit; `max_per_second` makes one.

mod api;
mod callbacks;
pub mod stage;

use api::*;
pub use callbacks::sign;
use callbacks::*;

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
