//! A Dynamics 365 Business Central (API v2.0) simulator: a real HTTP server on
//! loopback holding one company's customers, sales invoices and sales credit
//! memos, served as OData v4 JSON: Microsoft Entra client credentials (the
//! token endpoint is here too), `$filter` (`eq`, `gt`, `ge`, `le`, `and`),
//! `$expand` of document lines, `$select`, server paging by `@odata.nextLink`,
//! etags checked on every change (`If-Match`; `*` matches any), the bound
//! actions `Microsoft.NAV.post` and `Microsoft.NAV.cancel`, JSON `$batch` of
//! up to 100 operations (`Isolation: snapshot`: all or nothing), 6,000 requests
//! per five minutes (429 with `Retry-After`), accounting periods, and webhook
//! subscriptions: created and renewed only after the endpoint echoes a
//! `validationToken`, three days long, notifications carrying `clientState`,
//! and a `collection` notification when many documents change at once.
//!
//! Facts from `../shared/docs/VENDORS.md` [B1]-[B6]. The simulator's own (‡):
//! error wording, the etag format, notifications sent at once (Business Central
//! waits 30 seconds), and document numbers.

mod api;
mod odata;
pub mod stage;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{any, post};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::connectwise::VendorClock;
use crate::num;
use crate::server::{self, Server};

/// The company as it is set up.
#[derive(Debug, Clone)]
pub struct BcSimConfig {
    pub tenant_id: String,
    pub company_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Item numbers.
    pub items: BTreeSet<String>,
    /// G/L account numbers lines may post to.
    pub accounts: BTreeSet<String>,
    /// Tax group codes, with their rate in percent.
    pub tax_groups: BTreeMap<String, Decimal>,
    /// Dimension codes and their values.
    pub dimensions: BTreeMap<String, BTreeSet<String>>,
    /// Accounting periods are closed through this date.
    pub closed_through: Option<NaiveDate>,
    /// Entities per page.
    pub page_size: usize,
    /// Requests per five-minute window before 429.
    pub per_five_minutes: usize,
}

impl Default for BcSimConfig {
    fn default() -> Self {
        BcSimConfig {
            tenant_id: "ferry-demo-tenant".into(),
            company_id: "c0ffee00-0000-4000-8000-000000000001".into(),
            client_id: "ferry-bc-app".into(),
            client_secret: "bc-client-secret-demo".into(),
            items: BTreeSet::new(),
            accounts: BTreeSet::new(),
            tax_groups: BTreeMap::new(),
            dimensions: BTreeMap::new(),
            closed_through: None,
            page_size: 100,
            per_five_minutes: 6000,
        }
    }
}

/// Fault knobs; counters are consumed as faults fire.
#[derive(Debug, Clone, Default)]
pub struct BcFaults {
    pub fail_next: u32,
    pub throttle_next: u32,
    pub garbage_next: u32,
    /// Announce the next change as a `collection` notification.
    pub collection_next: u32,
}

#[derive(Default)]
struct Data {
    customers: BTreeMap<String, Value>,
    /// Sales invoices and credit memos by entity name, then id.
    documents: BTreeMap<&'static str, BTreeMap<String, Value>>,
    subscriptions: BTreeMap<String, Value>,
    tokens: BTreeMap<String, DateTime<Utc>>,
    version: u64,
    numbers: u64,
}

struct Inner {
    cfg: BcSimConfig,
    clock: Mutex<Option<VendorClock>>,
    origin: Mutex<String>,
    data: Mutex<Data>,
    faults: Mutex<BcFaults>,
    recent: Mutex<VecDeque<Instant>>,
    requests: AtomicU64,
    notifications: AtomicU64,
    http: reqwest::Client,
}

/// A running simulator.
#[derive(Clone)]
pub struct BcSim {
    inner: Arc<Inner>,
    server: Arc<Server>,
}

/// The documents the simulator holds, by entity.
pub const DOCUMENTS: [&str; 2] = ["salesInvoices", "salesCreditMemos"];

impl BcSim {
    pub async fn start(cfg: BcSimConfig) -> std::io::Result<BcSim> {
        Self::start_on(cfg, "127.0.0.1:0".parse().expect("valid address")).await
    }

