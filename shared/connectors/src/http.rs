//! HTTP plumbing shared by connectors: one client configuration, and the
//! classification of transport errors and status codes into retry classes.

use std::time::Duration;

use ferry_core::ConnectorError;
use reqwest::{Response, StatusCode};

/// A client with bounded connect and request timeouts (no call may hang a worker).
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static client configuration is valid")
}

/// A transport failure. A timeout or a connection that dropped after the request
/// was sent leaves the outcome unknown: transient, and the caller must not assume
/// nothing happened.
pub fn transport(e: reqwest::Error) -> ConnectorError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    ConnectorError::transient(format!("{what}: {e}"))
}

/// `Retry-After` in seconds (the form vendors here use), if present.
pub fn retry_after(resp: &Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Classifies a non-success status. `message` is the vendor's own text.
pub fn status_error(
    status: StatusCode,
    retry: Option<Duration>,
    problem: &str,
    message: String,
) -> ConnectorError {
    match status.as_u16() {
        429 => ConnectorError::Throttled {
            retry_after: retry,
            problem: problem.to_string(),
        },
        401 | 403 => ConnectorError::Config {
            message: format!("HTTP {status}: {message}"),
        },
        408 | 500..=599 => ConnectorError::Transient {
            message: format!("HTTP {status}: {message}"),
        },
        s => ConnectorError::Rejected { status: s, message },
    }
}
