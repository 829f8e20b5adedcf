//! Business Central's webhooks: Ferry subscribes itself (`POST /subscriptions`
//! on the company's sales invoices, with a `clientState` secret) and renews the
//! subscription before its three days run out; Business Central validates the
//! endpoint by posting a `validationToken` Ferry must echo (the handshake), then
//! posts notifications that carry the `clientState` (no signature: the shared
//! secret is the proof). More than 1,000 changes at once arrive as one
//! `collection` notification naming a `lastModifiedDateTime` filter: Ferry reads
//! the invoices it names and treats each as a notice.
//! Reference: `../shared/docs/VENDORS.md` [B1] (dynamics-subscriptions).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::{Domain, SourceVersion};
use ferry_core::ConnectorError;
use ferry_core::ports::{
    ChangeAction, Handshake, Headers, VerifiedEvent, WebhookError, WebhookVerifier,
};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::client::Client;
use crate::credential::Credential;

/// Renew when less than this is left of a subscription's three days.
const RENEW_WITHIN: chrono::Duration = chrono::Duration::hours(36);
/// The longest validation token echoed.
const MAX_TOKEN: usize = 1024;

pub struct BcWebhooks {
    client: Arc<Client>,
    client_state: Credential,
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The id in a resource path ending `salesInvoices(<id>)`.
fn invoice_id(resource: &str) -> Option<String> {
    let rest = &resource[resource.rfind("salesInvoices(")? + "salesInvoices(".len()..];
    let id = rest.strip_suffix(')').unwrap_or(rest.split(')').next()?);
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .then(|| id.to_string())
}

impl BcWebhooks {
    pub fn new(client: Arc<Client>, client_state: Credential) -> Self {
        BcWebhooks {
            client,
            client_state,
        }
    }

    fn resource(&self) -> String {
        format!(
            "api/v2.0/companies({})/salesInvoices",
            self.client.cfg.company_id
        )
    }

    fn event(id: String, sub: &str, change: &str, at: &str) -> VerifiedEvent {
        let identity = format!("{sub}|{id}|{change}|{at}");
        VerifiedEvent {
            event_id: Sha256::digest(identity.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            system: super::system(),
            domain: Domain::Payments,
            id,
            action: ChangeAction::Upsert,
            version: DateTime::parse_from_rfc3339(at)
                .ok()
                .map(|t| SourceVersion::at(t.with_timezone(&Utc))),
            record: None,
        }
    }

    /// The invoices a `collection` notification's filter names.
    async fn collection(
        &self,
        resource: &str,
        sub: &str,
    ) -> Result<Vec<VerifiedEvent>, WebhookError> {
        let since = resource
            .split("lastModifiedDateTime gt ")
            .nth(1)
            .map(|s| {
                s.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                    .to_string()
            })
            .ok_or_else(|| {
                WebhookError::Malformed("a collection notification without its filter".into())
            })?;
        let url = self.client.cfg.entity("salesInvoices");
        let changed = self
            .client
            .list(
                &url,
                &[
                    ("$filter", format!("lastModifiedDateTime gt {since}")),
                    ("$select", "id,lastModifiedDateTime".into()),
                ],
            )
            .await
            .map_err(|e| {
                WebhookError::KeyUnavailable(format!("reading the changed invoices: {e}"))
            })?;
        Ok(changed
            .iter()
            .filter_map(|v| {
                let id = v.get("id")?.as_str()?.to_string();
                let at = v.get("lastModifiedDateTime")?.as_str()?.to_string();
                Some(Self::event(id, sub, "collection", &at))
            })
            .collect())
    }
}

#[async_trait]
impl WebhookVerifier for BcWebhooks {
    /// `?validationToken=…` on subscription and renewal: echoed as text.
    fn handshake(&self, query: &[(String, String)]) -> Option<Handshake> {
        let (_, token) = query.iter().find(|(k, _)| k == "validationToken")?;
        Some(
            if token.is_empty() || token.len() > MAX_TOKEN || token.chars().any(char::is_control) {
                Handshake {
                    status: 400,
                    content_type: "application/json",
                    body: json!({ "error": "unusable validation token" }).to_string(),
                }
            } else {
                Handshake {
                    status: 200,
                    content_type: "text/plain",
                    body: token.clone(),
                }
            },
        )
    }

