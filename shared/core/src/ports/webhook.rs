//! The webhook port: a vendor's signed delivery in, verified events out.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::{Domain, SourceVersion, SystemId};
use serde::{Deserialize, Serialize};

/// What changed, according to a verified webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    Upsert,
    Delete,
}

/// One event from a verified webhook delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEvent {
    /// The vendor's event or message id, for dedupe.
    pub event_id: String,
    /// The system the record lives in (the PSA, or the ERP for payment events).
    pub system: SystemId,
    pub domain: Domain,
    pub id: String,
    pub action: ChangeAction,
    pub version: Option<SourceVersion>,
    /// The full record when the vendor sent it ("fat" notice).
    pub record: Option<serde_json::Value>,
}

/// Why a webhook delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("signature does not match")]
    BadSignature,
    #[error("signing key unavailable: {0}")]
    KeyUnavailable(String),
    #[error("malformed payload: {0}")]
    Malformed(String),
}

/// Request headers with lower-cased names.
pub type Headers = Vec<(String, String)>;

/// Finds a header by lower-case name.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What a vendor's handshake expects back (a request that delivers no events,
/// such as a new subscription's validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

/// A connector's webhook endpoint. Verifies a vendor's webhook over the raw
/// body and parses its events; answers the vendor's handshakes; and, for a
/// vendor where Ferry registers its own endpoint, keeps that registration alive.
/// Signature first, on the raw bytes, with a constant-time compare.
///
/// A correctly signed delivery is never refused for its age: replays are
/// harmless (event-id dedupe, and the ledger never lets an older version
/// overwrite a newer one). `now` (the injected clock) only decides whether a
/// body is recent enough to be mapped as sent; an event whose body is not
/// trusted is returned thin (`record: None`), and transform reads the record
/// from the vendor.
#[async_trait]
pub trait WebhookVerifier: Send + Sync {
    async fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError>;

    /// The answer when this request is the vendor's handshake, not a delivery
    /// (`query` is the request's decoded query string). Most vendors have none.
    fn handshake(&self, _query: &[(String, String)]) -> Option<Handshake> {
        None
    }

    /// Makes sure the vendor delivers to `url`: creates Ferry's subscription,
    /// or renews one that expires soon. `Ok(None)` where the vendor's
    /// webhooks are set up by a person (in its own settings), not by Ferry;
    /// else what was done, in words.
    async fn subscribe(
        &self,
        _url: &str,
        _now: DateTime<Utc>,
    ) -> Result<Option<String>, crate::error::ConnectorError> {
        Ok(None)
    }
}
