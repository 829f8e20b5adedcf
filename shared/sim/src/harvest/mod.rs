//! A Harvest v2 simulator: a real HTTP server on loopback holding clients,
//! projects, task assignments, users, time entries, expenses, invoices and
//! invoice payments, served as the MIT OpenAPI in `specs/harvest/` describes
//! them: `Authorization: Bearer` plus `Harvest-Account-Id`, a required
//! `User-Agent`, `updated_since` / `from` / `to` filters, `page` / `per_page`
//! (1 to 2,000) paging with `links.next`, time sorted by date (newest first),
//! and the documented limit of 100 requests per 15 seconds (429 with
//! `Retry-After`). Harvest sends no webhooks. Fault knobs: 5xx and 429 bursts,
//! a record added between two pages, bodies that are not JSON, and a
//! `links.next` that points at another host.
//! Reference: https://help.getharvest.com/api-v2/

mod api;
mod lists;
pub mod stage;

use api::*;
use lists::*;

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
use axum::routing::any;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::connectwise::VendorClock;
use crate::num;
use crate::server::{self, Server};

/// The collections the simulator holds, by their path (also their JSON key).
pub const COLLECTIONS: [&str; 7] = [
    "clients",
    "projects",
    "task_assignments",
    "users",
    "time_entries",
    "expenses",
    "invoices",
];

/// Harvest's largest page.
pub const MAX_PAGE: usize = 2000;

/// Credentials the simulator accepts, and its limit.
#[derive(Debug, Clone)]
pub struct HarvestSimConfig {
    pub account_id: String,
    pub token: String,
    /// Requests per window before answering 429 (Harvest: 100 per 15 s); `None` = unlimited.
    pub limit: Option<(u32, Duration)>,
}

impl Default for HarvestSimConfig {
    fn default() -> Self {
        HarvestSimConfig {
            account_id: "123456".into(),
            token: "harvest-demo-token".into(),
            limit: Some((100, Duration::from_secs(15))),
        }
    }
}

/// Fault knobs. Counters are consumed as faults are injected.
#[derive(Debug, Clone, Default)]
pub struct HarvestFaults {
    /// Answer the next N requests with 500.
    pub fail_next: u32,
    /// Answer the next N requests with 429.
    pub throttle_next: u32,
    /// Answer the next N requests with 200 and a body that is not JSON.
    pub garbage_next: u32,
    /// After serving the next first page of a list, add a record to that list
    /// (someone logged time while Ferry paged).
    pub grow_after_first_page: u32,
    /// Point `links.next` at another host.
    pub foreign_next_link: bool,
}

/// One request and the answer given, for contract tests.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// The path under the API root, e.g. `time_entries` or `invoices/7/payments`.
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub request: Option<Value>,
    pub status: u16,
    pub response: Value,
}

#[derive(Default)]
struct Data {
    tables: BTreeMap<&'static str, BTreeMap<i64, Value>>,
    payments: BTreeMap<i64, Vec<Value>>,
    next_id: i64,
}

struct Inner {
    cfg: HarvestSimConfig,
    clock: Mutex<Option<VendorClock>>,
    origin: Mutex<String>,
    data: Mutex<Data>,
    faults: Mutex<HarvestFaults>,
    recent: Mutex<VecDeque<Instant>>,
    exchanges: Mutex<Vec<Exchange>>,
    requests: AtomicU64,
}

/// A running simulator.
#[derive(Clone)]
pub struct HarvestSim {
    inner: Arc<Inner>,
    server: Arc<Server>,
}

/// The API root under the server origin.
pub const API_ROOT: &str = "/v2";

fn table(name: &str) -> Option<&'static str> {
    COLLECTIONS.into_iter().find(|c| *c == name)
}

impl HarvestSim {
    /// Starts on an ephemeral loopback port.
    pub async fn start(cfg: HarvestSimConfig) -> std::io::Result<HarvestSim> {
        Self::start_on(cfg, "127.0.0.1:0".parse().expect("valid address")).await
    }

