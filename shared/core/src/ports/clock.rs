use chrono::{DateTime, Utc};

/// The current time. Adapters and use cases never call `Utc::now()` directly,
/// so tests can move time (visibility timeouts, expiries, backoff) without sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
