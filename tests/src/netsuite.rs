//! A NetSuite account on the simulator, wired as a tenant's ERP (through the
//! registry, with its client-credentials key), and documents to write to it.

use chrono::NaiveDate;
use ferry_canon::Currency;
use ferry_core::ports::OutboundItem;
use ferry_core::posting::{
    ContactDoc, DocBody, DocKind, DocStatus, InvoiceDoc, PostingDoc, PostingLine, Tracking,
};
use ferry_sim::netsuite::stage::OnStage;
use rust_decimal::Decimal;

/// The simulator with the small firm's account set up, and a connection to it.
pub type NetSuiteAccount = crate::wired::Wired;

impl NetSuiteAccount {
    pub async fn netsuite() -> NetSuiteAccount {
        crate::wired::Wired::start("harvest", "netsuite", "ns-test").await
    }

    /// The simulator itself.
    pub fn sim(&self) -> &ferry_sim::netsuite::NetSuiteSim {
        let any: &dyn std::any::Any = self.pair.erp.as_any();
        &any.downcast_ref::<OnStage>()
            .expect("the NetSuite stage")
            .ns
    }
}

/// A customer document with Ferry's `reference`.
pub fn customer(reference: &str, name: &str) -> OutboundItem {
    OutboundItem {
        doc: PostingDoc {
            kind: DocKind::Contact,
            key: format!("customers/test:{reference}")
                .parse()
                .expect("a key"),
            reference: reference.into(),
            body: DocBody::Contact(ContactDoc {
                name: name.into(),
                email: None,
                phone: None,
                website: None,
                address: None,
                tax_type: Some("TAX".into()),
                currency: Some(Currency::parse("USD").expect("usd")),
                payment_terms_days: None,
                archived: false,
            }),
        },
        erp_id: None,
    }
}

/// A pending invoice of `hours` consulting hours at 150 for `contact`, taxed
/// `TAX`, in department `CONS` (NetSuite's `department` field).
pub fn invoice(reference: &str, contact: &str, date: NaiveDate, hours: i64) -> OutboundItem {
    invoice_with(reference, contact, date, hours, "TAX", "department")
}

/// The same invoice with another ERP's tax code and department dimension name.
pub fn invoice_with(
    reference: &str,
    contact: &str,
    date: NaiveDate,
    hours: i64,
    tax: &str,
    department: &str,
) -> OutboundItem {
    let amount = Decimal::from(hours * 150);
    OutboundItem {
        doc: PostingDoc {
            kind: DocKind::Invoice,
            key: format!("summary/test:{reference}").parse().expect("a key"),
            reference: reference.into(),
            body: DocBody::Invoice(InvoiceDoc {
                contact_erp_id: contact.into(),
                contact_key: "customers/test:c".parse().expect("a key"),
                number: None,
                date,
                due_date: None,
                currency: Currency::parse("USD").expect("usd"),
                status: DocStatus::Draft,
                lines: vec![PostingLine {
                    kind: ferry_canon::LineKind::Time,
                    description: "Consulting".into(),
                    quantity: Decimal::from(hours),
                    unit_amount: Decimal::from(150),
                    line_amount: amount,
                    item_code: Some("CONS".into()),
                    account_code: None,
                    tax_type: Some(tax.into()),
                    tracking: vec![Tracking {
                        category: department.into(),
                        option: "CONS".into(),
                    }],
                }],
                subtotal: amount,
            }),
        },
        erp_id: None,
    }
}
