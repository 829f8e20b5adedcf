//! The store rules: what the ledger, the idempotency store and the exception
//! store decide, as pure functions with their own table tests. The SQLite and
//! DynamoDB adapters read, call these, and write conditionally; neither
//! re-derives a rule (the Powertools shape: the protocol in one place,
//! backends only store).

pub mod exceptions;
pub mod idempotency;
pub mod ledger;
