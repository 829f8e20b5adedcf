//! Posting documents → Xero request bodies, and Xero documents → the neutral
//! shapes reconciliation reads. Numbers are written as exact JSON numbers.

use chrono::{DateTime, NaiveDate};
use ferry_canon::Currency;
use ferry_core::ConnectorError;
use ferry_core::ports::{ErpDocument, ErpLine, ErpPayment, ErpState, ItemResult, OutboundItem};
use ferry_core::posting::{DocBody, DocKind, DocStatus, PostingDoc};
use serde_json::{Map, Value, json};

use super::raw;
use crate::json::number;

fn status(s: DocStatus) -> &'static str {
    match s {
        DocStatus::Draft => "DRAFT",
        DocStatus::Authorised => "AUTHORISED",
        DocStatus::Deleted => "DELETED",
        DocStatus::Voided => "VOIDED",
    }
}

/// The Xero JSON for one document (`schemas.Contact`, `schemas.Invoice`, `schemas.CreditNote`).
pub fn render(item: &OutboundItem) -> Result<Value, ConnectorError> {
    let doc = &item.doc;
    match (&doc.body, doc.kind) {
        (DocBody::Contact(c), DocKind::Contact) => {
            let mut o = Map::new();
            if let Some(id) = &item.erp_id {
                o.insert("ContactID".into(), json!(id));
            }
            o.insert("ContactNumber".into(), json!(doc.reference));
            o.insert("Name".into(), json!(c.name));
            o.insert(
                "ContactStatus".into(),
                json!(if c.archived { "ARCHIVED" } else { "ACTIVE" }),
            );
            if let Some(e) = &c.email {
                o.insert("EmailAddress".into(), json!(e));
            }
            if let Some(p) = &c.phone {
                o.insert(
                    "Phones".into(),
                    json!([{ "PhoneType": "DEFAULT", "PhoneNumber": p }]),
                );
            }
            if let Some(a) = &c.address {
                let mut addr = Map::new();
                addr.insert("AddressType".into(), json!("STREET"));
                for (i, l) in a.lines.iter().take(4).enumerate() {
                    addr.insert(format!("AddressLine{}", i + 1), json!(l));
                }
                for (k, v) in [
                    ("City", &a.city),
                    ("Region", &a.region),
                    ("PostalCode", &a.postal_code),
                    ("Country", &a.country),
                ] {
                    if let Some(v) = v {
                        addr.insert(k.into(), json!(v));
                    }
                }
                o.insert("Addresses".into(), Value::Array(vec![Value::Object(addr)]));
            }
            if let Some(t) = &c.tax_type {
                o.insert("AccountsReceivableTaxType".into(), json!(t));
            }
            if let Some(cur) = &c.currency {
                o.insert("DefaultCurrency".into(), json!(cur.code()));
            }
            if let Some(days) = c.payment_terms_days {
                o.insert(
                    "PaymentTerms".into(),
                    json!({ "Sales": { "Day": days, "Type": "DAYSAFTERBILLDATE" } }),
                );
            }
            Ok(Value::Object(o))
        }
        (DocBody::Invoice(inv), DocKind::Invoice | DocKind::CreditNote) => {
            let credit = doc.kind == DocKind::CreditNote;
            let mut o = Map::new();
            if let Some(id) = &item.erp_id {
                o.insert(
                    if credit { "CreditNoteID" } else { "InvoiceID" }.into(),
                    json!(id),
                );
            }
            o.insert(
                "Type".into(),
                json!(if credit { "ACCRECCREDIT" } else { "ACCREC" }),
            );
            o.insert("Contact".into(), json!({ "ContactID": inv.contact_erp_id }));
            o.insert("Date".into(), json!(inv.date.to_string()));
            if let Some(d) = inv.due_date {
                o.insert("DueDate".into(), json!(d.to_string()));
            }
            if let Some(n) = &inv.number {
                o.insert(
                    if credit {
                        "CreditNoteNumber"
                    } else {
                        "InvoiceNumber"
                    }
                    .into(),
                    json!(n),
                );
            }
            o.insert("Reference".into(), json!(doc.reference));
            o.insert("CurrencyCode".into(), json!(inv.currency.code()));
            o.insert("Status".into(), json!(status(inv.status)));
            o.insert("LineAmountTypes".into(), json!("Exclusive"));
            // A deletion or void carries no lines: Xero only changes the status.
            if !matches!(inv.status, DocStatus::Deleted | DocStatus::Voided) {
                let lines: Vec<Value> = inv
                    .lines
                    .iter()
                    .map(|l| {
                        let mut li = Map::new();
                        li.insert("Description".into(), json!(l.description));
                        li.insert("Quantity".into(), number(l.quantity));
                        li.insert("UnitAmount".into(), number(l.unit_amount));
                        li.insert("LineAmount".into(), number(l.line_amount));
                        if let Some(c) = &l.item_code {
                            li.insert("ItemCode".into(), json!(c));
                        }
                        if let Some(c) = &l.account_code {
                            li.insert("AccountCode".into(), json!(c));
                        }
                        if let Some(t) = &l.tax_type {
                            li.insert("TaxType".into(), json!(t));
                        }
                        if !l.tracking.is_empty() {
                            li.insert(
                                "Tracking".into(),
                                Value::Array(
                                    l.tracking
                                        .iter()
                                        .map(|t| json!({ "Name": t.category, "Option": t.option }))
                                        .collect(),
                                ),
                            );
                        }
                        Value::Object(li)
                    })
                    .collect();
                o.insert("LineItems".into(), Value::Array(lines));
            }
            Ok(Value::Object(o))
        }
        (DocBody::Timesheet(_), _) => Err(ConnectorError::Config {
            message: format!(
                "timesheet {}: Xero's accounting API keeps no timesheets; remove `timesheets` from the template's time entries",
                doc.key
            ),
        }),
        (DocBody::Project(_), _) => Err(ConnectorError::Config {
            message: format!(
                "project {}: Xero's accounting API has no projects; keep [domains.projects] direction = \"reference\" in the template",
                doc.key
            ),
        }),
        (_, kind) => Err(ConnectorError::Config {
            message: format!(
                "document {} has a body that does not fit kind {}",
                doc.key,
                kind.as_str()
            ),
        }),
    }
}

