//! Posting documents → Business Central entities, and its documents → the
//! neutral shapes reconciliation reads.
//!
//! Ferry's reference is a customer's `number` (Code[20], hence the 20-character
//! references) and a document's `externalDocumentNumber`. A line with an item
//! is an `Item` line, else an `Account` line (a G/L account); dimensions are
//! the line's `dimensionSetLines` (the template's ERP category is the
//! dimension code). Amounts are tax-exclusive; Business Central adds the tax.

use chrono::NaiveDate;
use ferry_canon::Currency;
use ferry_core::ConnectorError;
use ferry_core::ports::{ErpDocument, ErpLine, ErpState, OutboundItem};
use ferry_core::posting::{DocBody, DocKind, InvoiceDoc, PostingLine};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::json::number;

/// The entity a kind is written to.
pub fn entity(kind: DocKind) -> Option<&'static str> {
    match kind {
        DocKind::Contact => Some("customers"),
        DocKind::Invoice => Some("salesInvoices"),
        DocKind::CreditNote => Some("salesCreditMemos"),
        DocKind::Project | DocKind::Timesheet => None,
    }
}

/// A document's lines' navigation property.
pub fn lines_of(kind: DocKind) -> &'static str {
    match kind {
        DocKind::CreditNote => "salesCreditMemoLines",
        _ => "salesInvoiceLines",
    }
}

/// A document's date field.
pub fn date_field(kind: DocKind) -> &'static str {
    match kind {
        DocKind::CreditNote => "creditMemoDate",
        _ => "invoiceDate",
    }
}

/// The customer entity.
pub fn customer(item: &OutboundItem) -> Result<Value, ConnectorError> {
    let DocBody::Contact(c) = &item.doc.body else {
        return Err(ConnectorError::Config {
            message: format!("{} is not a customer", item.doc.key),
        });
    };
    let mut o = Map::new();
    o.insert("number".into(), json!(item.doc.reference));
    o.insert("displayName".into(), json!(c.name));
    o.insert(
        "blocked".into(),
        json!(if c.archived { "All" } else { " " }),
    );
    if let Some(e) = &c.email {
        o.insert("email".into(), json!(e));
    }
    if let Some(p) = &c.phone {
        o.insert("phoneNumber".into(), json!(p));
    }
    if let Some(cur) = c.currency {
        o.insert("currencyCode".into(), json!(cur.code()));
    }
    if let Some(a) = &c.address {
        if let Some(l) = a.lines.first() {
            o.insert("addressLine1".into(), json!(l));
        }
        if let Some(city) = &a.city {
            o.insert("city".into(), json!(city));
        }
        if let Some(pc) = &a.postal_code {
            o.insert("postalCode".into(), json!(pc));
        }
    }
    Ok(Value::Object(o))
}

/// One document line.
pub fn line(l: &PostingLine) -> Value {
    let mut o = Map::new();
    match (&l.item_code, &l.account_code) {
        (Some(item), _) => {
            o.insert("lineType".into(), json!("Item"));
            o.insert("lineObjectNumber".into(), json!(item));
        }
        (None, Some(account)) => {
            o.insert("lineType".into(), json!("Account"));
            o.insert("lineObjectNumber".into(), json!(account));
        }
        (None, None) => {
            o.insert("lineType".into(), json!("Comment"));
        }
    }
    o.insert("description".into(), json!(l.description));
    o.insert("quantity".into(), number(l.quantity));
    o.insert("unitPrice".into(), number(l.unit_amount));
    if let Some(t) = &l.tax_type {
        o.insert("taxCode".into(), json!(t));
    }
    if !l.tracking.is_empty() {
        o.insert(
            "dimensionSetLines".into(),
            Value::Array(
                l.tracking
                    .iter()
                    .map(|t| json!({ "code": t.category, "valueCode": t.option }))
                    .collect(),
            ),
        );
    }
    Value::Object(o)
}

/// A document's header (without lines).
pub fn header(kind: DocKind, reference: &str, inv: &InvoiceDoc) -> Value {
    let mut o = Map::new();
    o.insert("externalDocumentNumber".into(), json!(reference));
    o.insert("customerId".into(), json!(inv.contact_erp_id));
    o.insert(date_field(kind).into(), json!(inv.date.to_string()));
    if let Some(d) = inv.due_date {
        o.insert("dueDate".into(), json!(d.to_string()));
    }
    o.insert("currencyCode".into(), json!(inv.currency.code()));
    Value::Object(o)
}

/// Whether Business Central's `current` document (read with its lines) already
/// holds what Ferry would write: every header field and every field of every
/// line, in order, equal (numbers as decimals). A field Ferry writes that the
/// read does not show counts as different, so a doubt always means a write.
pub fn holds(kind: DocKind, current: &Value, reference: &str, inv: &InvoiceDoc) -> bool {
    let lines = current.get(lines_of(kind)).and_then(Value::as_array);
    let Some(lines) = lines else { return false };
    contains(current, &header(kind, reference, inv))
        && lines.len() == inv.lines.len()
        && lines
            .iter()
            .zip(&inv.lines)
            .all(|(have, want)| contains(have, &line(want)))
}

