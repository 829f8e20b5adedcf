//! Tryton REST client (Tryton 8.x, `/<database>/rest/model/<model>[/<id>[/<method>]]`):
//! a user-application key as `Authorization: Bearer`, the company in
//! `X-Tryton-Context`, domains and field lists in the query string, and paging
//! with `Range: records=<first>-<last>`. Validation errors are HTTP 400 with
//! `{"status": 400, "message": …, "description": …}`.
//! Reference: https://docs.tryton.org/8.0/server/topics/rest.html

use std::time::Duration;

use base64::Engine as _;
use ferry_core::ConnectorError;
use ferry_core::ports::CallGate;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::Semaphore;

use super::config::TrytonConfig;
use crate::credential::Credential;
use crate::http;

/// Records per search page.
pub const PAGE: usize = 100;

/// What Tryton answered to a write: done, or refused with its own words.
pub type Answer<T> = Result<T, String>;

/// Thin HTTP client; one per tenant connection.
pub struct Client {
    pub(crate) cfg: TrytonConfig,
    key: Credential,
    http: reqwest::Client,
    gate: Arc<dyn CallGate>,
    inflight: Semaphore,
    context: String,
}

enum Reply {
    Ok(Value),
    Refused(String),
    NotFound,
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

impl Client {
    pub fn new(cfg: TrytonConfig, key: Credential, gate: Arc<dyn CallGate>) -> Self {
        let context = b64(&json!({ "company": cfg.company, "companies": [cfg.company] }));
        Client {
            http: http::client(Duration::from_secs(cfg.timeout_seconds)),
            inflight: Semaphore::new(cfg.concurrent.max(1) as usize),
            cfg,
            key,
            gate,
            context,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/rest/model/{path}",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.database
        )
    }

    /// One call: budget, concurrency, auth and context headers, status classification.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        range: Option<(usize, usize)>,
    ) -> Result<Reply, ConnectorError> {
        let _permit = self
            .inflight
            .acquire()
            .await
            .map_err(|_| ConnectorError::transient("connector shutting down"))?;
        self.gate.admit().await?;
        let key = self.key.get().await?;
        let mut req = self
            .http
            .request(method, self.url(path))
            .query(query)
            .bearer_auth(key.expose())
            .header("X-Tryton-Context", &self.context)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some((first, last)) = range {
            req = req.header(reqwest::header::RANGE, format!("records={first}-{last}"));
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(http::transport)?;
        let status = resp.status();
        let retry = http::retry_after(&resp);
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = retry.unwrap_or(Duration::from_secs(60));
            self.gate.throttled(wait).await;
            return Err(ConnectorError::Throttled {
                retry_after: Some(wait),
                problem: "tryton".into(),
            });
        }
        let text = resp.text().await.map_err(http::transport)?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Reply::NotFound);
        }
        let value: Option<Value> = serde_json::from_str(&text).ok();
        if status == StatusCode::BAD_REQUEST {
            return Ok(Reply::Refused(message(value.as_ref(), &text)));
        }
        if !status.is_success() {
            return Err(http::status_error(
                status,
                retry,
                "tryton",
                message(value.as_ref(), &text),
            ));
        }
        if text.trim().is_empty() {
            return Ok(Reply::Ok(Value::Null));
        }
        value.map(Reply::Ok).ok_or_else(|| {
            ConnectorError::protocol(format!(
                "Tryton answered {status} with invalid JSON: {}",
                text.chars().take(200).collect::<String>()
            ))
        })
    }

    fn fields(fields: &[&str]) -> Vec<(&'static str, String)> {
        fields.iter().map(|f| ("f", (*f).to_string())).collect()
    }

    /// `GET /model/<model>?d=<domain>&f=…` over every page.
    pub async fn search(
        &self,
        model: &str,
        domain: &Value,
        fields: &[&str],
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut query = Self::fields(fields);
        query.push(("d", b64(domain)));
        let mut out = Vec::new();
        loop {
            let first = out.len();
            let page = match self
                .call(
                    Method::GET,
                    model,
                    &query,
                    None,
                    Some((first, first + PAGE - 1)),
                )
                .await?
            {
                Reply::Ok(Value::Array(items)) => items,
                Reply::Ok(other) => {
                    return Err(ConnectorError::protocol(format!(
                        "Tryton search on {model} answered {other} instead of a list"
                    )));
                }
                Reply::Refused(m) => {
                    return Err(ConnectorError::Rejected {
                        status: 400,
                        message: m,
                    });
                }
                Reply::NotFound => {
                    return Err(ConnectorError::Config {
                        message: format!("Tryton has no model {model} (is its module activated?)"),
                    });
                }
            };
            let n = page.len();
            out.extend(page);
            if n < PAGE {
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
        match self
            .call(Method::POST, model, &[], Some(values), None)
            .await?
        {
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
        match self.call(method, &path, &[], body, None).await? {
            Reply::Ok(v) => Ok(Ok(v)),
            Reply::Refused(m) => Ok(Err(m)),
            Reply::NotFound => Ok(Err(format!("{model} {id} does not exist in Tryton"))),
        }
    }
}

/// Tryton's own words from an error body (`message`, then `description` when it adds anything).
fn message(v: Option<&Value>, text: &str) -> String {
    let m = v
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(str::trim);
    let d = v
        .and_then(|v| v.get("description"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|d| !d.is_empty());
    match (m, d) {
        (Some(m), Some(d)) => format!("{m} {d}"),
        (Some(m), None) => m.to_string(),
        _ => text.chars().take(300).collect(),
    }
}
