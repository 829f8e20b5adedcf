//! ConnectWise callback verification.
//!
//! The payload names a key URL (`Metadata.key_url`); GET it for `signing_key`.
//! `x-content-signature` = base64(HMAC-SHA256(raw body, key = SHA-256(signing_key))).
//! The key URL is untrusted input: only configured origins are fetched, a URL
//! longer than [`MAX_KEY_URL`] is refused unfetched, and only a key that has
//! verified a signature is kept (at most [`MAX_KEYS`], the oldest evicted first).
//! A known key URL's key is fetched again when it is over an hour old, or when a
//! signature fails and it is older than [`REFETCH_AFTER`] (rotation); unknown key
//! URLs share [`FETCHES_PER_MINUTE`] fetches a minute. So forged deliveries
//! cannot grow memory, turn Ferry into a request amplifier, push a good key out
//! of the cache, or use up the fetches ConnectWise's own deliveries need.
//! Nothing about the body is revealed before its signature is verified: every
//! failure to verify a delivery whose key URL Ferry has not verified with before
//! is a 401; only a key URL known good that cannot be fetched is a 503 (the key
//! endpoint is down: ConnectWise should retry).
//!
//! Freshness: ConnectWise signs no delivery time, and a correctly signed callback
//! is never refused for its age (a retry can come late, and a record can be
//! notified again without its `lastUpdated` moving). The entity's
//! `_info.lastUpdated` only decides whether the body is trusted: within
//! [`max_callback_age_seconds`](super::config::ConnectWiseConfig) in the past and
//! [`MAX_AHEAD`] in the future the notice carries the entity ("fat"); otherwise,
//! or when the entity or its timestamp cannot be read, the notice is thin and
//! transform reads the current record from ConnectWise.
//! Source: dsrosen6/go-connectwise-psa `ValidateWebhook` and NangoHQ's router
//! (community sources; see docs/VENDORS.md †).
//!
//! Size: the callback verifier and its key cache (about 450 lines: the key-
//! fetching rules are the security boundary), then its tests.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use ferry_canon::Domain;
use ferry_core::ports::{
    ChangeAction, Headers, VerifiedEvent, WebhookError, WebhookVerifier, fresh, header,
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::config::ConnectWiseConfig;
use super::mapper;
use super::raw;

const KEY_TTL: Duration = Duration::from_secs(3600);
/// Longest key URL fetched.
pub const MAX_KEY_URL: usize = 512;
/// Signing keys kept per verifier (one tenant's connection).
pub const MAX_KEYS: usize = 16;
/// Key fetches per verifier per minute, refetches included.
pub const FETCHES_PER_MINUTE: usize = 10;
/// A cached key this young is not refetched when a signature fails.
pub const REFETCH_AFTER: Duration = Duration::from_secs(60);
/// How far ahead of Ferry's clock an entity's `lastUpdated` may be and still be
/// trusted as sent (clock skew between ConnectWise and Ferry).
pub const MAX_AHEAD: Duration = Duration::from_secs(300);

/// Verifies callbacks for one tenant's ConnectWise connection.
pub struct CallbackVerifier {
    cfg: ConnectWiseConfig,
    http: reqwest::Client,
    keys: Mutex<KeyCache>,
}

/// Signing keys that verified a signature, by key URL, with when they were
/// fetched; and the recent fetches for key URLs not known good.
#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (DateTime<Utc>, String)>,
    fetches: VecDeque<DateTime<Utc>>,
}

/// What verifying a signature with a key URL's key came to.
enum Checked {
    Verified,
    /// Not verified; `known` when the URL's key had verified before.
    Refused {
        known: bool,
    },
}

impl KeyCache {
    /// Takes one fetch from the minute's allowance, if any is left.
    fn take_fetch(&mut self, now: DateTime<Utc>) -> bool {
        while self
            .fetches
            .front()
            .is_some_and(|at| !fresh(*at, now, Duration::from_secs(60)))
        {
            self.fetches.pop_front();
        }
        if self.fetches.len() >= FETCHES_PER_MINUTE {
            return false;
        }
        self.fetches.push_back(now);
        true
    }