/// Parses Xero's date forms: `/Date(1552262400000+0000)/`, `2019-03-11`, `2019-03-11T00:00:00`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if let Some(inner) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let digits: String = inner
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        let ms: i64 = digits.parse().ok()?;
        return DateTime::from_timestamp_millis(ms).map(|t| t.date_naive());
    }
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// Parses Xero's instants: `/Date(1552327126117+0000)/` or RFC 3339.
pub fn parse_instant(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Some(inner) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let digits: String = inner
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        return DateTime::from_timestamp_millis(digits.parse().ok()?);
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Xero's answer for one item of a write, read field by field from the JSON:
/// refused (its validation messages), created or updated (its id and number),
/// or unconfirmed when neither can be read (Xero may hold the document).
pub fn write_receipt(kind: DocKind, doc: Value) -> ItemResult {
    let (id_field, number_field, errors_flag) = match kind {
        DocKind::Contact => ("ContactID", "ContactNumber", "HasValidationErrors"),
        DocKind::CreditNote => ("CreditNoteID", "CreditNoteNumber", "HasErrors"),
        DocKind::Invoice | DocKind::Project | DocKind::Timesheet => {
            ("InvoiceID", "InvoiceNumber", "HasErrors")
        }
    };
    let text = |field: &str| doc.get(field).and_then(Value::as_str).map(str::to_string);
    let messages: Vec<String> = doc
        .get("ValidationErrors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.get("Message").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let flagged = text("StatusAttributeString").as_deref() == Some("ERROR")
        || doc.get(errors_flag).and_then(Value::as_bool) == Some(true);
    if !messages.is_empty() || flagged {
        return ItemResult::Rejected {
            messages: if messages.is_empty() {
                vec!["Xero marked the document as an error without a message".into()]
            } else {
                messages
            },
            response: doc,
        };
    }
    match text(id_field) {
        Some(erp_id) if !erp_id.is_empty() && erp_id != NIL_ID => ItemResult::Ok {
            erp_id,
            erp_number: text(number_field),
            response: doc,
        },
        _ => ItemResult::Unconfirmed {
            message: format!(
                "Xero accepted the document but its answer has no readable {id_field}"
            ),
            response: doc,
        },
    }
}

/// The id Xero puts in items it did not create.
const NIL_ID: &str = "00000000-0000-0000-0000-000000000000";

/// A Xero invoice or credit note → the neutral document reconciliation reads.
pub fn read_document(kind: DocKind, d: &raw::Document) -> Result<ErpDocument, ConnectorError> {
    let erp_id = match kind {
        DocKind::CreditNote => d.credit_note_id.clone(),
        _ => d.invoice_id.clone(),
    }
    .ok_or_else(|| ConnectorError::protocol("Xero document without an id"))?;
    let currency = d
        .currency_code
        .as_deref()
        .ok_or_else(|| {
            ConnectorError::protocol(format!("Xero document {erp_id} without CurrencyCode"))
        })
        .and_then(|c| Currency::parse(c).map_err(|e| ConnectorError::protocol(e.to_string())))?;
    let date = d.date.as_deref().and_then(parse_date).ok_or_else(|| {
        ConnectorError::protocol(format!("Xero document {erp_id} without a readable Date"))
    })?;
    let total = d.total.unwrap_or_default();
    let paid = match kind {
        DocKind::CreditNote => total - d.remaining_credit.unwrap_or(total),
        _ => d.amount_paid.unwrap_or_default(),
    };
    let state = state(d.status.as_deref(), &erp_id)?;
    Ok(ErpDocument {
        kind,
        number: match kind {
            DocKind::CreditNote => d.credit_note_number.clone(),
            _ => d.invoice_number.clone(),
        },
        erp_id,
        reference: d.reference.clone(),
        contact_erp_id: d.contact.as_ref().and_then(|c| c.contact_id.clone()),
        date,
        currency,
        state,
        subtotal: d.sub_total.unwrap_or_default(),
        tax: d.total_tax.unwrap_or_default(),
        total,
        amount_paid: paid,
        amount_due: d.amount_due.unwrap_or(total - paid),
        lines: d
            .line_items
            .iter()
            .map(|l| ErpLine {
                item_code: l.item_code.clone(),
                account_code: l.account_code.clone(),
                quantity: l.quantity.unwrap_or_default(),
                line_amount: l.line_amount.unwrap_or_default(),
            })
            .collect(),
    })
}

/// A Xero document status in Ferry's words.
fn state(status: Option<&str>, erp_id: &str) -> Result<ErpState, ConnectorError> {
    Ok(match status {
        Some("DRAFT") => ErpState::Draft,
        Some("SUBMITTED") => ErpState::Submitted,
        Some("AUTHORISED") => ErpState::Posted,
        Some("PAID") => ErpState::Paid,
        Some("VOIDED") => ErpState::Voided,
        Some("DELETED") => ErpState::Deleted,
        other => {
            return Err(ConnectorError::protocol(format!(
                "Xero document {erp_id} has status {other:?}, which Ferry does not know"
            )));
        }
    })
}

/// A Xero payment → the neutral payment; `None` for a payment on no invoice
/// (a prepayment or overpayment, which Ferry never posts). A payment on an
/// invoice that cannot be read whole is an error, never dropped or guessed.
pub fn read_payment(p: &raw::Payment) -> Result<Option<ErpPayment>, ConnectorError> {
    let Some(invoice) = p.invoice.as_ref() else {
        return Ok(None);
    };
    let id = p.payment_id.clone().unwrap_or_default();
    let missing = |what: &str| {
        ConnectorError::protocol(format!("Xero payment {id:?} on an invoice without {what}"))
    };
    let currency = invoice
        .currency_code
        .as_deref()
        .ok_or_else(|| missing("the invoice's CurrencyCode"))
        .and_then(|c| Currency::parse(c).map_err(|e| ConnectorError::protocol(e.to_string())))?;
    Ok(Some(ErpPayment {
        erp_id: p.payment_id.clone().ok_or_else(|| missing("a PaymentID"))?,
        invoice_erp_id: invoice
            .invoice_id
            .clone()
            .ok_or_else(|| missing("the InvoiceID"))?,
        date: p
            .date
            .as_deref()
            .and_then(parse_date)
            .ok_or_else(|| missing("a readable Date"))?,
        amount: ferry_canon::Money::new(p.amount.ok_or_else(|| missing("an Amount"))?, currency),
        reference: p.reference.clone(),
        state: match p.status.as_deref() {
            Some("AUTHORISED") => ErpState::Posted,
            Some("DELETED") => ErpState::Deleted,
            other => {
                return Err(ConnectorError::protocol(format!(
                    "Xero payment {id:?} has status {other:?}, which Ferry does not know"
                )));
            }
        },
    }))
}

/// The `where` filter for a document's reference.
pub fn reference_filter(doc: &PostingDoc) -> String {
    let escaped = doc.reference.replace('"', "");
    match doc.kind {
        DocKind::Contact => format!("ContactNumber==\"{escaped}\""),
        _ => format!("Reference==\"{escaped}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::posting::{InvoiceDoc, PostingLine, Tracking};
    use rust_decimal::Decimal;
    use std::str::FromStr;

    #[test]
    fn invoice_amounts_are_exact_json_numbers() {
        let doc = PostingDoc {
            kind: DocKind::Invoice,
            key: "summary/x".parse().expect("a key"),
            reference: "FERRY-S-1".into(),
            body: DocBody::Invoice(InvoiceDoc {
                contact_erp_id: "c-1".into(),
                contact_key: "customers/cw:1".parse().expect("a key"),
                number: None,
                date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
                due_date: None,
                currency: Currency::parse("USD").unwrap(),
                status: DocStatus::Draft,
                lines: vec![PostingLine {
                    kind: ferry_canon::LineKind::Time,
                    description: "Senior Consultant".into(),
                    quantity: Decimal::from_str("7.75").unwrap(),
                    unit_amount: Decimal::from_str("187.50").unwrap(),
                    line_amount: Decimal::from_str("1453.13").unwrap(),
                    item_code: Some("CONS-SR".into()),
                    account_code: None,
                    tax_type: None,
                    tracking: vec![Tracking {
                        category: "Department".into(),
                        option: "ENG".into(),
                    }],
                }],
                subtotal: Decimal::from_str("1453.13").unwrap(),
            }),
        };
        let v = render(&OutboundItem { doc, erp_id: None }).unwrap();
        let text = v.to_string();
        assert!(text.contains("\"Quantity\":7.75"), "{text}");
        assert!(text.contains("\"UnitAmount\":187.5"), "{text}");
        assert!(text.contains("\"LineAmount\":1453.13"), "{text}");
        assert_eq!(v["Type"], "ACCREC");
        assert_eq!(v["LineItems"][0]["Tracking"][0]["Name"], "Department");
    }

    #[test]
    fn xero_dates_parse_in_both_forms() {
        assert_eq!(
            parse_date("/Date(1552262400000+0000)/"),
            NaiveDate::from_ymd_opt(2019, 3, 11)
        );
        assert_eq!(
            parse_date("2019-03-11T00:00:00"),
            NaiveDate::from_ymd_opt(2019, 3, 11)
        );
        assert_eq!(parse_date("soon"), None);
    }
}