/// Every field of `want` is in `have` with the same value.
fn contains(have: &Value, want: &Value) -> bool {
    let Some(want) = want.as_object() else {
        return false;
    };
    want.iter()
        .all(|(k, w)| have.get(k).is_some_and(|h| same(h, w)))
}

fn same(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Number(_) | Value::String(_), Value::Number(w)) => {
            let text = match have {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            matches!(
                (Decimal::from_str_exact(&text), Decimal::from_str_exact(&w.to_string())),
                (Ok(a), Ok(b)) if a == b
            )
        }
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(h, w)| contains(h, w) || h == w)
        }
        _ => have == want,
    }
}

/// The whole request body of a new document: header and lines (deep insert).
pub fn document(kind: DocKind, item: &OutboundItem) -> Result<Value, ConnectorError> {
    let DocBody::Invoice(inv) = &item.doc.body else {
        return Err(ConnectorError::Config {
            message: format!("{} is not an invoice or credit memo", item.doc.key),
        });
    };
    let mut h = header(kind, &item.doc.reference, inv);
    h[lines_of(kind)] = Value::Array(inv.lines.iter().map(line).collect());
    Ok(h)
}

/// The request body for one item (for posting, preview and audit).
pub fn render(item: &OutboundItem) -> Result<Value, ConnectorError> {
    match item.doc.kind {
        DocKind::Contact => customer(item),
        k @ (DocKind::Invoice | DocKind::CreditNote) => document(k, item),
        k => Err(ConnectorError::Config {
            message: format!(
                "Business Central documents of kind {} are not written by Ferry",
                k.as_str()
            ),
        }),
    }
}

