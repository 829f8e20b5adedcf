//! The list of synced domains and the tagged union of canonical records.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::RecordMeta;
use crate::records::*;

/// A synced data domain. Templates, cursors, exceptions and reports are keyed by it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    Customers,
    Contacts,
    Projects,
    Roles,
    Resources,
    TimeEntries,
    Expenses,
    BillingEvents,
    Invoices,
    CreditMemos,
    Payments,
    PurchaseCommitments,
    RevenueSchedules,
    TaxCodes,
    Dimensions,
    Currencies,
}

impl Domain {
    pub const ALL: [Domain; 16] = [
        Domain::Customers,
        Domain::Contacts,
        Domain::Projects,
        Domain::Roles,
        Domain::Resources,
        Domain::TimeEntries,
        Domain::Expenses,
        Domain::BillingEvents,
        Domain::Invoices,
        Domain::CreditMemos,
        Domain::Payments,
        Domain::PurchaseCommitments,
        Domain::RevenueSchedules,
        Domain::TaxCodes,
        Domain::Dimensions,
        Domain::Currencies,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Domain::Customers => "customers",
            Domain::Contacts => "contacts",
            Domain::Projects => "projects",
            Domain::Roles => "roles",
            Domain::Resources => "resources",
            Domain::TimeEntries => "time_entries",
            Domain::Expenses => "expenses",
            Domain::BillingEvents => "billing_events",
            Domain::Invoices => "invoices",
            Domain::CreditMemos => "credit_memos",
            Domain::Payments => "payments",
            Domain::PurchaseCommitments => "purchase_commitments",
            Domain::RevenueSchedules => "revenue_schedules",
            Domain::TaxCodes => "tax_codes",
            Domain::Dimensions => "dimensions",
            Domain::Currencies => "currencies",
        }
    }

    pub fn parse(s: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any canonical record, tagged by its domain:
/// `{"domain": "time_entries", "record": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "domain", content = "record", rename_all = "snake_case")]
pub enum CanonicalRecord {
    Customers(Account),
    Contacts(Contact),
    Projects(Project),
    Roles(Role),
    Resources(Resource),
    TimeEntries(TimeEntry),
    Expenses(Expense),
    BillingEvents(BillingEvent),
    Invoices(Invoice),
    CreditMemos(Invoice),
    Payments(Payment),
    PurchaseCommitments(PurchaseCommitment),
    RevenueSchedules(RevenueSchedule),
    TaxCodes(TaxCode),
    Dimensions(Dimension),
    Currencies(CurrencyRecord),
}

impl CanonicalRecord {
    pub fn domain(&self) -> Domain {
        match self {
            CanonicalRecord::Customers(_) => Domain::Customers,
            CanonicalRecord::Contacts(_) => Domain::Contacts,
            CanonicalRecord::Projects(_) => Domain::Projects,
            CanonicalRecord::Roles(_) => Domain::Roles,
            CanonicalRecord::Resources(_) => Domain::Resources,
            CanonicalRecord::TimeEntries(_) => Domain::TimeEntries,
            CanonicalRecord::Expenses(_) => Domain::Expenses,
            CanonicalRecord::BillingEvents(_) => Domain::BillingEvents,
            CanonicalRecord::Invoices(_) => Domain::Invoices,
            CanonicalRecord::CreditMemos(_) => Domain::CreditMemos,
            CanonicalRecord::Payments(_) => Domain::Payments,
            CanonicalRecord::PurchaseCommitments(_) => Domain::PurchaseCommitments,
            CanonicalRecord::RevenueSchedules(_) => Domain::RevenueSchedules,
            CanonicalRecord::TaxCodes(_) => Domain::TaxCodes,
            CanonicalRecord::Dimensions(_) => Domain::Dimensions,
            CanonicalRecord::Currencies(_) => Domain::Currencies,
        }
    }

    pub fn meta(&self) -> &RecordMeta {
        match self {
            CanonicalRecord::Customers(r) => &r.meta,
            CanonicalRecord::Contacts(r) => &r.meta,
            CanonicalRecord::Projects(r) => &r.meta,
            CanonicalRecord::Roles(r) => &r.meta,
            CanonicalRecord::Resources(r) => &r.meta,
            CanonicalRecord::TimeEntries(r) => &r.meta,
            CanonicalRecord::Expenses(r) => &r.meta,
            CanonicalRecord::BillingEvents(r) => &r.meta,
            CanonicalRecord::Invoices(r) | CanonicalRecord::CreditMemos(r) => &r.meta,
            CanonicalRecord::Payments(r) => &r.meta,
            CanonicalRecord::PurchaseCommitments(r) => &r.meta,
            CanonicalRecord::RevenueSchedules(r) => &r.meta,
            CanonicalRecord::TaxCodes(r) => &r.meta,
            CanonicalRecord::Dimensions(r) => &r.meta,
            CanonicalRecord::Currencies(r) => &r.meta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_round_trips_through_its_name() {
        for d in Domain::ALL {
            assert_eq!(Domain::parse(d.as_str()), Some(d));
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
        }
        assert_eq!(Domain::parse("timesheets"), None);
    }
}
