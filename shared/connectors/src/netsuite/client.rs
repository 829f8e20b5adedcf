//! NetSuite REST web services client: the Record API (`/services/rest/record/v1`)
//! for writes and single reads, SuiteQL (`/services/rest/query/v1/suiteql`) for
//! lists, asynchronous batch jobs (`/services/rest/async/v1/job`), a bearer
//! token from client credentials, and NetSuite's RFC 7807-style errors
//! (`{title, status, "o:errorDetails": [{detail, "o:errorCode"}]}`).
//! Reference: NetSuite help, "REST Web Services" (`../shared/docs/VENDORS.md` [N1]-[N7]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::ConnectorError;
use ferry_core::ports::{CallGate, Secret};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use super::auth::ClientCredentials;
use super::config::NetSuiteConfig;
use crate::api::{Answer, Api, Vendor};

/// SuiteQL's largest page.
pub const SUITEQL_PAGE: usize = 1000;
/// SuiteQL returns at most this many rows for one query, whatever the paging.
pub const SUITEQL_CAP: usize = 100_000;

/// Thin HTTP client; one per tenant connection.
pub struct Client {
    pub(crate) cfg: NetSuiteConfig,
    api: Api<NetSuiteApi>,
}

struct NetSuiteApi {
    auth: Arc<ClientCredentials>,
}

/// The words in a NetSuite error body.
pub fn error_text(body: &Value) -> Option<String> {
    let details: Vec<String> = body
        .get("o:errorDetails")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|e| e.get("detail").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if details.is_empty() {
        body.get("title").and_then(Value::as_str).map(String::from)
    } else {
        Some(details.join("; "))
    }
}

/// The error codes in a NetSuite error body (`USER_ERROR`, `IDEMPOTENCY_ERROR`, …).
pub fn error_codes(body: &Value) -> Vec<String> {
    body.get("o:errorDetails")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|e| {
                    e.get("o:errorCode")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl Vendor for NetSuiteApi {
    type Credential = Secret;

    fn name(&self) -> &'static str {
        "netsuite"
    }

    async fn credential(&self) -> Result<Secret, ConnectorError> {
        self.auth.token().await
    }

    fn authorize(&self, req: RequestBuilder, token: &Secret) -> RequestBuilder {
        req.bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn renew(&self, refused: &Secret) -> Result<Option<Secret>, ConnectorError> {
        self.auth.renew(refused).await
    }

    fn error_text(&self, body: &Value) -> Option<String> {
        error_text(body)
    }

    fn throttle_problem(&self, _headers: &reqwest::header::HeaderMap) -> Option<String> {
        Some("concurrency".into())
    }
}

/// An asynchronous job's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub url: String,
    pub completed: bool,
}

/// A `Location` header's URL, only under the configured REST root.
fn location(cfg: &NetSuiteConfig, answer: &Answer) -> Result<String, ConnectorError> {
    let loc = answer
        .headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ConnectorError::protocol(format!(
                "NetSuite answered {} without a Location",
                answer.status
            ))
        })?;
    if !loc.starts_with(&format!("{}/services/rest/", cfg.base())) {
        return Err(ConnectorError::protocol(format!(
            "NetSuite's Location {loc:?} is not under {}; not followed",
            cfg.base()
        )));
    }
    Ok(loc.to_string())
}

impl Client {
    pub fn new(cfg: NetSuiteConfig, auth: Arc<ClientCredentials>, gate: Arc<dyn CallGate>) -> Self {
        let api = Api::new(
            NetSuiteApi { auth },
            Duration::from_secs(cfg.timeout_seconds),
            Some(gate),
            Some(cfg.concurrency),
        );
        Client { cfg, api }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/services/rest/{path}", self.cfg.base())
    }

    /// `GET /record/v1/{type}/{id}` (`id` may be `eid:<external id>`); `None` on 404.
    pub async fn record(&self, ty: &str, id: &str) -> Result<Option<Value>, ConnectorError> {
        let req = self
            .api
            .request(Method::GET, &self.url(&format!("record/v1/{ty}/{id}")))
            .query(&[("expandSubResources", "true")]);
        let answer = self.api.send(req, &[StatusCode::NOT_FOUND]).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.body.is_object() {
            return Err(ConnectorError::protocol(format!(
                "NetSuite {ty} {id} answered without a JSON object"
            )));
        }
        Ok(Some(answer.body))
    }

    /// `DELETE /record/v1/{type}/{id}`; a record already gone counts as deleted.
    pub async fn delete(&self, ty: &str, id: &str) -> Result<Result<(), String>, ConnectorError> {
        let req = self
            .api
            .request(Method::DELETE, &self.url(&format!("record/v1/{ty}/{id}")));
        let answer = self
            .api
            .send(req, &[StatusCode::NOT_FOUND, StatusCode::BAD_REQUEST])
            .await?;
        Ok(match answer.status {
            StatusCode::BAD_REQUEST => {
                Err(error_text(&answer.body)
                    .unwrap_or_else(|| "NetSuite refused the deletion".into()))
            }
            _ => Ok(()),
        })
    }

