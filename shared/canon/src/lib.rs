//! Ferry's canonical model, version 1: every PSA/ERP domain the product syncs,
//! with exact money (`rust_decimal` + ISO 4217), UTC instants, plain accounting
//! dates, and on every record its tenant, source identity, external references,
//! source version and a deleted flag. Pure data: no I/O, no async.

pub mod domain;
pub mod meta;
pub mod money;
pub mod records;
pub mod schema;

pub use domain::{CanonicalRecord, Domain};
pub use meta::{ExternalRefs, IdError, RecordMeta, SourceRef, SourceVersion, SystemId, TenantId};
pub use money::{Currency, Money, MoneyError, Rounding};
pub use records::*;

/// Re-exported so downstream crates use the same decimal type.
pub use rust_decimal::Decimal;
