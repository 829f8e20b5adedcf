//! The rate-budget call gate every ERP connector calls before each request.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::deps::chrono_duration;
use crate::error::ConnectorError;
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
