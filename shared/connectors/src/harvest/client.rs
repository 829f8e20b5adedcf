//! Harvest v2 REST client: `Authorization: Bearer` with `Harvest-Account-Id`,
//! a `User-Agent` naming the integration, `per_page` (up to 2,000) paging that
//! follows `links.next`, and `updated_since` / `from` / `to` filters.
//! Reference: https://help.getharvest.com/api-v2/introduction/overview/pagination/

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use ferry_canon::Domain;
use ferry_core::ConnectorError;
use ferry_core::ports::{CallGate, RateLimits, Secret};
use reqwest::{Method, RequestBuilder, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::config::HarvestConfig;
use super::raw;
use crate::api::{Api, Vendor};
use crate::credential::Credential;

/// Harvest's limit is 100 requests per 15 seconds per token; Ferry keeps to
/// 100 a minute, so no 15 seconds of it can exceed Harvest's.
/// (`../shared/docs/VENDORS.md` [H3]: 100 per 15 s, 429 with `Retry-After`.)
pub const LIMITS: RateLimits = RateLimits {
    per_minute: 100,
    per_day: 100 * 60 * 24,
    concurrent: CONCURRENT,
};

/// Calls in flight at once from one process.
const CONCURRENT: u32 = 4;

/// How often a list read restarts when records are added or removed while it pages.
const SCAN_ATTEMPTS: usize = 3;

/// Thin HTTP client; one per tenant connection.
pub struct Client {
    pub(crate) cfg: HarvestConfig,
    api: Api<HarvestApi>,
}

/// What Harvest adds to the shared client: its two auth headers, the
/// integration's `User-Agent`, and its error shapes.
struct HarvestApi {
    token: Credential,
    account_id: String,
    user_agent: String,
}

#[async_trait]
impl Vendor for HarvestApi {
    type Credential = Secret;

    fn name(&self) -> &'static str {
        "harvest"
    }

    async fn credential(&self) -> Result<Secret, ConnectorError> {
        self.token.get().await
    }

    fn authorize(&self, req: RequestBuilder, token: &Secret) -> RequestBuilder {
        req.bearer_auth(token.expose())
            .header("Harvest-Account-Id", &self.account_id)
            .header(reqwest::header::USER_AGENT, &self.user_agent)
            .header(reqwest::header::ACCEPT, "application/json")
    }

    fn error_text(&self, body: &Value) -> Option<String> {
        let e: raw::Error = serde_json::from_value(body.clone()).ok()?;
        e.error_description.or(e.message).or(e.error)
    }
}

/// The collection path (also its JSON key) of a domain.
pub fn collection(domain: Domain) -> Option<&'static str> {
    Some(match domain {
        Domain::Customers => "clients",
        Domain::Projects => "projects",
        Domain::Resources => "users",
        Domain::TimeEntries => "time_entries",
        Domain::Expenses => "expenses",
        Domain::Invoices => "invoices",
        _ => return None,
    })
}

fn no_such(domain: Domain) -> ConnectorError {
    ConnectorError::Config {
        message: format!("Harvest has no {domain}"),
    }
}