    /// Every row of a SuiteQL query, a page of 1,000 at a time. A query whose
    /// rows would pass SuiteQL's cap of 100,000 is an error, never a silent cut.
    pub async fn suiteql(&self, q: &str) -> Result<Vec<Value>, ConnectorError> {
        let mut out: Vec<Value> = Vec::new();
        loop {
            let req = self
                .api
                .request(Method::POST, &self.url("query/v1/suiteql"))
                .query(&[
                    ("limit", SUITEQL_PAGE.to_string()),
                    ("offset", out.len().to_string()),
                ])
                .header("Prefer", "transient")
                .json(&json!({ "q": q }));
            let answer = self.api.send(req, &[]).await?;
            let Some(items) = answer.body.get("items").and_then(Value::as_array) else {
                return Err(ConnectorError::protocol(format!(
                    "NetSuite SuiteQL answered without items: {}",
                    answer.text.chars().take(200).collect::<String>()
                )));
            };
            let n = items.len();
            out.extend(items.iter().cloned());
            let more = answer.body.get("hasMore").and_then(Value::as_bool);
            match more {
                Some(true) if n > 0 => {}
                Some(_) => return Ok(out),
                None => {
                    return Err(ConnectorError::protocol(
                        "NetSuite SuiteQL page without hasMore",
                    ));
                }
            }
            if out.len() >= SUITEQL_CAP {
                return Err(ConnectorError::protocol(format!(
                    "a SuiteQL read reached NetSuite's cap of {SUITEQL_CAP} rows: {q}"
                )));
            }
        }
    }

    /// Submits an asynchronous batch upsert (`PUT /record/v1/{type}` with
    /// `Prefer: respond-async`, one item per document, each with its
    /// `externalId`) under `key`. A key NetSuite has seen points at the job it
    /// started then: that job is returned, so a retry never writes twice.
    pub async fn submit_upsert(
        &self,
        ty: &str,
        items: Vec<Value>,
        key: &str,
    ) -> Result<Job, ConnectorError> {
        let req = self
            .api
            .request(Method::PUT, &self.url(&format!("record/v1/{ty}")))
            .header("Prefer", "respond-async")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/vnd.oracle.resource+json; type=collection",
            )
            .header("X-NetSuite-Idempotency-Key", key)
            .body(json!({ "items": items }).to_string());
        let answer = self.api.send(req, &[StatusCode::BAD_REQUEST]).await?;
        if answer.status == StatusCode::BAD_REQUEST {
            if error_codes(&answer.body)
                .iter()
                .any(|c| c == "IDEMPOTENCY_ERROR")
            {
                return Ok(Job {
                    url: location(&self.cfg, &answer)?,
                    completed: false,
                });
            }
            return Err(ConnectorError::Rejected {
                status: 400,
                message: error_text(&answer.body)
                    .unwrap_or_else(|| "NetSuite refused the batch".into()),
            });
        }
        if answer.status != StatusCode::ACCEPTED {
            return Err(ConnectorError::protocol(format!(
                "NetSuite answered {} to an asynchronous batch (202 expected)",
                answer.status
            )));
        }
        Ok(Job {
            url: location(&self.cfg, &answer)?,
            completed: false,
        })
    }

    /// `GET` a job: whether it has finished.
    pub async fn job(&self, url: &str) -> Result<Job, ConnectorError> {
        let answer = self
            .api
            .send(self.api.request(Method::GET, url), &[])
            .await?;
        let completed = answer
            .body
            .get("completed")
            .and_then(Value::as_bool)
            .ok_or_else(|| ConnectorError::protocol("NetSuite job without `completed`"))?;
        Ok(Job {
            url: url.to_string(),
            completed,
        })
    }

    /// The tasks (1-based, in item order) a finished job failed:
    /// `GET {job}/task` lists each task's progress.
    pub async fn failed_tasks(&self, job: &str) -> Result<Vec<usize>, ConnectorError> {
        let answer = self
            .api
            .send(self.api.request(Method::GET, &format!("{job}/task")), &[])
            .await?;
        let Some(items) = answer.body.get("items").and_then(Value::as_array) else {
            return Err(ConnectorError::protocol("NetSuite job tasks without items"));
        };
        let mut failed = Vec::new();
        for t in items {
            let id = t
                .get("id")
                .and_then(|v| {
                    v.as_str()
                        .map(String::from)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                })
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or_else(|| {
                    ConnectorError::protocol(format!("NetSuite job task without an id: {t}"))
                })?;
            match t.get("progress").and_then(Value::as_str) {
                Some("succeeded") => {}
                Some("failed") => failed.push(id),
                other => {
                    return Err(ConnectorError::protocol(format!(
                        "NetSuite job task {id} of a finished job is {other:?}"
                    )));
                }
            }
        }
        Ok(failed)
    }

    /// The result of a job's `n`th task (1-based, in item order).
    pub async fn task_result(&self, job: &str, n: usize) -> Result<Value, ConnectorError> {
        let url = format!("{job}/task/{n}/result");
        let answer = self
            .api
            .send(
                self.api.request(Method::GET, &url),
                &[StatusCode::BAD_REQUEST],
            )
            .await?;
        Ok(answer.body)
    }
}
