//! How a handler's message ends: done, or put back to wait (backoff with
//! jitter, or the wait the other side named). Every use case answers with an
//! [`Outcome`]; the hosts act on it.

use std::time::Duration;

use crate::deps::Settings;
use crate::error::PortError;
use crate::ports::{OutboundMessage, QueueName, ReceivedMessage};

/// What a handler decided for one message. The host deletes `Done` messages
/// and hides `Retry` messages for `after` (SQS: ChangeMessageVisibility plus a
/// batch item failure), so the queue redelivers them — or dead-letters them
/// once they have been received too often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Retry {
        after: Duration,
        reason: String,
        /// The ERP refused for its rate limits (429): counted apart, alarmed on.
        throttled: bool,
    },
}

impl Outcome {
    pub fn retry(after: Duration, reason: impl Into<String>) -> Self {
        Outcome::Retry {
            after,
            reason: reason.into(),
            throttled: false,
        }
    }

    /// Retry after `after` because the ERP answered 429.
    pub fn throttled(after: Duration, reason: impl Into<String>) -> Self {
        Outcome::Retry {
            after,
            reason: reason.into(),
            throttled: true,
        }
    }

    /// Retry after the standard backoff for this delivery attempt.
    pub fn backoff(settings: &Settings, attempt: u32, reason: impl Into<String>) -> Self {
        Outcome::retry(backoff(settings, attempt), reason)
    }
}

/// The longest delay a queue message can be sent with (SQS `DelaySeconds`).
pub const MAX_SEND_DELAY: Duration = Duration::from_secs(900);

/// Puts back a message that must wait. A throttled message (the ERP's rate limit
/// or daily cap, no fault of the message) is sent again as a new message delayed
/// by the wait, then the received copy is deleted: waiting on a busy ERP never
/// uses up the message's receives, so it never ends in the dead-letter queue as
/// `retry.exhausted`. Any other retry keeps the message and its receive count.
/// Returns whether the received copy is gone (the SQS event source must then
/// not report it as a batch item failure).
pub async fn put_back(
    queue: &dyn crate::ports::Queue,
    name: QueueName,
    m: &ReceivedMessage,
    after: Duration,
    throttled: bool,
) -> Result<bool, PortError> {
    if throttled {
        queue
            .send(
                name,
                vec![OutboundMessage {
                    body: m.body.clone(),
                    delay: after.min(MAX_SEND_DELAY),
                }],
            )
            .await?;
        // Sent: should the delete fail, the old copy comes back too and the
        // handlers' idempotency makes the second delivery a no-op.
        queue.delete(name, &m.receipt).await?;
        return Ok(true);
    }
    queue.change_visibility(name, &m.receipt, after).await?;
    Ok(false)
}

/// Exponential backoff with "equal jitter": half the exponential delay plus a
/// random part of the other half, capped. `attempt` counts from 1.
pub fn backoff(settings: &Settings, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let full = settings
        .backoff_base
        .saturating_mul(1u32 << exp)
        .min(settings.backoff_cap);
    let half = full / 2;
    let jitter_ms = fastrand::u64(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter_ms)
}

/// A delay the other side asked for, or our backoff if it gave none.
pub fn retry_after_or_backoff(
    settings: &Settings,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    match retry_after {
        Some(d) => d.max(Duration::from_millis(100)),
        None => backoff(settings, attempt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_jitter_bounds_and_caps() {
        let s = Settings {
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(60),
            ..Settings::default()
        };
        for _ in 0..50 {
            let first = backoff(&s, 1);
            assert!(first >= Duration::from_secs(1) && first <= Duration::from_secs(2));
            let third = backoff(&s, 3);
            assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(8));
            let late = backoff(&s, 30);
            assert!(late >= Duration::from_secs(30) && late <= Duration::from_secs(60));
        }
    }

    #[test]
    fn a_vendor_retry_after_wins_over_backoff() {
        let s = Settings::default();
        assert_eq!(
            retry_after_or_backoff(&s, 5, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}
