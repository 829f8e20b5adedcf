//! Business Central API v2.0 client: OData v4 JSON, `$filter` and `$expand`,
//! server paging by `@odata.nextLink`, optimistic concurrency by `If-Match`
//! etags, bound actions (`Microsoft.NAV.post`), JSON `$batch` of up to 100
//! operations (`Isolation: snapshot` makes one all or nothing), and OData's
//! errors (`{"error": {"code", "message"}}`).
//! Reference: `../shared/docs/VENDORS.md` [B1]-[B6].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::ConnectorError;
use ferry_core::ports::{CallGate, Secret};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use super::auth::Tokens;
use super::config::BusinessCentralConfig;
use crate::api::{Answer, Api, Vendor};

/// Pages followed before a list is called endless.
const MAX_PAGES: usize = 10_000;

pub struct Client {
    pub(crate) cfg: BusinessCentralConfig,
    api: Api<BcApi>,
}

struct BcApi {
    tokens: Arc<Tokens>,
}

/// The words in an OData error body.
pub fn error_text(body: &Value) -> Option<String> {
    let e = body.get("error")?;
    let message = e.get("message").and_then(Value::as_str)?;
    Some(match e.get("code").and_then(Value::as_str) {
        Some(code) => format!("{message} ({code})"),
        None => message.to_string(),
    })
}

#[async_trait]
impl Vendor for BcApi {
    type Credential = Secret;

    fn name(&self) -> &'static str {
        "businesscentral"
    }

    async fn credential(&self) -> Result<Secret, ConnectorError> {
        self.tokens.token().await
    }

    fn authorize(&self, req: RequestBuilder, token: &Secret) -> RequestBuilder {
        req.bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn renew(&self, refused: &Secret) -> Result<Option<Secret>, ConnectorError> {
        self.tokens.renew(refused).await
    }

    fn error_text(&self, body: &Value) -> Option<String> {
        error_text(body)
    }
}

/// One operation of a `$batch`, and its answer.
#[derive(Debug, Clone)]
pub struct Op {
    pub method: &'static str,
    pub url: String,
    pub if_match: Option<String>,
    pub body: Option<Value>,
}

/// A status the caller reads (a refusal, a missing record, a lost race).
const READ: [StatusCode; 4] = [
    StatusCode::BAD_REQUEST,
    StatusCode::NOT_FOUND,
    StatusCode::CONFLICT,
    StatusCode::PRECONDITION_FAILED,
];

impl Client {
    pub fn new(cfg: BusinessCentralConfig, tokens: Arc<Tokens>, gate: Arc<dyn CallGate>) -> Self {
        let api = Api::new(
            BcApi { tokens },
            Duration::from_secs(cfg.timeout_seconds),
            Some(gate),
            Some(super::CONCURRENT),
        );
        Client { cfg, api }
    }

    /// A URL only under the configured API root (a next link elsewhere would carry the token).
    fn ours(&self, url: &str) -> Result<(), ConnectorError> {
        if url.starts_with(&self.cfg.base()) {
            Ok(())
        } else {
            Err(ConnectorError::protocol(format!(
                "Business Central linked to {url:?}, outside {}; not followed",
                self.cfg.base()
            )))
        }
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        if_match: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, ConnectorError> {
        let mut req = self.api.request(method, url);
        if let Some(e) = if_match {
            req = req.header(reqwest::header::IF_MATCH, e);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.api.send(req, &READ).await
    }

    /// One entity; `None` when Business Central has none.
    pub async fn get(&self, url: &str) -> Result<Option<Value>, ConnectorError> {
        let a = self.send(Method::GET, url, None, None).await?;
        match a.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() && a.body.is_object() => Ok(Some(a.body)),
            s => Err(ConnectorError::Rejected {
                status: s.as_u16(),
                message: error_text(&a.body).unwrap_or(a.text),
            }),
        }
    }

    /// Every entity of a collection query, following `@odata.nextLink`.
    pub async fn list(
        &self,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut out = Vec::new();
        let mut next = Some(
            reqwest::Url::parse_with_params(url, query)
                .map_err(|e| ConnectorError::Config {
                    message: format!("{url}: {e}"),
                })?
                .to_string(),
        );
        let mut pages = 0;
        while let Some(u) = next.take() {
            self.ours(&u)?;
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ConnectorError::protocol(format!(
                    "Business Central kept linking pages past {MAX_PAGES}: {url}"
                )));
            }
            let a = self.send(Method::GET, &u, None, None).await?;
            if !a.status.is_success() {
                return Err(ConnectorError::Rejected {
                    status: a.status.as_u16(),
                    message: error_text(&a.body).unwrap_or(a.text),
                });
            }
            let Some(items) = a.body.get("value").and_then(Value::as_array) else {
                return Err(ConnectorError::protocol(format!(
                    "Business Central answered {url} without a value list"
                )));
            };
            out.extend(items.iter().cloned());
            next = a
                .body
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(String::from);
        }
        Ok(out)
    }

    /// A JSON `$batch`; `atomic` makes it all or nothing. Answers in request order.
    pub async fn batch(
        &self,
        ops: &[Op],
        atomic: bool,
    ) -> Result<Vec<(u16, Value)>, ConnectorError> {
        let requests: Vec<Value> = ops
            .iter()
            .enumerate()
            .map(|(n, op)| {
                let mut headers = serde_json::Map::new();
                headers.insert("Content-Type".into(), json!("application/json"));
                if let Some(e) = &op.if_match {
                    headers.insert("If-Match".into(), json!(e));
                }
                let mut r = json!({ "id": (n + 1).to_string(), "method": op.method, "url": op.url,
                                    "headers": headers });
                if let Some(b) = &op.body {
                    r["body"] = b.clone();
                }
                r
            })
            .collect();
        let mut req = self
            .api
            .request(Method::POST, &format!("{}/$batch", self.cfg.base()))
            .json(&json!({ "requests": requests }));
        if atomic {
            req = req.header("Isolation", "snapshot");
        }
        let a = self.api.send(req, &[StatusCode::BAD_REQUEST]).await?;
        if a.status == StatusCode::BAD_REQUEST {
            return Err(ConnectorError::Rejected {
                status: 400,
                message: error_text(&a.body).unwrap_or(a.text),
            });
        }
        let Some(responses) = a.body.get("responses").and_then(Value::as_array) else {
            return Err(ConnectorError::protocol(
                "Business Central $batch without responses",
            ));
        };
        let mut out = vec![None; ops.len()];
        for r in responses {
            let (Some(id), Some(status)) = (
                r.get("id")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<usize>().ok()),
                r.get("status").and_then(Value::as_u64),
            ) else {
                return Err(ConnectorError::protocol(format!(
                    "a $batch answer Ferry cannot read: {r}"
                )));
            };
            if let Some(slot) = id.checked_sub(1).and_then(|i| out.get_mut(i)) {
                *slot = Some((status as u16, r.get("body").cloned().unwrap_or(Value::Null)));
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(n, r)| {
                r.ok_or_else(|| ConnectorError::Unanswered {
                    message: format!(
                        "Business Central's $batch did not answer operation {}",
                        n + 1
                    ),
                })
            })
            .collect()
    }
}
