//! The rate-budget call gate every ERP connector calls before each request.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::deps::chrono_duration;
use crate::error::{Classified, ConnectorError, RetryClass};
use crate::ports::{Acquire, CallGate, Clock, RateBudget, RateLimits};

/// After waiting for budget, a call goes this long after the window allows it.
/// The ERP counts a call when it arrives, and the call that is leaving the window
/// may have arrived later than it was admitted (a slow connection, a busy host):
/// admitted exactly at the window's edge, the new call could reach the ERP while
/// the old one still counts there.
pub const ARRIVAL_MARGIN: Duration = Duration::from_millis(500);

/// Admits ERP calls against the account's shared budget. Short waits are slept
/// in-process; longer ones fail `Throttled` so the message goes back to the
/// queue instead of holding a worker.
pub struct BudgetGate {
    pub budget: Arc<dyn RateBudget>,
    pub clock: Arc<dyn Clock>,
    pub account: String,
    pub limits: RateLimits,
    pub max_wait: Duration,
}

#[async_trait]
impl CallGate for BudgetGate {
    async fn admit(&self) -> Result<(), ConnectorError> {
        let deadline = self.clock.now() + chrono_duration(self.max_wait);
        loop {
            let now = self.clock.now();
            let decision = self
                .budget
                .acquire(&self.account, &self.limits, now)
                .await
                .map_err(|e| ConnectorError::transient(format!("rate budget: {e}")))?;
            match decision {
                Acquire::Granted => return Ok(()),
                Acquire::Wait(wait) => {
                    let wait = wait + ARRIVAL_MARGIN;
                    if now + chrono_duration(wait) > deadline {
                        return Err(ConnectorError::Throttled {
                            retry_after: Some(wait),
                            problem: "local budget".into(),
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn throttled(&self, retry_after: Duration) {
        let until = self.clock.now() + chrono_duration(retry_after);
        if let Err(e) = self.budget.pause_until(&self.account, until).await {
            tracing::warn!(account = %self.account, error = %e, "could not record ERP pause");
        }
    }
}

/// Waits out throttling for work that holds no queue message (reconciliation,
/// a command someone runs): where a worker gives its message back and lets the
/// queue wait, such work has nothing to give back, so it sleeps for the wait
/// the vendor or the budget names and calls again, up to `left` in all.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    left: Duration,
}

/// Slept when a throttle names no wait.
const UNNAMED_WAIT: Duration = Duration::from_secs(1);

impl Patience {
    pub fn new(left: Duration) -> Patience {
        Patience { left }
    }

    /// Calls `f` until it is not throttled; a throttle whose wait is longer
    /// than what is left is returned as it came.
    pub async fn call<T, E, F, Fut>(&mut self, what: &str, mut f: F) -> Result<T, E>
    where
        E: Classified,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        loop {
            let e = match f().await {
                Err(e) => e,
                ok => return ok,
            };
            let RetryClass::Throttled { retry_after } = e.class() else {
                return Err(e);
            };
            let wait = retry_after.unwrap_or(UNNAMED_WAIT);
            if wait > self.left {
                return Err(e);
            }
            self.left -= wait;
            // A warning: whoever waits (a person at a command, a monthly
            // reconciliation) should see why nothing moves.
            tracing::warn!(
                what,
                error = %e,
                wait_ms = wait.as_millis() as u64,
                left_ms = self.left.as_millis() as u64,
                "throttled; waiting for the rate budget"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttled(ms: u64) -> ConnectorError {
        ConnectorError::Throttled {
            retry_after: Some(Duration::from_millis(ms)),
            problem: "test".into(),
        }
    }

    #[tokio::test]
    async fn patience_waits_out_throttles_until_its_allowance_is_spent() {
        let mut p = Patience::new(Duration::from_millis(25));
        let mut calls = 0;
        let r = p
            .call("read", || {
                calls += 1;
                let n = calls;
                async move { if n < 3 { Err(throttled(10)) } else { Ok(n) } }
            })
            .await;
        assert_eq!(r, Ok(3), "two 10 ms throttles fit in 25 ms");
        // 5 ms are left: a 10 ms throttle is handed back, after one call.
        let mut calls = 0;
        let r: Result<(), _> = p
            .call("read", || {
                calls += 1;
                async { Err(throttled(10)) }
            })
            .await;
        assert_eq!(r, Err(throttled(10)));
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn patience_passes_other_errors_through_at_once() {
        let mut p = Patience::new(Duration::from_secs(60));
        let mut calls = 0;
        let r: Result<(), _> = p
            .call("read", || {
                calls += 1;
                async { Err(ConnectorError::transient("down")) }
            })
            .await;
        assert_eq!(r, Err(ConnectorError::transient("down")));
        assert_eq!(calls, 1);
    }
}
