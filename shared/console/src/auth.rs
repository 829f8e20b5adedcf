//! Passwords, sessions and request checks: Argon2id hashes, random session
//! ids kept hashed, the session cookie's flags, the CSRF token and the
//! `Origin` check every state-changing request passes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Duration, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use crate::store::Session;

/// The session cookie's name.
pub const COOKIE: &str = "console_session";
/// How long a session lasts without signing in again.
pub const SESSION_HOURS: i64 = 12;
/// The form field every action carries.
pub const CSRF_FIELD: &str = "csrf";

/// Hashes a password as an Argon2id PHC string with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

/// Spends the time a password check takes, for a user that does not exist:
/// a sign-in answers as slowly for an unknown name as for a wrong password,
/// so timing does not tell which names exist.
pub fn verify_nobody(password: &str) {
    static NOBODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = NOBODY.get_or_init(|| hash_password("no user has this password").unwrap_or_default());
    let _ = verify_password(password, phc);
}

/// Failed sign-ins a name may have before it must wait.
pub const MAX_FAILURES: u32 = 5;
/// How long a name waits after too many failures (and how long failures count).
pub const LOCKOUT_MINUTES: i64 = 15;

/// Failed sign-ins per user name, in this process: after [`MAX_FAILURES`]
/// within [`LOCKOUT_MINUTES`], the name is refused until that much time has
/// passed since the last failure, whatever the password.
#[derive(Default)]
pub struct Throttle {
    failures: std::sync::Mutex<std::collections::HashMap<String, (u32, DateTime<Utc>)>>,
}

impl Throttle {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut std::collections::HashMap<String, (u32, DateTime<Utc>)>) -> T,
    ) -> T {
        match self.failures.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Whether `name` must wait before trying again.
    pub fn locked(&self, name: &str, now: DateTime<Utc>) -> bool {
        self.with(|m| {
            m.get(name).is_some_and(|(n, last)| {
                *n >= MAX_FAILURES && now - *last < Duration::minutes(LOCKOUT_MINUTES)
            })
        })
    }

    pub fn failed(&self, name: &str, now: DateTime<Utc>) {
        self.with(|m| {
            let e = m.entry(name.to_string()).or_insert((0, now));
            if now - e.1 >= Duration::minutes(LOCKOUT_MINUTES) {
                *e = (0, now);
            }
            e.0 += 1;
            e.1 = now;
        })
    }

    pub fn succeeded(&self, name: &str) {
        self.with(|m| {
            m.remove(name);
        })
    }
}

/// Whether `password` matches the stored PHC string (false for a malformed one).
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// 32 random bytes, hex: session ids and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source is available");
    hex::encode(bytes)
}

/// What is stored for a session id: its SHA-256, hex.
pub fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// A new session for `user`; returns the cookie's value and what to store.
pub fn new_session(user: &str, now: DateTime<Utc>) -> (String, Session) {
    let id = random_token();
    let session = Session {
        id_hash: id_hash(&id),
        user: user.to_string(),
        csrf: random_token(),
        expires: now + Duration::hours(SESSION_HOURS),
    };
    (id, session)
}

/// The `Set-Cookie` value for a session: HttpOnly (no script reads it),
/// Secure (HTTPS only; browsers treat loopback as secure), SameSite=Strict
/// (no cross-site request carries it), Path=/, and an expiry.
pub fn session_cookie(id: &str) -> String {
    cookie::Cookie::build((COOKIE, id.to_string()))
        .http_only(true)
        .secure(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::hours(SESSION_HOURS))
        .build()
        .to_string()
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie() -> String {
    cookie::Cookie::build((COOKIE, ""))
        .http_only(true)
        .secure(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string()
}

/// The session id the request's cookies carry, if any.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// Constant-time equality of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A state-changing request must come from the console's own pages: its
/// `Origin` (which browsers send on every POST) names the host it was sent
/// to. A missing `Origin` is refused too: forms on these pages always send one.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            authority == Some(host)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct hors", &h));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert_ne!(
            hash_password("correct horse").expect("hash"),
            h,
            "a fresh salt each time"
        );
    }

    #[test]
    fn a_name_waits_after_too_many_failures() {
        let t = Throttle::default();
        let t0 = DateTime::UNIX_EPOCH;
        for i in 0..MAX_FAILURES {
            assert!(!t.locked("u", t0), "not yet after {i}");
            t.failed("u", t0);
        }
        assert!(t.locked("u", t0));
        assert!(!t.locked("v", t0), "another name is not held back");
        assert!(t.locked(
            "u",
            t0 + Duration::minutes(LOCKOUT_MINUTES) - Duration::seconds(1)
        ));
        assert!(!t.locked("u", t0 + Duration::minutes(LOCKOUT_MINUTES)));
        t.succeeded("u");
        assert!(!t.locked("u", t0));
    }

    #[test]
    fn the_session_cookie_has_every_flag() {
        let c = session_cookie("abc");
        for flag in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=",
        ] {
            assert!(c.contains(flag), "{c} lacks {flag}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; console_session=xyz"),
        );
        assert_eq!(session_id(&h).as_deref(), Some("xyz"));
        assert!(cleared_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn origins_and_tokens() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!same_origin(&h), "no Origin");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        assert!(same_token("abcd", "abcd"));
        assert!(!same_token("abcd", "abce"));
        assert!(!same_token("abcd", "abc"));
        let (id, s) = new_session("u", DateTime::UNIX_EPOCH);
        assert_eq!(s.id_hash, id_hash(&id));
        assert_ne!(s.id_hash, id, "the id itself is not stored");
        assert_eq!(s.csrf.len(), 64);
    }
}