    async fn verify(
        &self,
        _headers: &Headers,
        body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError> {
        let secret = self
            .client_state
            .get()
            .await
            .map_err(|e| WebhookError::KeyUnavailable(e.to_string()))?;
        let payload: Value =
            serde_json::from_slice(body).map_err(|_| WebhookError::BadSignature)?;
        let Some(notes) = payload.get("value").and_then(Value::as_array) else {
            return Err(WebhookError::BadSignature);
        };
        // Every notification must carry the secret before any is read.
        for n in notes {
            let state = n
                .get("clientState")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !constant_eq(state.as_bytes(), secret.expose().as_bytes()) {
                return Err(WebhookError::BadSignature);
            }
        }
        let mut out = Vec::new();
        for n in notes {
            let field = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or_default();
            let (sub, resource, change, at) = (
                field("subscriptionId"),
                field("resource"),
                field("changeType"),
                field("lastModifiedDateTime"),
            );
            match change {
                "collection" => out.extend(self.collection(resource, sub).await?),
                "created" | "updated" => {
                    let id = invoice_id(resource).ok_or_else(|| {
                        WebhookError::Malformed(format!("a notification for {resource:?}"))
                    })?;
                    out.push(Self::event(id, sub, change, at));
                }
                // A draft Ferry deleted itself; nothing to bring back.
                "deleted" => {}
                other => {
                    return Err(WebhookError::Malformed(format!("changeType {other:?}")));
                }
            }
        }
        Ok(out)
    }

    /// Creates Ferry's subscription to the company's sales invoices, or renews
    /// it when less than a day and a half of its three days is left.
    async fn subscribe(
        &self,
        url: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, ConnectorError> {
        let subs_url = format!("{}/subscriptions", self.client.cfg.base());
        let resource = self.resource();
        let existing = self.client.list(&subs_url, &[]).await?;
        let ours = existing.iter().find(|s| {
            s.get("notificationUrl").and_then(Value::as_str) == Some(url)
                && s.get("resource").and_then(Value::as_str) == Some(resource.as_str())
        });
        let secret = self.client_state.get().await?;
        let Some(sub) = ours else {
            let a = self
                .client
                .send(
                    Method::POST,
                    &subs_url,
                    None,
                    Some(&json!({ "notificationUrl": url, "resource": resource,
                                  "clientState": secret.expose() })),
                )
                .await?;
            if !a.status.is_success() {
                return Err(ConnectorError::Rejected {
                    status: a.status.as_u16(),
                    message: super::client::error_text(&a.body).unwrap_or(a.text),
                });
            }
            return Ok(Some(format!(
                "subscribed {url} to the company's sales invoices"
            )));
        };
        let expires = sub
            .get("expirationDateTime")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        if expires.is_some_and(|e| e - now > RENEW_WITHIN) {
            return Ok(Some(format!(
                "subscription to {url} holds until {}",
                expires.unwrap_or(now)
            )));
        }
        let id = sub
            .get("subscriptionId")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::protocol("a subscription without subscriptionId"))?;
        let etag = sub
            .get("@odata.etag")
            .and_then(Value::as_str)
            .unwrap_or("*");
        let a = self
            .client
            .send(
                Method::PATCH,
                &format!("{subs_url}('{id}')"),
                Some(etag),
                Some(&json!({ "notificationUrl": url, "clientState": secret.expose() })),
            )
            .await?;
        if !a.status.is_success() {
            return Err(ConnectorError::Rejected {
                status: a.status.as_u16(),
                message: super::client::error_text(&a.body).unwrap_or(a.text),
            });
        }
        Ok(Some(format!("renewed the subscription to {url}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notifications_resource_names_its_invoice() {
        assert_eq!(
            invoice_id(
                "api/v2.0/companies(c0ffee00-0000-0000-0000-000000000001)/salesInvoices(5d115c9c-44e3-ea11-bb43-000d3a2feca1)"
            ),
            Some("5d115c9c-44e3-ea11-bb43-000d3a2feca1".into())
        );
        assert_eq!(invoice_id("api/v2.0/companies(c)/customers(1)"), None);
        assert_eq!(
            invoice_id("api/v2.0/companies(c)/salesInvoices(1;drop)"),
            None
        );
        assert!(
            constant_eq(b"abc", b"abc")
                && !constant_eq(b"abc", b"abd")
                && !constant_eq(b"ab", b"abc")
        );
    }
}
