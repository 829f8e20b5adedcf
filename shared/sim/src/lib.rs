//! Vendor API simulators: real HTTP servers on loopback that hold state,
//! enforce the vendor's limits, send signed webhooks and inject faults on
//! request. Used by the demo (`make run`), the tests and the benchmarks.

pub mod businesscentral;
pub mod conditions;
pub mod connectwise;
pub mod demo;
pub mod fault_proxy;
pub mod harvest;
pub mod netsuite;
pub mod server;
pub mod stage;
pub mod xero;

use std::str::FromStr;

use rust_decimal::Decimal;

/// The simulated vendor's own clock. A vendor's servers keep their own time,
/// which Ferry does not control: the simulators read the real clock, while
/// Ferry reads only its injected one.
#[allow(clippy::disallowed_methods)]
pub fn vendor_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// A random v4-shaped UUID (simulators only need uniqueness, not a crate).
pub fn uuid() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// An exact JSON number.
pub fn num(d: Decimal) -> serde_json::Value {
    serde_json::Value::Number(
        serde_json::Number::from_str(&d.normalize().to_string()).expect("decimal is a JSON number"),
    )
}