    fn insert(&mut self, url: &str, now: DateTime<Utc>, key: String) {
        if !self.keys.contains_key(url) && self.keys.len() >= MAX_KEYS {
            let oldest = self
                .keys
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(u, _)| u.clone());
            if let Some(u) = oldest {
                self.keys.remove(&u);
            }
        }
        self.keys.insert(url.to_string(), (now, key));
    }
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
            keys: Mutex::new(KeyCache::default()),
        }
    }

    fn trusted(&self, key_url: &str) -> bool {
        if key_url.len() > MAX_KEY_URL {
            return false;
        }
        let Some(o) = origin(key_url) else {
            return false;
        };
        self.cfg
            .key_url_origins
            .iter()
            .filter_map(|allowed| origin(allowed))
            .any(|allowed| allowed == o)
    }

    /// Verifies `signature` over `body` with `key_url`'s key: the known one
    /// while it is fresh and verifies; fetched again when it is stale, or when it
    /// fails and is old enough to have rotated; fetched for the first time
    /// within the unknown URLs' allowance. Only a key that verifies is kept.
    async fn check(
        &self,
        key_url: &str,
        body: &[u8],
        signature: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Checked, WebhookError> {
        let known = self
            .keys
            .lock()
            .expect("not poisoned")
            .keys
            .get(key_url)
            .cloned();
        if let Some((at, key)) = &known {
            let fresh_key = fresh(*at, now, KEY_TTL);
            if fresh_key && verify_with(key, body, signature) {
                return Ok(Checked::Verified);
            }
            if fresh_key && fresh(*at, now, REFETCH_AFTER) {
                // Too young to have rotated: the signature is simply wrong.
                return Ok(Checked::Refused { known: true });
            }
        } else if !self.keys.lock().expect("not poisoned").take_fetch(now) {
            tracing::info!(
                key_url,
                "signing-key fetch allowance for unknown key URLs used up"
            );
            return Ok(Checked::Refused { known: false });
        }
        let key = match self.fetch(key_url).await {
            Ok(k) => k,
            // A key URL that has verified before cannot be read: ConnectWise's
            // key endpoint is in trouble, and its delivery should be retried.
            Err(e) if known.is_some() => return Err(e),
            Err(e) => {
                tracing::info!(key_url, error = %e, "signing key of an unknown key URL unavailable");
                return Ok(Checked::Refused { known: false });
            }
        };
        let verified = verify_with(&key, body, signature);
        // A known URL's key is kept as fetched (so it is not fetched again
        // within a minute, whatever is sent); an unknown URL's only if it verified.
        if verified || known.is_some() {
            self.keys
                .lock()
                .expect("not poisoned")
                .insert(key_url, now, key);
        }
        if verified {
            Ok(Checked::Verified)
        } else {
            Ok(Checked::Refused {
                known: known.is_some(),
            })
        }
    }

    /// `GET key_url` for its `signing_key`.
    async fn fetch(&self, key_url: &str) -> Result<String, WebhookError> {
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
        body.signing_key
            .filter(|k| !k.is_empty())
            .ok_or_else(|| WebhookError::KeyUnavailable("key URL answered no signing_key".into()))
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
        // Until the signature is verified the body is the caller's word: what is
        // wrong with it is logged, and the caller hears only that it is refused.
        let unverifiable = |why: String| {
            tracing::info!(why, "ConnectWise callback cannot be verified");
            WebhookError::BadSignature
        };
        let cb: raw::Callback = serde_json::from_slice(body)
            .map_err(|e| unverifiable(format!("not a ConnectWise callback: {e}")))?;
        let key_url = cb
            .metadata
            .as_ref()
            .and_then(|m| m.key_url.as_deref())
            .ok_or_else(|| unverifiable("Metadata.key_url is missing".into()))?;
        if !self.trusted(key_url) {
            return Err(unverifiable(format!(
                "key URL outside the allow-list or longer than {MAX_KEY_URL}: {}",
                key_url.chars().take(120).collect::<String>()
            )));
        }
        if let Checked::Refused { known } = self.check(key_url, body, &signature, now).await? {
            if !known {
                tracing::info!(key_url, "callback not verified with an unknown key URL");
            }
            return Err(WebhookError::BadSignature);
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
        let entity = parse_entity(cb.entity.as_ref());
        // ConnectWise sends credit memos as invoices; the entity's type tells them
        // apart even when the body is not trusted (transform checks it again).
        if domain == Domain::Invoices
            && let Ok(Some(e)) = &entity
            && e.get("type").and_then(|t| t.as_str()) == Some("CreditMemo")
        {
            domain = Domain::CreditMemos;
        }
        let max_age = Duration::from_secs(self.cfg.max_callback_age_seconds);
        let (record, version) = match trusted_entity(entity, &id, now, max_age) {
            Ok((record, at)) => (Some(record), Some(ferry_canon::SourceVersion::at(at))),
            Err(why) => {
                if action == ChangeAction::Upsert {
                    tracing::info!(kind, id = %id, why = %why, "callback body not trusted; transform reads the record from ConnectWise");
                }
                (None, None)
            }
        };
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
            // A deletion is confirmed with ConnectWise by transform; only an
            // upsert's trusted entity travels with the notice.
            record: record.filter(|_| action == ChangeAction::Upsert),
            version: version.filter(|_| action == ChangeAction::Upsert),
        }])
    }
}

/// Why a callback's entity is not mapped as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    /// No entity (deletions, or a callback that only names the record).
    Absent,
    /// The entity or its `_info.lastUpdated` cannot be read.
    Unreadable(String),
    /// Last updated longer ago than the accepted age.
    Old(DateTime<Utc>),
    /// Last updated further ahead of Ferry's clock than [`MAX_AHEAD`].
    Ahead(DateTime<Utc>),
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Absent => write!(f, "no entity"),
            Untrusted::Unreadable(e) => write!(f, "entity unreadable: {e}"),
            Untrusted::Old(at) => write!(f, "entity last updated {at}, older than the trusted age"),
            Untrusted::Ahead(at) => write!(f, "entity last updated {at}, ahead of Ferry's clock"),
        }
    }
}

