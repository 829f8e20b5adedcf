//! Tryton REST client (Tryton 8.x, `/<database>/rest/model/<model>[/<id>[/<method>]]`):
//! a user-application key as `Authorization: Bearer`, the company in
//! `X-Tryton-Context`, domains and field lists in the query string, and paging
//! with `Range: records=<first>-<end>` (`end` exclusive in Tryton 8: the server
//! reads it as `offset=first, limit=end-first`, and answers `Content-Range:
//! records <first>-<end>/<count or *>`). Validation errors are HTTP 400 with
//! `{"status": 400, "message": …, "description": …}`.
//! Reference: https://docs.tryton.org/8.0/server/topics/rest.html

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use ferry_core::ConnectorError;
use ferry_core::ports::{CallGate, Secret};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use super::config::TrytonConfig;
use crate::api::{Api, Vendor};
use crate::credential::Credential;

/// What Tryton answered to a write: done, or refused with its own words.
pub type Answer<T> = Result<T, String>;

/// Thin HTTP client; one per tenant connection.
pub struct Client {
    pub(crate) cfg: TrytonConfig,
    api: Api<TrytonApi>,
}

/// What Tryton adds to the shared client: the user-application key, the
/// company context, and its error shape.
struct TrytonApi {
    key: Credential,
    context: String,
}

#[async_trait]
impl Vendor for TrytonApi {
    type Credential = Secret;

    fn name(&self) -> &'static str {
        "tryton"
    }

    async fn credential(&self) -> Result<Secret, ConnectorError> {
        self.key.get().await
    }

    fn authorize(&self, req: RequestBuilder, key: &Secret) -> RequestBuilder {
        req.bearer_auth(key.expose())
            .header("X-Tryton-Context", &self.context)
            .header(reqwest::header::ACCEPT, "application/json")
    }

    fn error_text(&self, body: &Value) -> Option<String> {
        message(body)
    }
}

enum Reply {
    Ok(Value),
    Refused(String),
    NotFound,
}

