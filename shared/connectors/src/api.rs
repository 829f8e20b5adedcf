//! The one HTTP client every connector calls its vendor through. It owns what
//! is the same for every vendor: calls in flight, the account's shared rate
//! budget, 429 and `Retry-After`, timeouts, one renewal of refused credentials,
//! and the classification of statuses into retry classes. A vendor supplies
//! only its credentials and how to read its error bodies ([`Vendor`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_core::ConnectorError;
use ferry_core::ports::CallGate;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::http;

/// What a vendor adds to the shared client.
#[async_trait]
pub trait Vendor: Send + Sync {
    /// What a request is authorised with (a token, a key, a set of keys).
    type Credential: Send + Sync;

    /// For messages and throttling reports (`xero`, `tryton`).
    fn name(&self) -> &'static str;

    /// The credential for the next request (read on use, so rotation needs no restart).
    async fn credential(&self) -> Result<Self::Credential, ConnectorError>;

    /// Adds the credential and the vendor's fixed headers to a request.
    fn authorize(&self, req: RequestBuilder, credential: &Self::Credential) -> RequestBuilder;

    /// The vendor refused `refused` (401): a different credential if the
    /// connection can get one. The request is then repeated once; vendors
    /// authenticate before doing anything, so the repeat is safe.
    async fn renew(
        &self,
        _refused: &Self::Credential,
    ) -> Result<Option<Self::Credential>, ConnectorError> {
        Ok(None)
    }

    /// The vendor's own words in an error body, if it has its error shape.
    fn error_text(&self, body: &Value) -> Option<String>;

    /// Which of the vendor's limits a 429 names, if it says.
    fn throttle_problem(&self, _headers: &HeaderMap) -> Option<String> {
        None
    }
}

/// How long an account pauses after a 429 that names no `Retry-After`.
const DEFAULT_THROTTLE: Duration = Duration::from_secs(60);

/// A vendor's answer that the caller reads: a success, or one of the statuses
/// it asked to see (a 400's validation messages, a 404).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    /// The JSON body; `Null` when it was empty (or, for a non-success status,
    /// not JSON: then `text` has it).
    pub body: Value,
    pub text: String,
    pub headers: HeaderMap,
}

impl Answer {
    /// The vendor's words for a non-success answer.
    pub fn message<V: Vendor>(&self, vendor: &V) -> String {
        vendor
            .error_text(&self.body)
            .unwrap_or_else(|| self.text.chars().take(300).collect())
    }
}

/// A vendor's HTTP client: one per connection.
pub struct Api<V: Vendor> {
    http: reqwest::Client,
    pub vendor: V,
    /// The account's shared rate budget (ERPs); `None` where the vendor's
    /// limits are not Ferry's to keep (PSAs are read at Ferry's own pace).
    gate: Option<Arc<dyn CallGate>>,
    inflight: Option<Semaphore>,
}

impl<V: Vendor> Api<V> {
    /// `concurrent`: most calls in flight at once from this process (`None`: no limit).
    pub fn new(
        vendor: V,
        timeout: Duration,
        gate: Option<Arc<dyn CallGate>>,
        concurrent: Option<u32>,
    ) -> Self {
        Self {
            http: http::client(timeout),
            vendor,
            gate,
            inflight: concurrent.map(|n| Semaphore::new(n.max(1) as usize)),
        }
    }

    /// A request to fill in (method, URL, query, headers, body) and [`Self::send`].
    pub fn request(&self, method: reqwest::Method, url: &str) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends a request. A success, or a status in `answers`, is returned for
    /// the caller to read; every other status is an error of its retry class,
    /// in the vendor's own words. A 429 pauses the whole account.
    pub async fn send(
        &self,
        req: RequestBuilder,
        answers: &[StatusCode],
    ) -> Result<Answer, ConnectorError> {
        let _permit = match &self.inflight {
            Some(s) => Some(
                s.acquire()
                    .await
                    .map_err(|_| ConnectorError::transient("connector shutting down"))?,
            ),
            None => None,
        };
        self.admit().await?;
        let credential = self.vendor.credential().await?;
        // Kept for a repeat after a refused credential (bodies here are buffered JSON).
        let again = req.try_clone();
        let mut resp = self
            .vendor
            .authorize(req, &credential)
            .send()
            .await
            .map_err(http::transport)?;
        if resp.status() == StatusCode::UNAUTHORIZED
            && let Some(req) = again
            && let Some(renewed) = self.vendor.renew(&credential).await?
        {
            self.admit().await?;
            resp = self
                .vendor
                .authorize(req, &renewed)
                .send()
                .await
                .map_err(http::transport)?;
        }
        let status = resp.status();
        let retry = http::retry_after(&resp);
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(gate) = &self.gate
        {
            let wait = retry.unwrap_or(DEFAULT_THROTTLE);
            let problem = self.vendor.throttle_problem(resp.headers());
            gate.throttled(wait).await;
            return Err(ConnectorError::Throttled {
                retry_after: Some(wait),
                problem: match problem {
                    Some(p) => format!("{} {p}", self.vendor.name()),
                    None => self.vendor.name().to_string(),
                },
            });
        }
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(http::transport)?;
        let parsed = if text.trim().is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_str::<Value>(&text)
        };
        if status.is_success() {
            let body = parsed.map_err(|e| {
                ConnectorError::protocol(format!(
                    "{} answered {status} with invalid JSON ({e}): {}",
                    self.vendor.name(),
                    text.chars().take(200).collect::<String>()
                ))
            })?;
            return Ok(Answer {
                status,
                body,
                text,
                headers,
            });
        }
        let answer = Answer {
            status,
            body: parsed.unwrap_or(Value::Null),
            text,
            headers,
        };
        if answers.contains(&status) {
            return Ok(answer);
        }
        Err(http::status_error(
            status,
            retry,
            self.vendor.name(),
            answer.message(&self.vendor),
        ))
    }

    async fn admit(&self) -> Result<(), ConnectorError> {
        match &self.gate {
            Some(g) => g.admit().await,
            None => Ok(()),
        }
    }
}
