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

/// Harvest's error body (`{code, message}` in its OpenAPI).
fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": status.as_u16(), "message": message })),
    )
        .into_response()
}

fn unauthorised() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({
            "error": "invalid_token",
            "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons."
        })),
    )
        .into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Admission: faults first, then the rate limit, then the headers Harvest requires.
fn admit(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    {
        let mut f = inner.faults.lock().expect("not poisoned");
        if f.fail_next > 0 {
            f.fail_next -= 1;
            return Some(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "simulated failure",
            ));
        }
        if f.throttle_next > 0 {
            f.throttle_next -= 1;
            return Some(
                (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response(),
            );
        }
        if f.garbage_next > 0 {
            f.garbage_next -= 1;
            return Some((StatusCode::OK, "<html>maintenance</html>").into_response());
        }
    }
    if let Some((max, window)) = inner.cfg.limit {
        let mut recent = inner.recent.lock().expect("not poisoned");
        let at = Instant::now();
        while recent
            .front()
            .is_some_and(|t| at.duration_since(*t) >= window)
        {
            recent.pop_front();
        }
        if recent.len() >= max as usize {
            let wait = recent
                .front()
                .map(|t| window.saturating_sub(at.duration_since(*t)).as_secs() + 1)
                .unwrap_or(1);
            return Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", wait.to_string())],
                    axum::Json(json!({ "code": 429, "message": "Too Many Requests" })),
                )
                    .into_response(),
            );
        }
        recent.push_back(at);
    }
    let bearer = format!("Bearer {}", inner.cfg.token);
    if header(headers, "authorization") != bearer
        || header(headers, "harvest-account-id") != inner.cfg.account_id
    {
        return Some(unauthorised());
    }
    if header(headers, "user-agent").trim().is_empty() {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "Please include a User-Agent header naming your application and a contact",
        ));
    }
    None
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
    let request = serde_json::from_slice::<Value>(&body).ok();
    let path = rest.trim_matches('/').to_string();
    let (status, response) = route(&inner, &method, &path, &q, request.as_ref());
    inner
        .exchanges
        .lock()
        .expect("not poisoned")
        .push(Exchange {
            method: method.to_string(),
            path,
            query: q,
            request,
            status: status.as_u16(),
            response: response.clone(),
        });
    (status, axum::Json(response)).into_response()
}

fn not_found() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({ "code": 404, "message": "Not found" }),
    )
}

fn route(
    inner: &Inner,
    method: &Method,
    path: &str,
    q: &BTreeMap<String, String>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let parts: Vec<&str> = path.split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::GET, [name]) => match table(name) {
            Some(name) => list(inner, name, name, q, |_| true),
            None => not_found(),
        },
        (&Method::GET, [name, id]) => {
            let (Some(name), Ok(id)) = (table(name), id.parse::<i64>()) else {
                return not_found();
            };
            let d = inner.data.lock().expect("not poisoned");
            match d.tables.get(name).and_then(|t| t.get(&id)) {
                Some(r) => (StatusCode::OK, r.clone()),
                None => not_found(),
            }
        }
        (&Method::GET, ["projects", id, "task_assignments"]) => {
            let Ok(id) = id.parse::<i64>() else {
                return not_found();
            };
            list(inner, "task_assignments", "task_assignments", q, |a| {
                a.pointer("/project/id").and_then(Value::as_i64) == Some(id)
            })
        }
        (&Method::GET, ["invoices", id, "payments"]) => {
            let Ok(id) = id.parse::<i64>() else {
                return not_found();
            };
            let items = {
                let d = inner.data.lock().expect("not poisoned");
                if d.tables
                    .get("invoices")
                    .is_none_or(|t| !t.contains_key(&id))
                {
                    return not_found();
                }
                d.payments.get(&id).cloned().unwrap_or_default()
            };
            page_of(
                inner,
                "invoice_payments",
                &format!("invoices/{id}/payments"),
                items,
                q,
            )
        }
        (&Method::POST, ["invoices", id, "payments"]) => match id.parse::<i64>() {
            Ok(id) => pay(inner, id, body),
            Err(_) => not_found(),
        },
        _ => not_found(),
    }
}

/// The date a list filters and sorts by (`from`/`to`), where it has one.
fn dated_by(name: &str) -> Option<&'static str> {
    match name {
        "time_entries" | "expenses" => Some("spent_date"),
        "invoices" => Some("issue_date"),
        _ => None,
    }
}