    pub async fn start_on(cfg: HarvestSimConfig, addr: SocketAddr) -> std::io::Result<HarvestSim> {
        let inner = Arc::new(Inner {
            cfg,
            clock: Mutex::new(None),
            origin: Mutex::new(String::new()),
            data: Mutex::new(Data {
                next_id: 5_000_000,
                ..Data::default()
            }),
            faults: Mutex::new(HarvestFaults::default()),
            recent: Mutex::new(VecDeque::new()),
            exchanges: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/v2/{*rest}", any(api))
            .with_state(inner.clone());
        let server = server::serve(app, addr).await?;
        *inner.origin.lock().expect("not poisoned") = server.origin();
        Ok(HarvestSim {
            inner,
            server: Arc::new(server),
        })
    }

    /// The API root (`http://127.0.0.1:port/v2`).
    pub fn base_url(&self) -> String {
        format!("{}{API_ROOT}", self.server.origin())
    }

    pub fn config(&self) -> &HarvestSimConfig {
        &self.inner.cfg
    }

    pub fn set_faults(&self, f: HarvestFaults) {
        *self.inner.faults.lock().expect("not poisoned") = f;
    }

    /// Where the simulator reads the time it stamps on records.
    pub fn set_clock(&self, clock: VendorClock) {
        *self.inner.clock.lock().expect("not poisoned") = Some(clock);
    }

    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    pub fn exchanges(&self) -> Vec<Exchange> {
        self.inner.exchanges.lock().expect("not poisoned").clone()
    }

    /// Stores a record in `collection` (as a person would enter it), stamping
    /// `updated_at` (and `created_at` when new). A record without an id gets one.
    /// Returns the stored record.
    pub fn put(&self, collection: &str, record: Value) -> Value {
        let name = table(collection).unwrap_or_else(|| panic!("no collection {collection}"));
        let stamp = now(&self.inner);
        let mut d = self.inner.data.lock().expect("not poisoned");
        put(&mut d, name, record, &stamp)
    }

    /// Changes fields of a record (as an edit in Harvest would), stamping `updated_at`.
    pub fn update(&self, collection: &str, id: i64, patch: Value) -> Option<Value> {
        let name = table(collection)?;
        let stamp = now(&self.inner);
        let mut d = self.inner.data.lock().expect("not poisoned");
        let mut r = d.tables.get(name)?.get(&id)?.clone();
        if let (Value::Object(r), Value::Object(p)) = (&mut r, patch) {
            r.extend(p);
        }
        Some(put(&mut d, name, r, &stamp))
    }

    /// Deletes a record; Harvest keeps no trace of it.
    pub fn delete(&self, collection: &str, id: i64) -> bool {
        let Some(name) = table(collection) else {
            return false;
        };
        let mut d = self.inner.data.lock().expect("not poisoned");
        d.tables.get_mut(name).and_then(|t| t.remove(&id)).is_some()
    }

    pub fn get(&self, collection: &str, id: i64) -> Option<Value> {
        let d = self.inner.data.lock().expect("not poisoned");
        d.tables.get(table(collection)?)?.get(&id).cloned()
    }

    pub fn all(&self, collection: &str) -> Vec<Value> {
        let d = self.inner.data.lock().expect("not poisoned");
        table(collection)
            .and_then(|n| d.tables.get(n))
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The payments recorded on an invoice.
    pub fn payments(&self, invoice_id: i64) -> Vec<Value> {
        let d = self.inner.data.lock().expect("not poisoned");
        d.payments.get(&invoice_id).cloned().unwrap_or_default()
    }
}

fn now_at(inner: &Inner) -> DateTime<Utc> {
    let custom = inner.clock.lock().expect("not poisoned").clone();
    custom.map(|c| c()).unwrap_or_else(crate::vendor_now)
}

fn now(inner: &Inner) -> String {
    now_at(inner).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn put(d: &mut Data, name: &'static str, mut r: Value, stamp: &str) -> Value {
    let id = match r.get("id").and_then(Value::as_i64) {
        Some(id) => id,
        None => {
            d.next_id += 1;
            d.next_id
        }
    };
    d.next_id = d.next_id.max(id);
    r["id"] = json!(id);
    let t = d.tables.entry(name).or_default();
    if r.get("created_at").is_none_or(Value::is_null) {
        let created = t
            .get(&id)
            .and_then(|old| old.get("created_at").cloned())
            .unwrap_or_else(|| json!(stamp));
        r["created_at"] = created;
    }
    r["updated_at"] = json!(stamp);
    t.insert(id, r.clone());
    r
}