    pub async fn start_on(cfg: BcSimConfig, addr: SocketAddr) -> std::io::Result<BcSim> {
        let inner = Arc::new(Inner {
            cfg,
            clock: Mutex::new(None),
            origin: Mutex::new(String::new()),
            data: Mutex::new(Data::default()),
            faults: Mutex::new(BcFaults::default()),
            recent: Mutex::new(VecDeque::new()),
            requests: AtomicU64::new(0),
            notifications: AtomicU64::new(0),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("static client"),
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(api::token))
            .route("/api/v2.0/{*rest}", any(api::serve))
            .with_state(inner.clone());
        let server = server::serve(app, addr).await?;
        *inner.origin.lock().expect("not poisoned") = server.origin();
        Ok(BcSim {
            inner,
            server: Arc::new(server),
        })
    }

    /// API v2.0's root (`base_url`).
    pub fn base_url(&self) -> String {
        format!("{}/api/v2.0", self.server.origin())
    }

    /// The token endpoint (`token_url`).
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.server.origin(),
            self.inner.cfg.tenant_id
        )
    }

    pub fn config(&self) -> &BcSimConfig {
        &self.inner.cfg
    }

    pub fn set_faults(&self, f: BcFaults) {
        *self.inner.faults.lock().expect("not poisoned") = f;
    }

    pub fn set_clock(&self, clock: VendorClock) {
        *self.inner.clock.lock().expect("not poisoned") = Some(clock);
    }

    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    pub fn notifications_sent(&self) -> u64 {
        self.inner.notifications.load(Ordering::Relaxed)
    }

    pub fn customers(&self) -> Vec<Value> {
        let d = self.inner.data.lock().expect("not poisoned");
        d.customers.values().cloned().collect()
    }

    /// Documents of an entity (`salesInvoices`, `salesCreditMemos`).
    pub fn documents(&self, entity: &str) -> Vec<Value> {
        let d = self.inner.data.lock().expect("not poisoned");
        d.documents
            .get(entity)
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn subscriptions(&self) -> Vec<Value> {
        let d = self.inner.data.lock().expect("not poisoned");
        d.subscriptions.values().cloned().collect()
    }

    /// Finance posts the draft with `external` as its external document number.
    pub async fn post_draft(&self, external: &str) -> bool {
        let id = {
            let d = self.inner.data.lock().expect("not poisoned");
            d.documents.get("salesInvoices").and_then(|t| {
                t.values()
                    .find(|v| v["externalDocumentNumber"] == external && v["status"] == "Draft")
                    .and_then(|v| v["id"].as_str().map(String::from))
            })
        };
        let Some(id) = id else { return false };
        let done = odata::post_document(&self.inner, "salesInvoices", &id).0 < 300;
        if done {
            notify(&self.inner, &id).await;
        }
        done
    }

    /// A customer pays `amount` of a posted invoice on `date`.
    pub async fn pay(&self, id: &str, amount: Decimal, _date: NaiveDate) -> Result<(), String> {
        {
            let stamp = now(&self.inner);
            let mut d = self.inner.data.lock().expect("not poisoned");
            d.version += 1;
            let version = d.version;
            let inv = d
                .documents
                .get_mut("salesInvoices")
                .and_then(|t| t.get_mut(id))
                .ok_or_else(|| format!("no invoice {id}"))?;
            if inv["status"] != "Open" {
                return Err(format!("invoice {id} is {}, not open", inv["status"]));
            }
            let left = dec(&inv["remainingAmount"]);
            if amount <= Decimal::ZERO || amount > left {
                return Err(format!("{amount} is not between 0 and the {left} due"));
            }
            let rest = left - amount;
            inv["remainingAmount"] = num(rest);
            if rest.is_zero() {
                inv["status"] = json!("Paid");
            }
            inv["lastModifiedDateTime"] = json!(stamp);
            inv["@odata.etag"] = json!(etag(version));
        }
        notify(&self.inner, id).await;
        Ok(())
    }
}

fn now_at(inner: &Inner) -> DateTime<Utc> {
    let custom = inner.clock.lock().expect("not poisoned").clone();
    custom.map(|c| c()).unwrap_or_else(crate::vendor_now)
}

fn now(inner: &Inner) -> String {
    now_at(inner).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn etag(version: u64) -> String {
    format!("W/\"JzE7{version}Oyc=\"")
}

fn dec(v: &Value) -> Decimal {
    match v {
        Value::Number(n) => n.to_string().parse().unwrap_or_default(),
        Value::String(s) => s.parse().unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

/// OData's error body.
fn error(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

/// Tells every live subscription to the company's sales invoices that `id` changed.
async fn notify(inner: &Arc<Inner>, id: &str) {
    let resource = format!("api/v2.0/companies({})/salesInvoices", inner.cfg.company_id);
    let at = now_at(inner);
    let collection = {
        let mut f = inner.faults.lock().expect("not poisoned");
        let c = f.collection_next > 0;
        if c {
            f.collection_next -= 1;
        }
        c
    };
    let subs: Vec<Value> = {
        let d = inner.data.lock().expect("not poisoned");
        d.subscriptions
            .values()
            .filter(|s| s["resource"] == resource.as_str())
            .filter(|s| {
                s["expirationDateTime"]
                    .as_str()
                    .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
                    .is_some_and(|e| e > at)
            })
            .cloned()
            .collect()
    };
    for s in subs {
        let since = (at - chrono::Duration::seconds(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
        let (res, change) = if collection {
            (
                format!("{resource}?$filter=lastModifiedDateTime gt {since}"),
                "collection",
            )
        } else {
            (format!("{resource}({id})"), "updated")
        };
        let body = json!({ "value": [{
            "subscriptionId": s["subscriptionId"], "clientState": s["clientState"],
            "expirationDateTime": s["expirationDateTime"], "resource": res,
            "changeType": change, "lastModifiedDateTime": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }] });
        if let Some(url) = s["notificationUrl"].as_str() {
            let sent = inner.http.post(url).json(&body).send().await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                inner.notifications.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
