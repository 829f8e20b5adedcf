//! Xero webhook verification: `x-xero-signature` = base64(HMAC-SHA256(raw body,
//! webhook key)). No timestamp, so no freshness window; dedupe by event identity.
//! "Intent to receive": a correctly signed delivery with no events gets 200, a
//! badly signed one 401 (intake maps the errors).
//! Reference: https://developer.xero.com/documentation/guides/webhooks/configuring-your-server

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use ferry_canon::{Domain, SourceVersion};
use ferry_core::ports::{
    ChangeAction, Headers, VerifiedEvent, WebhookError, WebhookVerifier, header,
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::raw;
use crate::credential::Credential;

/// Verifies deliveries signed with one organisation's webhook key.
pub struct XeroWebhooks {
    key: Credential,
}

impl XeroWebhooks {
    pub fn new(key: Credential) -> Self {
        XeroWebhooks { key }
    }
}

/// The signature Xero sends for `body`.
pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[async_trait]
impl WebhookVerifier for XeroWebhooks {
    async fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError> {
        let sig = header(headers, "x-xero-signature")
            .ok_or(WebhookError::MissingHeader("x-xero-signature"))?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig.trim())
            .map_err(|_| WebhookError::BadSignature)?;
        let key = self
            .key
            .get()
            .await
            .map_err(|e| WebhookError::KeyUnavailable(e.to_string()))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
            .expect("HMAC accepts any key length");
        mac.update(body);
        mac.verify_slice(&sig)
            .map_err(|_| WebhookError::BadSignature)?;
        let payload: raw::WebhookPayload = serde_json::from_slice(body)
            .map_err(|e| WebhookError::Malformed(format!("not a Xero webhook: {e}")))?;
        let mut out = Vec::new();
        for e in payload.events {
            // Invoice events carry payment status back; contacts are Ferry's own writes.
            if e.event_category.as_deref() != Some("INVOICE") {
                continue;
            }
            let id = e
                .resource_id
                .clone()
                .ok_or_else(|| WebhookError::Malformed("event without resourceId".into()))?;
            let at = e.event_date_utc.clone().unwrap_or_default();
            let identity = format!("{id}|{at}|{}", e.event_type.as_deref().unwrap_or(""));
            let event_id: String = Sha256::digest(identity.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let version = DateTime::parse_from_rfc3339(&at)
                .ok()
                .map(|t| SourceVersion::at(t.with_timezone(&Utc)));
            out.push(VerifiedEvent {
                event_id,
                system: super::system(),
                domain: Domain::Payments,
                id,
                action: ChangeAction::Upsert,
                version,
                record: None,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::ports::Secret;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_830_297_599, 0).expect("valid")
    }

    fn headers(sig: &str) -> Headers {
        vec![("x-xero-signature".into(), sig.into())]
    }

    #[tokio::test]
    async fn intent_to_receive_passes_with_a_good_signature_and_fails_with_a_bad_one() {
        let v = XeroWebhooks::new(Credential::Fixed(Secret::new("key")));
        let body = br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"X"}"#;
        let ok = v
            .verify(&headers(&sign("key", body)), body, now())
            .await
            .unwrap();
        assert!(ok.is_empty());
        let bad = v.verify(&headers(&sign("wrong", body)), body, now()).await;
        assert_eq!(bad.unwrap_err(), WebhookError::BadSignature);
        let missing = v.verify(&Vec::new(), body, now()).await;
        assert_eq!(
            missing.unwrap_err(),
            WebhookError::MissingHeader("x-xero-signature")
        );
    }
}
