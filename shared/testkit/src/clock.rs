//! Time that tests control.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use ferry_core::deps::chrono_duration;
use ferry_core::ports::Clock;

/// How a contract suite makes time pass: instantly for adapters that read a
/// [`ManualClock`], by sleeping for adapters backed by a real service.
#[async_trait]
pub trait TestTime: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    async fn pass(&self, d: Duration);
}

/// A clock that only moves when told to.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// Starts at 2026-11-02 09:00:00 UTC.
    pub fn new() -> Self {
        Self::at(
            Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
                .single()
                .expect("valid date"),
        )
    }

    pub fn at(t: DateTime<Utc>) -> Self {
        ManualClock { now: Mutex::new(t) }
    }

    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().expect("not poisoned");
        *now += chrono_duration(d);
    }

    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().expect("not poisoned") = t;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("not poisoned")
    }
}

#[async_trait]
impl TestTime for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Clock::now(self)
    }
    async fn pass(&self, d: Duration) {
        self.advance(d);
    }
}

/// Real time, for adapters backed by a real service (SQS on an emulator).
pub struct RealTime;

#[async_trait]
impl TestTime for RealTime {
    fn now(&self) -> DateTime<Utc> {
        ferry_core::ports::SystemClock.now()
    }
    async fn pass(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}
