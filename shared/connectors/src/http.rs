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
    if e.is_connect() {
        // Nothing was sent.
        return ConnectorError::transient(format!("could not connect: {e}"));
    }
    let what = if e.is_timeout() {
        "timed out"
    } else {
        "transport error"
    };
    ConnectorError::Unanswered {
        message: format!("{what}: {e}"),
    }
}

/// The longest pause a vendor's `Retry-After` can impose: a day (Xero's daily
/// limit is the longest a vendor here documents). A larger value is a vendor's
/// mistake and must not park an account for years.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// `Retry-After` in seconds (the form vendors here use), if present, at most
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(resp: &Response) -> Option<Duration> {
    retry_after_value(
        resp.headers()
            .get(reqwest::header::RETRY_AFTER)?
            .to_str()
            .ok()?,
    )
}

fn retry_after_value(v: &str) -> Option<Duration> {
    let secs = v.trim().parse::<u128>().ok()?;
    Some(Duration::from_secs(
        u64::try_from(secs)
            .unwrap_or(u64::MAX)
            .min(MAX_RETRY_AFTER.as_secs()),
    ))
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
        // A gateway that gave up on the origin: the origin may still be working.
        502 | 504 => ConnectorError::Unanswered {
            message: format!("HTTP {status}: {message}"),
        },
        408 | 500..=599 => ConnectorError::Transient {
            message: format!("HTTP {status}: {message}"),
        },
        s => ConnectorError::Rejected { status: s, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_up_to_a_day() {
        assert_eq!(retry_after_value("7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after_value(" 0 "), Some(Duration::ZERO));
        assert_eq!(retry_after_value("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after_value("86401"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after_value("99999999999999999999999"),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after_value("-5"), None);
        assert_eq!(retry_after_value("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn a_gateway_that_gave_up_leaves_the_outcome_unknown_an_origin_error_does_not() {
        let class = |code: u16| {
            let e = status_error(
                StatusCode::from_u16(code).expect("status"),
                None,
                "x",
                "m".into(),
            );
            match e {
                ConnectorError::Unanswered { .. } => "unanswered",
                ConnectorError::Transient { .. } => "transient",
                ConnectorError::Throttled { .. } => "throttled",
                ConnectorError::Config { .. } => "config",
                ConnectorError::Rejected { .. } => "rejected",
                ConnectorError::Protocol { .. } => "protocol",
            }
        };
        let got: Vec<(u16, &str)> = [400, 401, 403, 404, 408, 429, 500, 501, 502, 503, 504, 599]
            .into_iter()
            .map(|c| (c, class(c)))
            .collect();
        assert_eq!(
            got,
            vec![
                (400, "rejected"),
                (401, "config"),
                (403, "config"),
                (404, "rejected"),
                (408, "transient"),
                (429, "throttled"),
                (500, "transient"),
                (501, "transient"),
                (502, "unanswered"),
                (503, "transient"),
                (504, "unanswered"),
                (599, "transient"),
            ]
        );
    }
}