/// The total of `Content-Range: records <first>-<end>/<total>`; `None` for `*`
/// or an absent or unreadable header.
fn range_total(headers: &HeaderMap) -> Option<usize> {
    let v = headers.get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    v.trim()
        .strip_prefix("records ")?
        .rsplit_once('/')?
        .1
        .trim()
        .parse()
        .ok()
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

impl Client {
    pub fn new(cfg: TrytonConfig, key: Credential, gate: Arc<dyn CallGate>) -> Self {
        let context = b64(&json!({ "company": cfg.company, "companies": [cfg.company] }));
        let api = Api::new(
            TrytonApi { key, context },
            Duration::from_secs(cfg.timeout_seconds),
            Some(gate),
            Some(cfg.concurrent),
        );
        Client { cfg, api }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/rest/model/{path}",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.database
        )
    }

    /// One call without a range.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply, ConnectorError> {
        Ok(self.exchange(method, path, query, body, None).await?.0)
    }

    /// One call through the shared client; with a range, also the total
    /// from `Content-Range`.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        range: Option<(usize, usize)>,
    ) -> Result<(Reply, Option<usize>), ConnectorError> {
        let mut req = self.api.request(method, &self.url(path)).query(query);
        if let Some((first, last)) = range {
            req = req.header(reqwest::header::RANGE, format!("records={first}-{last}"));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let answer = self
            .api
            .send(req, &[StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND])
            .await?;
        Ok(match answer.status {
            StatusCode::NOT_FOUND => (Reply::NotFound, None),
            StatusCode::BAD_REQUEST => (Reply::Refused(answer.message(&self.api.vendor)), None),
            _ => {
                let total = range.and_then(|_| range_total(&answer.headers));
                (Reply::Ok(answer.body), total)
            }
        })
    }

    fn fields(fields: &[&str]) -> Vec<(&'static str, String)> {
        fields.iter().map(|f| ("f", (*f).to_string())).collect()
    }

    /// `GET /model/<model>?d=<domain>&f=…` over every page, by keyset: each
    /// page is the first `page_size` records, in id order, with an id above the
    /// last one read. A record created or deleted between pages shifts nothing,
    /// and a server that ignores the range still moves on. The search ends on an
    /// empty page or when a page holds everything Tryton counted as left
    /// (`Content-Range`), never on a short page alone (a server may cap pages).
    pub async fn search(
        &self,
        model: &str,
        domain: &Value,
        fields: &[&str],
    ) -> Result<Vec<Value>, ConnectorError> {
        let page_size = self.cfg.page_size.max(1);
        let mut fields = fields.to_vec();
        if !fields.contains(&"id") {
            fields.push("id");
        }
        let order = ("o", b64(&json!([["id", "ASC"]])));
        let mut out: Vec<Value> = Vec::new();
        loop {
            let after = match out.last() {
                Some(last) => super::raw::id(last).ok_or_else(|| {
                    ConnectorError::protocol(format!(
                        "Tryton search on {model}: a record without an id"
                    ))
                })?,
                None => 0,
            };
            let mut query = Self::fields(&fields);
            query.push(("d", b64(&json!(["AND", domain, ["id", ">", after]]))));
            query.push(order.clone());
            let (items, left) = match self
                .exchange(Method::GET, model, &query, None, Some((0, page_size)))
                .await?
            {
                (Reply::Ok(Value::Array(items)), left) => (items, left),
                (Reply::Ok(other), _) => {
                    return Err(ConnectorError::protocol(format!(
                        "Tryton search on {model} answered {other} instead of a list"
                    )));
                }
                (Reply::Refused(m), _) => {
                    return Err(ConnectorError::Rejected {
                        status: 400,
                        message: m,
                    });
                }
                (Reply::NotFound, _) => {
                    return Err(ConnectorError::Config {
                        message: format!("Tryton has no model {model} (is its module activated?)"),
                    });
                }
            };
            let n = items.len();
            out.extend(items);
            if n == 0 || left.is_some_and(|t| n >= t) {
                return Ok(out);
            }
        }
    }

    /// `GET /model/<model>/<id>?f=…`; `None` when the record does not exist.
    pub async fn read(
        &self,
        model: &str,
        id: i64,
        fields: &[&str],
    ) -> Result<Option<Value>, ConnectorError> {
        match self
            .call(
                Method::GET,
                &format!("{model}/{id}"),
                &Self::fields(fields),
                None,
            )
            .await?
        {
            Reply::Ok(v) => Ok(Some(v)),
            Reply::NotFound => Ok(None),
            Reply::Refused(m) => Err(ConnectorError::Rejected {
                status: 400,
                message: m,
            }),
        }
    }

    /// `POST /model/<model>` → the new id, or Tryton's refusal.
    pub async fn create(&self, model: &str, values: &Value) -> Result<Answer<i64>, ConnectorError> {
        match self.call(Method::POST, model, &[], Some(values)).await? {
            Reply::Ok(v) => super::raw::id(&v).map(Ok).ok_or_else(|| {
                ConnectorError::protocol(format!("Tryton created a {model} without an id: {v}"))
            }),
            Reply::Refused(m) => Ok(Err(m)),
            Reply::NotFound => Err(ConnectorError::Config {
                message: format!("Tryton has no model {model}"),
            }),
        }
    }

    /// `PUT /model/<model>/<id>`.
    pub async fn write(
        &self,
        model: &str,
        id: i64,
        values: &Value,
    ) -> Result<Answer<()>, ConnectorError> {
        self.on_record(Method::PUT, model, id, "", Some(values))
            .await
            .map(|a| a.map(|_| ()))
    }

    /// `DELETE /model/<model>/<id>`.
    pub async fn delete(&self, model: &str, id: i64) -> Result<Answer<()>, ConnectorError> {
        self.on_record(Method::DELETE, model, id, "", None)
            .await
            .map(|a| a.map(|_| ()))
    }

    /// `POST /model/<model>/<id>/<method>`: a button (`post`, `cancel`, …).
    pub async fn button(
        &self,
        model: &str,
        id: i64,
        method: &str,
    ) -> Result<Answer<Value>, ConnectorError> {
        self.on_record(Method::POST, model, id, method, Some(&json!({})))
            .await
    }

    async fn on_record(
        &self,
        method: Method,
        model: &str,
        id: i64,
        action: &str,
        body: Option<&Value>,
    ) -> Result<Answer<Value>, ConnectorError> {
        let path = if action.is_empty() {
            format!("{model}/{id}")
        } else {
            format!("{model}/{id}/{action}")
        };
        match self.call(method, &path, &[], body).await? {
            Reply::Ok(v) => Ok(Ok(v)),
            Reply::Refused(m) => Ok(Err(m)),
            Reply::NotFound => Ok(Err(format!("{model} {id} does not exist in Tryton"))),
        }
    }
}

/// Tryton's own words from an error body (`message`, then `description` when it adds anything).
/// Tryton's words in an error body: its message, and its description if any.
fn message(v: &Value) -> Option<String> {
    let m = v.get("message").and_then(Value::as_str).map(str::trim)?;
    let d = v
        .get("description")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|d| !d.is_empty());
    Some(match d {
        Some(d) => format!("{m} {d}"),
        None => m.to_string(),
    })
}