/// Harvest's `updated_since`: ISO 8601 in UTC.
pub fn since(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Client {
    /// `gate`: the account's rate budget (Harvest allows 100 requests per 15 s).
    pub fn new(cfg: HarvestConfig, token: Credential, gate: Option<Arc<dyn CallGate>>) -> Self {
        let api = Api::new(
            HarvestApi {
                token,
                account_id: cfg.account_id.clone(),
                user_agent: cfg.user_agent.clone(),
            },
            Duration::from_secs(cfg.timeout_seconds),
            gate,
            Some(CONCURRENT),
        );
        Client { cfg, api }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.cfg.base_url.trim_end_matches('/'))
    }

    /// `GET` a JSON object; `None` on 404.
    async fn get(
        &self,
        url: &str,
        query: &[(String, String)],
    ) -> Result<Option<Value>, ConnectorError> {
        let req = self.api.request(Method::GET, url).query(query);
        let answer = self.api.send(req, &[StatusCode::NOT_FOUND]).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        // Every read answers a JSON object: an empty body is neither a deleted
        // record nor an empty page.
        if !answer.body.is_object() {
            return Err(ConnectorError::protocol(format!(
                "Harvest answered {} to GET {url} without a JSON object: {:?}",
                answer.status,
                answer.text.chars().take(200).collect::<String>()
            )));
        }
        Ok(Some(answer.body))
    }

    /// One record: `GET /<collection>/<id>`.
    pub async fn one(&self, domain: Domain, id: &str) -> Result<Option<Value>, ConnectorError> {
        let path = collection(domain).ok_or_else(|| no_such(domain))?;
        if id.parse::<u64>().is_err() {
            return Err(ConnectorError::protocol(format!(
                "{id:?} is not a Harvest id"
            )));
        }
        self.get(&self.url(&format!("{path}/{id}")), &[]).await
    }

    /// Every record of a domain matching `filters`, over all pages.
    pub async fn all(
        &self,
        domain: Domain,
        filters: &[(&str, String)],
    ) -> Result<Vec<Value>, ConnectorError> {
        let path = collection(domain).ok_or_else(|| no_such(domain))?;
        self.scan(path, path, filters).await
    }

    /// Every task assignment of every project (`GET /task_assignments`).
    pub async fn task_assignments(&self) -> Result<Vec<Value>, ConnectorError> {
        self.all_of("task_assignments", "task_assignments").await
    }

    /// Every record of a list that is not a domain's (`projects/7/task_assignments`).
    pub async fn all_of(&self, path: &str, key: &str) -> Result<Vec<Value>, ConnectorError> {
        self.scan(path, key, &[]).await
    }

    /// Records of `domain` dated in `[from, to]`.
    pub async fn dated(
        &self,
        domain: Domain,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Value>, ConnectorError> {
        self.all(
            domain,
            &[("from", from.to_string()), ("to", to.to_string())],
        )
        .await
    }

    /// Every record of `/<path>` matching `filters`, following `links.next`.
    /// Harvest pages by position, so a record added or removed mid-read can
    /// shift one past a page boundary: a read whose `total_entries` changed, or
    /// that ended short of it, starts again. A next link to another origin is
    /// never followed (it would carry the token there).
    async fn scan(
        &self,
        path: &str,
        key: &str,
        filters: &[(&str, String)],
    ) -> Result<Vec<Value>, ConnectorError> {
        let first = self.url(path);
        let mut query: Vec<(String, String)> = filters
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        query.push(("per_page".into(), self.cfg.page_size.to_string()));
        'scan: for _ in 0..SCAN_ATTEMPTS {
            let mut byid: BTreeMap<i64, Value> = BTreeMap::new();
            let mut seen = 0u64;
            let mut total: Option<u64> = None;
            let mut next = Some((first.clone(), query.clone()));
            let mut pages = 0u64;
            while let Some((url, q)) = next.take() {
                pages += 1;
                let body = self.get(&url, &q).await?.ok_or_else(|| {
                    ConnectorError::protocol(format!("Harvest {url} answered 404"))
                })?;
                let page: raw::Page = serde_json::from_value(body)
                    .map_err(|e| ConnectorError::protocol(format!("Harvest {path} page: {e}")))?;
                if total.is_some() && total != page.total_entries {
                    continue 'scan;
                }
                total = page.total_entries;
                let Some(Value::Array(items)) = page.rest.get(key) else {
                    return Err(ConnectorError::protocol(format!(
                        "Harvest {path} page without a {key} list"
                    )));
                };
                seen += items.len() as u64;
                for item in items {
                    let id = item.get("id").and_then(Value::as_i64).ok_or_else(|| {
                        ConnectorError::protocol(format!("Harvest {path} record without an id"))
                    })?;
                    byid.insert(id, item.clone());
                }
                let limit =
                    total.map_or(u64::MAX, |t| t / u64::from(self.cfg.page_size.max(1)) + 2);
                if pages > limit {
                    return Err(ConnectorError::protocol(format!(
                        "Harvest {path}: links.next went on past {pages} pages for {total:?} records"
                    )));
                }
                next = match page.links.next {
                    Some(link) if !items.is_empty() => Some((self.same_origin(&link)?, Vec::new())),
                    _ => None,
                };
            }
            match total {
                // Short (a record removed mid-read) or long (added): read again.
                Some(t) if seen != t || byid.len() as u64 != t => continue 'scan,
                _ => return Ok(byid.into_values().collect()),
            }
        }
        Err(ConnectorError::transient(format!(
            "Harvest {path} kept changing while Ferry read it; trying again later"
        )))
    }

    /// A `links.next` URL, only on the configured API's origin.
    fn same_origin(&self, link: &str) -> Result<String, ConnectorError> {
        let base = url::Url::parse(&self.cfg.base_url).map_err(|e| ConnectorError::Config {
            message: format!("harvest base_url: {e}"),
        })?;
        let next = url::Url::parse(link)
            .map_err(|e| ConnectorError::protocol(format!("Harvest links.next {link:?}: {e}")))?;
        if next.origin() != base.origin()
            || !next.path().starts_with(base.path().trim_end_matches('/'))
        {
            return Err(ConnectorError::protocol(format!(
                "Harvest links.next {link:?} leaves {}; not followed",
                self.cfg.base_url
            )));
        }
        Ok(link.to_string())
    }

    /// What Harvest records as paid on an invoice (the sum of its payments);
    /// `None` when Harvest has no such invoice. One page: an invoice has a
    /// handful of payments, far fewer than a page holds.
    pub async fn paid(&self, invoice_id: &str) -> Result<Option<Decimal>, ConnectorError> {
        if invoice_id.parse::<u64>().is_err() {
            return Err(ConnectorError::protocol(format!(
                "{invoice_id:?} is not a Harvest id"
            )));
        }
        let path = format!("invoices/{invoice_id}/payments");
        let query = [("per_page".to_string(), self.cfg.page_size.to_string())];
        let Some(body) = self.get(&self.url(&path), &query).await? else {
            return Ok(None);
        };
        let page: raw::Page = serde_json::from_value(body)
            .map_err(|e| ConnectorError::protocol(format!("Harvest {path}: {e}")))?;
        if page.links.next.is_some() {
            return Err(ConnectorError::protocol(format!(
                "Harvest {path}: more payments than a page holds"
            )));
        }
        let Some(Value::Array(items)) = page.rest.get("invoice_payments") else {
            return Err(ConnectorError::protocol(format!(
                "Harvest {path} without an invoice_payments list"
            )));
        };
        items
            .iter()
            .map(|p| {
                serde_json::from_value::<raw::Payment>(p.clone())
                    .map(|p| p.amount.unwrap_or_default())
                    .map_err(|e| ConnectorError::protocol(format!("Harvest {path}: {e}")))
            })
            .sum::<Result<Decimal, _>>()
            .map(Some)
    }

    /// `POST /invoices/{id}/payments`.
    pub async fn add_payment(
        &self,
        invoice_id: &str,
        amount: Decimal,
        paid_date: Option<NaiveDate>,
        notes: &str,
    ) -> Result<(), ConnectorError> {
        let mut body = json!({ "amount": crate::json::number(amount), "notes": notes });
        if let Some(d) = paid_date {
            body["paid_date"] = json!(d.to_string());
        }
        let req = self
            .api
            .request(
                Method::POST,
                &self.url(&format!("invoices/{invoice_id}/payments")),
            )
            .json(&body);
        self.api.send(req, &[]).await.map(drop)
    }
}