fn dec(v: &Value, field: &str) -> Decimal {
    match v.get(field) {
        Some(Value::Number(n)) => n.to_string().parse().unwrap_or_default(),
        Some(Value::String(s)) => s.parse().unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

fn text(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(String::from)
}

/// A document's status in Ferry's words.
pub fn state(status: Option<&str>, id: &str) -> Result<ErpState, ConnectorError> {
    Ok(match status {
        Some("Draft") => ErpState::Draft,
        Some("In Review") => ErpState::Submitted,
        Some("Open") => ErpState::Posted,
        Some("Paid") => ErpState::Paid,
        Some("Canceled" | "Corrective") => ErpState::Voided,
        other => {
            return Err(ConnectorError::protocol(format!(
                "Business Central document {id} has status {other:?}, which Ferry does not know"
            )));
        }
    })
}

/// A document with its lines expanded → the neutral document.
pub fn read_document(kind: DocKind, v: &Value) -> Result<ErpDocument, ConnectorError> {
    let id = text(v, "id")
        .ok_or_else(|| ConnectorError::protocol("Business Central document without an id"))?;
    let currency = text(v, "currencyCode")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            ConnectorError::protocol(format!(
                "Business Central document {id} without currencyCode"
            ))
        })
        .and_then(|c| Currency::parse(&c).map_err(|e| ConnectorError::protocol(e.to_string())))?;
    let date = text(v, date_field(kind))
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .ok_or_else(|| {
            ConnectorError::protocol(format!("Business Central document {id} without a date"))
        })?;
    let total = dec(v, "totalAmountIncludingTax");
    let due = dec(v, "remainingAmount");
    let lines = v
        .get(lines_of(kind))
        .and_then(Value::as_array)
        .map(|ls| {
            ls.iter()
                .filter(|l| l.get("lineType").and_then(Value::as_str) != Some("Comment"))
                .map(|l| {
                    let object = text(l, "lineObjectNumber");
                    let is_item = l.get("lineType").and_then(Value::as_str) == Some("Item");
                    ErpLine {
                        item_code: if is_item { object.clone() } else { None },
                        account_code: if is_item { None } else { object },
                        quantity: dec(l, "quantity"),
                        line_amount: dec(l, "netAmount"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ErpDocument {
        kind,
        number: text(v, "number"),
        reference: text(v, "externalDocumentNumber"),
        contact_erp_id: text(v, "customerId"),
        date,
        currency,
        state: state(v.get("status").and_then(Value::as_str), &id)?,
        subtotal: dec(v, "totalAmountExcludingTax"),
        tax: dec(v, "totalTaxAmount"),
        total,
        amount_paid: total - due,
        amount_due: due,
        lines,
        erp_id: id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_reads_in_ferrys_words_and_an_unknown_status_is_an_error() {
        let doc = json!({ "id": "5d11", "number": "S-INV100001", "externalDocumentNumber": "FERRY-I-7",
            "customerId": "c1", "invoiceDate": "2026-10-31", "currencyCode": "USD", "status": "Open",
            "totalAmountExcludingTax": 300, "totalTaxAmount": "26.63", "totalAmountIncludingTax": 326.63,
            "remainingAmount": 126.63,
            "salesInvoiceLines": [
                { "lineType": "Item", "lineObjectNumber": "CONS", "quantity": 2, "netAmount": 300 },
                { "lineType": "Comment", "description": "note" } ] });
        let d = read_document(DocKind::Invoice, &doc).expect("read");
        assert_eq!(d.state, ErpState::Posted);
        assert_eq!(d.amount_paid, Decimal::from(200));
        assert_eq!(d.lines.len(), 1, "comment lines are not amounts");
        assert_eq!(d.lines[0].item_code.as_deref(), Some("CONS"));
        for (s, want) in [
            ("Draft", ErpState::Draft),
            ("In Review", ErpState::Submitted),
            ("Paid", ErpState::Paid),
            ("Canceled", ErpState::Voided),
        ] {
            assert_eq!(state(Some(s), "x").expect("known"), want);
        }
        assert!(state(Some("Archived"), "x").is_err());
        let mut no_currency = doc.clone();
        no_currency["currencyCode"] = json!("");
        assert!(
            read_document(DocKind::Invoice, &no_currency).is_err(),
            "a document without its currency is an error"
        );
    }

    #[test]
    fn lines_are_items_or_accounts_with_their_dimensions() {
        let item = PostingLine {
            kind: ferry_canon::LineKind::Time,
            description: "Consulting".into(),
            quantity: Decimal::new(15, 1),
            unit_amount: Decimal::from(150),
            line_amount: Decimal::from(225),
            item_code: Some("CONS".into()),
            account_code: None,
            tax_type: Some("TAXABLE".into()),
            tracking: vec![ferry_core::posting::Tracking {
                category: "DEPARTMENT".into(),
                option: "ENG".into(),
            }],
        };
        let l = line(&item);
        assert_eq!(l["lineType"], "Item");
        assert_eq!(l["quantity"].to_string(), "1.5");
        assert_eq!(
            l["dimensionSetLines"][0],
            json!({ "code": "DEPARTMENT", "valueCode": "ENG" })
        );
        let account = PostingLine {
            item_code: None,
            account_code: Some("40250".into()),
            ..item
        };
        assert_eq!(line(&account)["lineType"], "Account");
    }

    #[test]
    fn a_document_holds_what_ferry_would_write_only_when_every_field_agrees() {
        let inv = InvoiceDoc {
            contact_erp_id: "c1".into(),
            contact_key: "customers/connectwise:1".parse().expect("a key"),
            number: None,
            date: NaiveDate::from_ymd_opt(2026, 10, 31).expect("date"),
            due_date: None,
            currency: Currency::parse("USD").expect("code"),
            status: ferry_core::posting::DocStatus::Authorised,
            lines: vec![PostingLine {
                kind: ferry_canon::LineKind::Time,
                description: "Consulting".into(),
                quantity: Decimal::new(15, 1),
                unit_amount: Decimal::from(150),
                line_amount: Decimal::from(225),
                item_code: Some("CONS".into()),
                account_code: None,
                tax_type: None,
                tracking: vec![],
            }],
            subtotal: Decimal::from(225),
        };
        // As Business Central shows it: its own fields besides, numbers as it writes them.
        let current = json!({ "id": "d1", "status": "Open", "number": "S-INV1",
            "externalDocumentNumber": "FERRY-I-7", "customerId": "c1",
            "invoiceDate": "2026-10-31", "currencyCode": "USD",
            "salesInvoiceLines": [{ "id": "l1", "lineType": "Item", "lineObjectNumber": "CONS",
                "description": "Consulting", "quantity": 1.50, "unitPrice": "150.00",
                "amountExcludingTax": 225 }] });
        assert!(holds(DocKind::Invoice, &current, "FERRY-I-7", &inv));
        for (path, value) in [
            ("/externalDocumentNumber", json!("FERRY-I-8")),
            ("/invoiceDate", json!("2026-10-30")),
            ("/salesInvoiceLines/0/quantity", json!(1.75)),
            ("/salesInvoiceLines/0/description", json!("Design")),
        ] {
            let mut changed = current.clone();
            *changed.pointer_mut(path).expect("field") = value;
            assert!(
                !holds(DocKind::Invoice, &changed, "FERRY-I-7", &inv),
                "{path} differs"
            );
        }
        let mut extra = current.clone();
        extra["salesInvoiceLines"]
            .as_array_mut()
            .expect("lines")
            .push(json!({ "lineType": "Comment" }));
        assert!(
            !holds(DocKind::Invoice, &extra, "FERRY-I-7", &inv),
            "a line more"
        );
        let mut unread = current.clone();
        unread["salesInvoiceLines"][0]
            .as_object_mut()
            .expect("line")
            .remove("unitPrice");
        assert!(
            !holds(DocKind::Invoice, &unread, "FERRY-I-7", &inv),
            "a field the read does not show is a doubt"
        );
    }
}
