//! Errors that carry a retry class, so every layer can say whether a failure is
//! worth retrying, must wait, or will never succeed without a change.

use std::fmt;
use std::time::Duration;

/// What a failure means for the message that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// May succeed if tried again (timeouts, 5xx, a store briefly unavailable).
    Transient,
    /// The other side asked us to slow down; wait at least this long.
    Throttled { retry_after: Option<Duration> },
    /// Will fail again until data, mapping or configuration changes.
    Permanent,
}

/// A port (store, queue, bus) failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{port}.{op}: {message}")]
pub struct PortError {
    pub port: &'static str,
    pub op: &'static str,
    pub message: String,
    pub class: RetryClass,
}

impl PortError {
    pub fn transient(port: &'static str, op: &'static str, message: impl fmt::Display) -> Self {
        PortError {
            port,
            op,
            message: message.to_string(),
            class: RetryClass::Transient,
        }
    }

    pub fn permanent(port: &'static str, op: &'static str, message: impl fmt::Display) -> Self {
        PortError {
            port,
            op,
            message: message.to_string(),
            class: RetryClass::Permanent,
        }
    }
}

/// A vendor API call failed. Connectors classify; use cases decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// 5xx, a store or budget briefly unavailable, a connection refused: worth
    /// retrying. Where the vendor answered, it has finished with the request.
    #[error("transient: {message}")]
    Transient { message: String },
    /// The request was sent and no answer came from the vendor (a timeout, a
    /// connection dropped mid-answer, a gateway's 502/504): the vendor may still
    /// be applying it. Retried like `Transient`, after the vendor has had time to finish.
    #[error("no answer: {message}")]
    Unanswered { message: String },
    /// 429 or the vendor's equivalent.
    #[error("throttled ({problem}): retry after {retry_after:?}")]
    Throttled {
        retry_after: Option<Duration>,
        problem: String,
    },
    /// The vendor refused the request as such (4xx other than 429); carries its message.
    #[error("rejected by vendor (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// Credentials or configuration are wrong; no retry will help.
    #[error("configuration: {message}")]
    Config { message: String },
    /// The vendor answered with something we cannot read.
    #[error("unreadable response: {message}")]
    Protocol { message: String },
}

/// An error that says what it means for retrying (connectors, ports, the
/// use cases' own errors): what [`crate::gate::Patience`] waits out.
pub trait Classified: fmt::Display {
    fn class(&self) -> RetryClass;
}

impl Classified for ConnectorError {
    fn class(&self) -> RetryClass {
        ConnectorError::class(self)
    }
}

impl ConnectorError {
    pub fn class(&self) -> RetryClass {
        match self {
            ConnectorError::Transient { .. } | ConnectorError::Unanswered { .. } => {
                RetryClass::Transient
            }
            ConnectorError::Throttled { retry_after, .. } => RetryClass::Throttled {
                retry_after: *retry_after,
            },
            ConnectorError::Rejected { .. }
            | ConnectorError::Config { .. }
            | ConnectorError::Protocol { .. } => RetryClass::Permanent,
        }
    }

    pub fn transient(message: impl fmt::Display) -> Self {
        ConnectorError::Transient {
            message: message.to_string(),
        }
    }

    pub fn protocol(message: impl fmt::Display) -> Self {
        ConnectorError::Protocol {
            message: message.to_string(),
        }
    }
}

/// A source record could not be turned into a canonical record.
/// Names the field and the rule, so the owner knows what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {rule}{}", value.as_ref().map(|v| format!(" (got {v})")).unwrap_or_default())]
pub struct MappingError {
    pub field: String,
    pub rule: String,
    pub value: Option<String>,
}

impl MappingError {
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        MappingError {
            field: field.into(),
            rule: rule.into(),
            value: None,
        }
    }

    pub fn with_value(mut self, value: impl fmt::Display) -> Self {
        self.value = Some(value.to_string());
        self
    }
}