fn list(
    inner: &Inner,
    name: &'static str,
    path: &str,
    q: &BTreeMap<String, String>,
    keep: impl Fn(&Value) -> bool,
) -> (StatusCode, Value) {
    let since = match q.get("updated_since") {
        None => None,
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({ "code": 422, "message": format!("updated_since {s:?} is not an ISO 8601 time") }),
                );
            }
        },
    };
    let day = |k: &str| q.get(k).map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d"));
    let (from, to) = match (day("from").transpose(), day("to").transpose()) {
        (Ok(f), Ok(t)) => (f, t),
        _ => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "code": 422, "message": "from and to must be dates (YYYY-MM-DD)" }),
            );
        }
    };
    let date_field = dated_by(name);
    let mut items: Vec<Value> = {
        let d = inner.data.lock().expect("not poisoned");
        d.tables
            .get(name)
            .map(|t| t.values().filter(|r| keep(r)).cloned().collect())
            .unwrap_or_default()
    };
    items.retain(|r| {
        let updated = r
            .get("updated_at")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        let date = date_field
            .and_then(|f| r.get(f))
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
        since.is_none_or(|s| updated.is_some_and(|u| u >= s))
            && from.is_none_or(|f| date.is_some_and(|d| d >= f))
            && to.is_none_or(|t| date.is_some_and(|d| d <= t))
    });
    // Newest first: by date where the list has one, else by creation; then id.
    let sort_key = |r: &Value| {
        let at = date_field
            .or(Some("created_at"))
            .and_then(|f| r.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        (at, r.get("id").and_then(Value::as_i64).unwrap_or_default())
    };
    items.sort_by_key(|r| std::cmp::Reverse(sort_key(r)));
    let (status, page) = page_of(inner, name, path, items, q);
    if status == StatusCode::OK && page["page"] == json!(1) && page["links"]["next"].is_string() {
        let grow = {
            let mut f = inner.faults.lock().expect("not poisoned");
            let g = f.grow_after_first_page > 0;
            if g {
                f.grow_after_first_page -= 1;
            }
            g
        };
        if grow && let Some(last) = page[name].as_array().and_then(|a| a.first()).cloned() {
            // A copy of the newest record under a new id: it sorts first, shifting every page.
            let mut copy = last;
            copy.as_object_mut().map(|o| o.remove("id"));
            let stamp = now(inner);
            let mut d = inner.data.lock().expect("not poisoned");
            put(&mut d, name, copy, &stamp);
        }
    }
    (status, page)
}

/// One page of `items` as Harvest shapes a list answer.
fn page_of(
    inner: &Inner,
    key: &str,
    path: &str,
    items: Vec<Value>,
    q: &BTreeMap<String, String>,
) -> (StatusCode, Value) {
    let per_page = match q.get("per_page").map(|s| s.parse::<usize>()) {
        None => MAX_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "code": 422, "message": format!("per_page must be between 1 and {MAX_PAGE}") }),
            );
        }
    };
    let page = match q.get("page").map(|s| s.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "code": 422, "message": "page must be a positive number" }),
            );
        }
    };
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let foreign = inner.faults.lock().expect("not poisoned").foreign_next_link;
    let origin = if foreign {
        "http://203.0.113.9".to_string()
    } else {
        inner.origin.lock().expect("not poisoned").clone()
    };
    let link = |p: usize| {
        let mut u = url::Url::parse(&format!("{origin}{API_ROOT}/{path}")).expect("valid URL");
        u.query_pairs_mut()
            .append_pair("page", &p.to_string())
            .append_pair("per_page", &per_page.to_string());
        for (k, v) in q
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "page" | "per_page"))
        {
            u.query_pairs_mut().append_pair(k, v);
        }
        u.to_string()
    };
    let next = (page < total_pages).then(|| page + 1);
    let previous = (page > 1).then(|| page - 1);
    let mut answer = json!({
        "per_page": per_page,
        "total_pages": total_pages,
        "total_entries": total,
        "next_page": next,
        "previous_page": previous,
        "page": page,
        "links": {
            "first": link(1),
            "next": next.map(link),
            "previous": previous.map(link),
            "last": link(total_pages),
        },
    });
    answer[key] = Value::Array(slice);
    (StatusCode::OK, answer)
}

/// `POST /invoices/{id}/payments`: records a payment and moves the invoice's
/// due amount and state.
fn pay(inner: &Inner, id: i64, body: Option<&Value>) -> (StatusCode, Value) {
    let amount = body
        .and_then(|b| b.get("amount"))
        .and_then(|a| a.as_number())
        .and_then(|n| n.to_string().parse::<Decimal>().ok());
    let Some(amount) = amount.filter(|a| *a > Decimal::ZERO) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "code": 422, "message": "Amount must be greater than 0" }),
        );
    };
    let stamp = now(inner);
    let today = now_at(inner).date_naive().to_string();
    let mut d = inner.data.lock().expect("not poisoned");
    let Some(mut invoice) = d.tables.get("invoices").and_then(|t| t.get(&id)).cloned() else {
        return not_found();
    };
    let due = invoice
        .get("due_amount")
        .and_then(Value::as_number)
        .and_then(|n| n.to_string().parse::<Decimal>().ok())
        .unwrap_or_default();
    if amount > due {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "code": 422, "message": format!("Amount is more than the {due} due") }),
        );
    }
    d.next_id += 1;
    let payment = json!({
        "id": d.next_id,
        "amount": num(amount),
        "paid_at": stamp,
        "paid_date": body.and_then(|b| b.get("paid_date")).cloned().unwrap_or(json!(today)),
        "recorded_by": "Ferry",
        "recorded_by_email": null,
        "notes": body.and_then(|b| b.get("notes")).cloned().unwrap_or(Value::Null),
        "transaction_id": null,
        "payment_gateway": null,
        "created_at": stamp,
        "updated_at": stamp,
    });
    d.payments.entry(id).or_default().push(payment.clone());
    let left = due - amount;
    invoice["due_amount"] = num(left);
    if left.is_zero() {
        invoice["state"] = json!("paid");
        invoice["paid_at"] = json!(stamp);
        invoice["paid_date"] = payment["paid_date"].clone();
    }
    put(&mut d, "invoices", invoice, &stamp);
    (StatusCode::CREATED, payment)
}
