//! Contracts for the stores, one file per store. Stores take `now` as an
//! argument, so these suites use fixed instants and need no clock.

use ferry_core::ReasonCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ferry_canon::{Domain, SourceVersion};
use ferry_core::ports::*;

use super::tenant;

mod audit;
mod budget;
mod cursor;
mod dedupe;
mod exceptions;
mod id_map;
mod idempotency;
mod ledger;
mod lock;
mod reports;
mod staging;

pub use audit::*;
pub use budget::*;
pub use cursor::*;
pub use dedupe::*;
pub use exceptions::*;
pub use id_map::*;
pub use idempotency::*;
pub use ledger::*;
pub use lock::*;
pub use reports::*;
pub use staging::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid")
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// One millisecond: every expiry is checked one millisecond before it and at it.
fn ms(n: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(n)
}