/// The callback's `Entity`: a JSON string (as ConnectWise sends it) or an object;
/// `None` when there is none.
fn parse_entity(entity: Option<&serde_json::Value>) -> Result<Option<serde_json::Value>, String> {
    match entity {
        Some(serde_json::Value::String(s)) if !s.is_empty() => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| format!("Entity is not JSON: {e}")),
        Some(v @ serde_json::Value::Object(_)) => Ok(Some(v.clone())),
        _ => Ok(None),
    }
}

/// The callback's entity and its `lastUpdated`, when the body may be mapped as
/// sent: it is the record the callback names (`id`), and it was last updated no
/// longer than `max_age` before `now` and no more than [`MAX_AHEAD`] after it
/// (both ends included).
pub fn trusted_entity(
    entity: Result<Option<serde_json::Value>, String>,
    id: &str,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Result<(serde_json::Value, DateTime<Utc>), Untrusted> {
    let record = entity
        .map_err(Untrusted::Unreadable)?
        .ok_or(Untrusted::Absent)?;
    match record.get("id") {
        Some(v) if v.as_i64().map(|n| n.to_string()).as_deref() == Some(id) => {}
        other => {
            return Err(Untrusted::Unreadable(format!(
                "entity id {} is not the callback's ID {id}",
                other.map_or("(none)".to_string(), |v| v.to_string())
            )));
        }
    }
    let at = record
        .pointer("/_info/lastUpdated")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Untrusted::Unreadable("no _info.lastUpdated".into()))?;
    let at = mapper::instant(at, "_info.lastUpdated")
        .map_err(|e| Untrusted::Unreadable(e.to_string()))?;
    let age = now - at;
    if age > ferry_core::deps::chrono_duration(max_age) {
        return Err(Untrusted::Old(at));
    }
    if -age > ferry_core::deps::chrono_duration(MAX_AHEAD) {
        return Err(Untrusted::Ahead(at));
    }
    Ok((record, at))
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

    fn entity(last_updated: &str) -> Result<Option<serde_json::Value>, String> {
        let e = serde_json::json!({"id": 1, "_info": {"lastUpdated": last_updated}});
        parse_entity(Some(&serde_json::Value::String(e.to_string())))
    }

    #[test]
    fn the_body_is_trusted_from_the_age_limit_to_five_minutes_ahead_both_included() {
        let now = DateTime::parse_from_rfc3339("2028-01-01T00:00:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = Duration::from_secs(24 * 3600);
        let at = |s: &str| trusted_entity(entity(s), "1", now, day).map(|(_, t)| t.to_rfc3339());
        assert!(at("2027-12-31T00:00:30Z").is_ok(), "exactly the age limit");
        assert!(
            matches!(at("2027-12-31T00:00:29Z"), Err(Untrusted::Old(_))),
            "a second older"
        );
        assert!(
            at("2028-01-01T00:05:30Z").is_ok(),
            "exactly five minutes ahead"
        );
        assert!(
            matches!(at("2028-01-01T00:05:31Z"), Err(Untrusted::Ahead(_))),
            "a second more"
        );
        assert!(at("2028-01-01T00:00:30Z").is_ok(), "now");
        assert!(matches!(at("yesterday"), Err(Untrusted::Unreadable(_))));
        assert_eq!(
            trusted_entity(Ok(None), "1", now, day).unwrap_err(),
            Untrusted::Absent
        );
        let not_json = parse_entity(Some(&serde_json::Value::String("{oops".into())));
        assert!(matches!(
            trusted_entity(not_json, "1", now, day),
            Err(Untrusted::Unreadable(_))
        ));
        let no_info = Ok(Some(serde_json::json!({"id": 1})));
        let other = entity("2028-01-01T00:00:30Z");
        assert!(
            matches!(
                trusted_entity(other, "2", now, day),
                Err(Untrusted::Unreadable(_))
            ),
            "an entity that is not the record the callback names"
        );
        assert!(matches!(
            trusted_entity(no_info, "1", now, day),
            Err(Untrusted::Unreadable(_))
        ));
    }

    #[test]
    fn the_key_cache_keeps_at_most_its_size_and_fetches_at_most_its_rate() {
        let t0 = DateTime::parse_from_rfc3339("2028-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut c = KeyCache::default();
        for i in 0..(3 * MAX_KEYS) {
            c.insert(
                &format!("https://cw.test/key?id={i}"),
                t0 + chrono::Duration::seconds(i as i64),
                "k".into(),
            );
            assert!(c.keys.len() <= MAX_KEYS);
        }
        assert!(
            c.keys
                .contains_key(&format!("https://cw.test/key?id={}", 3 * MAX_KEYS - 1)),
            "the newest key stays; the oldest go"
        );
        assert!(!c.keys.contains_key("https://cw.test/key?id=0"));

        let mut c = KeyCache::default();
        for _ in 0..FETCHES_PER_MINUTE {
            assert!(c.take_fetch(t0));
        }
        assert!(!c.take_fetch(t0 + chrono::Duration::seconds(59)));
        assert!(
            c.take_fetch(t0 + chrono::Duration::seconds(60)),
            "a minute later the allowance is back"
        );
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
