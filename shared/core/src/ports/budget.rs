use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::PortError;

/// An ERP account's published limits, from its connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_minute: u32,
    pub per_day: u32,
    /// Calls in flight at once; enforced in-process by the connector and by
    /// consumer concurrency on AWS.
    pub concurrent: u32,
}

/// The answer to "may I call the ERP now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    Granted,
    /// Not before this much time has passed.
    Wait(Duration),
}

/// Calls used in the current windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub last_minute: u32,
    pub last_day: u32,
}

/// One rate-limit budget per ERP account, shared by every flow of the tenant
/// (sliding one-minute and one-day windows), plus pauses the ERP asked for.
#[async_trait]
pub trait RateBudget: Send + Sync {
    /// Takes one call from the budget if both windows have room and no pause is active.
    async fn acquire(
        &self,
        account: &str,
        limits: &RateLimits,
        now: DateTime<Utc>,
    ) -> Result<Acquire, PortError>;

    /// Blocks the account until `until` (the ERP answered 429 with `Retry-After`).
    async fn pause_until(&self, account: &str, until: DateTime<Utc>) -> Result<(), PortError>;

    async fn usage(&self, account: &str, now: DateTime<Utc>) -> Result<Usage, PortError>;
}
