//! Shared test support: one contract suite per port (every adapter, embedded or
//! AWS, must pass the same suite), a controllable clock, and builders.

pub mod clock;
pub mod contracts;

pub use clock::{ManualClock, RealTime, TestTime};
