//! Vendor connectors. Every vendor module has the same files, each with one job:
//! `config` (typed settings), `client` (HTTP calls, one per vendor endpoint, with
//! the vendor doc URL beside it), `raw` (permissive vendor types), `mapper`
//! (pure, fallible conversions to and from the canonical model), `webhook`
//! (signature verification over the raw body), and retry rules in `client`.

pub mod api;
pub mod businesscentral;
pub mod connectwise;
pub mod credential;
pub mod harvest;
pub mod http;
pub mod netsuite;
pub mod polled;
#[cfg(test)]
mod properties;
pub mod psa;
pub mod redmine;
pub mod registry;
pub mod tenant;
pub mod token;
pub mod tombstone;
pub mod tryton;
pub mod write_back;
pub mod xero;

pub mod json {
    //! Exact JSON numbers from decimals (vendors want numbers, Ferry never uses floats).

    use std::str::FromStr;

    use rust_decimal::Decimal;

    /// A JSON number with exactly the decimal's digits.
    pub fn number(d: Decimal) -> serde_json::Value {
        let text = d.normalize().to_string();
        serde_json::Value::Number(
            serde_json::Number::from_str(&text).expect("a decimal is a valid JSON number"),
        )
    }
}
