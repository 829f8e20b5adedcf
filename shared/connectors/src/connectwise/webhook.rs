//! ConnectWise callback verification.
//!
//! The payload names a key URL (`Metadata.key_url`); GET it for `signing_key`.
//! `x-content-signature` = base64(HMAC-SHA256(raw body, key = SHA-256(signing_key))).
//! The key URL is untrusted input: only configured origins are fetched, and keys
//! are cached (refetched once when a signature fails, for key rotation).
//! Source: dsrosen6/go-connectwise-psa `ValidateWebhook` and NangoHQ's router
//! (community sources; see docs/VENDORS.md †).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use ferry_canon::Domain;
use ferry_core::ports::{
    ChangeAction, Headers, VerifiedEvent, WebhookError, WebhookVerifier, header,
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::config::ConnectWiseConfig;
use super::mapper;
use super::raw;

const KEY_TTL: Duration = Duration::from_secs(3600);

/// Verifies callbacks for one tenant's ConnectWise connection.
pub struct CallbackVerifier {
    cfg: ConnectWiseConfig,
    http: reqwest::Client,
    keys: Mutex<HashMap<String, (Instant, String)>>,
}

/// The signature ConnectWise sends for `body` under `signing_key`.
pub fn sign(signing_key: &str, body: &[u8]) -> String {
    let key = Sha256::digest(signing_key.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn verify_with(signing_key: &str, body: &[u8], signature: &[u8]) -> bool {
    let key = Sha256::digest(signing_key.as_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length");
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(signature).is_ok()
}

/// The origin (`scheme://host[:port]`) of a URL, refusing credentials and fragments.
pub fn origin(u: &str) -> Option<String> {
    let url = url::Url::parse(u).ok()?;
    if !matches!(url.scheme(), "https" | "http")
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// Maps a callback `Type` to a domain.
pub fn domain_of(kind: &str) -> Option<Domain> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "company" => Domain::Customers,
        "project" => Domain::Projects,
        "time" | "timeentry" => Domain::TimeEntries,
        "expense" | "expenseentry" => Domain::Expenses,
        "invoice" => Domain::Invoices,
        _ => return None,
    })
}

impl CallbackVerifier {
    pub fn new(cfg: ConnectWiseConfig, http: reqwest::Client) -> Self {
        CallbackVerifier {
            cfg,
            http,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn trusted(&self, key_url: &str) -> bool {
        let Some(o) = origin(key_url) else {
            return false;
        };
        self.cfg
            .key_url_origins
            .iter()
            .filter_map(|allowed| origin(allowed))
            .any(|allowed| allowed == o)
    }

    async fn key(&self, key_url: &str, refresh: bool) -> Result<String, WebhookError> {
        if !refresh
            && let Some((at, k)) = self.keys.lock().expect("not poisoned").get(key_url)
            && at.elapsed() < KEY_TTL
        {
            return Ok(k.clone());
        }
        let resp = self
            .http
            .get(key_url)
            .send()
            .await
            .map_err(|e| WebhookError::KeyUnavailable(format!("fetching signing key: {e}")))?;
        if !resp.status().is_success() {
            return Err(WebhookError::KeyUnavailable(format!(
                "key URL answered HTTP {}",
                resp.status()
            )));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| WebhookError::KeyUnavailable(format!("reading the signing key: {e}")))?;
        if bytes.len() > 16 * 1024 {
            return Err(WebhookError::KeyUnavailable(
                "key URL answered more than 16 KiB".into(),
            ));
        }
        let body: raw::SigningKey = serde_json::from_slice(&bytes).map_err(|e| {
            WebhookError::KeyUnavailable(format!("key URL answered unreadable JSON: {e}"))
        })?;
        let key = body.signing_key.filter(|k| !k.is_empty()).ok_or_else(|| {
            WebhookError::KeyUnavailable("key URL answered no signing_key".into())
        })?;
        self.keys
            .lock()
            .expect("not poisoned")
            .insert(key_url.to_string(), (Instant::now(), key.clone()));
        Ok(key)
    }
}

#[async_trait]
impl WebhookVerifier for CallbackVerifier {
    async fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError> {
        let signature = header(headers, "x-content-signature")
            .ok_or(WebhookError::MissingHeader("x-content-signature"))?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| WebhookError::BadSignature)?;
        let cb: raw::Callback = serde_json::from_slice(body)
            .map_err(|e| WebhookError::Malformed(format!("not a ConnectWise callback: {e}")))?;
        let key_url = cb
            .metadata
            .as_ref()
            .and_then(|m| m.key_url.as_deref())
            .ok_or_else(|| WebhookError::Malformed("Metadata.key_url is missing".into()))?;
        if !self.trusted(key_url) {
            tracing::warn!(key_url, "callback names a key URL outside the allow-list");
            return Err(WebhookError::BadSignature);
        }
        let key = self.key(key_url, false).await?;
        if !verify_with(&key, body, &signature) {
            // The key may have rotated: fetch once more before refusing.
            let fresh = self.key(key_url, true).await?;
            if fresh == key || !verify_with(&fresh, body, &signature) {
                return Err(WebhookError::BadSignature);
            }
        }

        // Only now, with the body authenticated, interpret it.
        let kind = cb
            .r#type
            .as_deref()
            .ok_or_else(|| WebhookError::Malformed("Type is missing".into()))?;
        let Some(mut domain) = domain_of(kind) else {
            tracing::info!(kind, "callback type Ferry does not sync");
            return Ok(Vec::new());
        };
        let id = cb
            .id
            .ok_or_else(|| WebhookError::Malformed("ID is missing".into()))?
            .to_string();
        let action = match cb.action.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("added") | Some("updated") => ChangeAction::Upsert,
            Some("deleted") => ChangeAction::Delete,
            other => return Err(WebhookError::Malformed(format!("unknown Action {other:?}"))),
        };
        let record = match &cb.entity {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(
                serde_json::from_str::<serde_json::Value>(s)
                    .map_err(|e| WebhookError::Malformed(format!("Entity is not JSON: {e}")))?,
            ),
            Some(v @ serde_json::Value::Object(_)) => Some(v.clone()),
            _ => None,
        };
        let version = match record
            .as_ref()
            .and_then(|r| r.pointer("/_info/lastUpdated"))
            .and_then(|v| v.as_str())
        {
            Some(s) => {
                let v = mapper::instant(s, "_info.lastUpdated")
                    .map_err(|e| WebhookError::Malformed(e.to_string()))?;
                let age = now - v;
                if age > chrono::Duration::seconds(self.cfg.max_callback_age_seconds as i64) {
                    return Err(WebhookError::OutsideWindow(format!(
                        "entity last updated {v}, older than the accepted age"
                    )));
                }
                if age < -chrono::Duration::minutes(5) {
                    return Err(WebhookError::OutsideWindow(format!(
                        "entity last updated {v}, in the future"
                    )));
                }
                Some(ferry_canon::SourceVersion::at(v))
            }
            None => None,
        };
        if domain == Domain::Invoices
            && record
                .as_ref()
                .and_then(|r| r.get("type"))
                .and_then(|t| t.as_str())
                == Some("CreditMemo")
        {
            domain = Domain::CreditMemos;
        }
        let event_id = match &cb.message_id {
            Some(m) if !m.is_empty() => m.clone(),
            _ => {
                // No message id: the signed body identifies the delivery.
                hex_sha256(body)
            }
        };
        Ok(vec![VerifiedEvent {
            event_id,
            system: super::system(),
            domain,
            id,
            action,
            // A fat notice needs the entity and its version; otherwise transform fetches.
            record: if action == ChangeAction::Upsert && version.is_some() {
                record
            } else {
                None
            },
            version: if action == ChangeAction::Upsert {
                version
            } else {
                None
            },
        }])
    }
}

fn hex_sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_keyed_by_the_sha256_of_the_signing_key() {
        let body = br#"{"ID":1}"#;
        let sig = sign("secret", body);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&sig)
            .unwrap();
        assert!(verify_with("secret", body, &raw));
        assert!(!verify_with("other", body, &raw));
        assert!(!verify_with("secret", br#"{"ID":2}"#, &raw));
    }

    #[test]
    fn origins_refuse_credentials_fragments_and_other_schemes() {
        assert_eq!(
            origin("https://api-na.myconnectwise.net/v4_6_release/x?id=1").as_deref(),
            Some("https://api-na.myconnectwise.net")
        );
        assert_eq!(origin("https://u:p@api-na.myconnectwise.net/x"), None);
        assert_eq!(origin("https://api-na.myconnectwise.net/x#f"), None);
        assert_eq!(origin("ftp://api-na.myconnectwise.net/x"), None);
        assert_ne!(
            origin("https://api-na.myconnectwise.net.evil.test/x"),
            origin("https://api-na.myconnectwise.net/")
        );
    }
}
