//! How a failed invocation is reported: a `Diagnostic` whose `errorType` says
//! whether running it again can help, so alarms and replays can tell a store
//! outage from a bad event.

use lambda_runtime::Diagnostic;

/// A failed invocation.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// Worth another try (a store or vendor briefly unavailable, throttled).
    #[error("{0}")]
    Retryable(String),
    /// Will fail again until the event or the configuration changes.
    #[error("{0}")]
    NonRetryable(String),
}

impl FunctionError {
    pub fn error_type(&self) -> &'static str {
        match self {
            FunctionError::Retryable(_) => "Ferry.Retryable",
            FunctionError::NonRetryable(_) => "Ferry.NonRetryable",
        }
    }
}

impl From<ferry_core::PortError> for FunctionError {
    fn from(e: ferry_core::PortError) -> Self {
        match e.class {
            ferry_core::RetryClass::Permanent => FunctionError::NonRetryable(e.to_string()),
            _ => FunctionError::Retryable(e.to_string()),
        }
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Diagnostic {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}
