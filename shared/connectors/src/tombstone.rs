//! Records deleted at the source reach `to_canonical` as tombstones: the last
//! canonical form Ferry held, wrapped as `{"ferry_tombstone": …}` by transform,
//! so a mapper can build the reversal. Every PSA connector reads them the same way.

use ferry_canon::{CanonicalRecord, SourceVersion};
use ferry_core::MappingError;
use ferry_core::ports::SourceRecord;

/// The tombstone's record, flagged deleted at the record's version; `None` when
/// the record is not a tombstone.
pub fn read(rec: &SourceRecord) -> Option<Result<CanonicalRecord, MappingError>> {
    let t = rec.raw.get("ferry_tombstone")?;
    Some(
        serde_json::from_value::<CanonicalRecord>(t.clone())
            .map_err(|e| MappingError::new("tombstone", format!("unreadable: {e}")))
            .map(|mut c| {
                set_deleted(&mut c, rec.version.clone());
                c
            }),
    )
}

fn set_deleted(c: &mut CanonicalRecord, version: SourceVersion) {
    let meta = match c {
        CanonicalRecord::Customers(r) => &mut r.meta,
        CanonicalRecord::Projects(r) => &mut r.meta,
        CanonicalRecord::TimeEntries(r) => &mut r.meta,
        CanonicalRecord::Expenses(r) => &mut r.meta,
        CanonicalRecord::Invoices(r) | CanonicalRecord::CreditMemos(r) => &mut r.meta,
        CanonicalRecord::Contacts(r) => &mut r.meta,
        CanonicalRecord::Roles(r) => &mut r.meta,
        CanonicalRecord::Resources(r) => &mut r.meta,
        CanonicalRecord::BillingEvents(r) => &mut r.meta,
        CanonicalRecord::Payments(r) => &mut r.meta,
        CanonicalRecord::PurchaseCommitments(r) => &mut r.meta,
        CanonicalRecord::RevenueSchedules(r) => &mut r.meta,
        CanonicalRecord::TaxCodes(r) => &mut r.meta,
        CanonicalRecord::Dimensions(r) => &mut r.meta,
        CanonicalRecord::Currencies(r) => &mut r.meta,
    };
    meta.deleted = true;
    meta.source_version = version;
}
