//! Pure conversions between Ferry's posting documents and Tryton records.
//! Ferry's codes (item, account) are resolved to Tryton ids by the connector
//! before these run; `render` shows a document with its codes, for preview and audit.
//!
//! Size: about 430 lines of conversions (one per Tryton model Ferry writes or
//! reads) and their tests.

use chrono::NaiveDate;
use ferry_canon::{Address, Currency};
use ferry_core::ConnectorError;
use ferry_core::ports::{ErpDocument, ErpLine, ErpState, OutboundItem};
use ferry_core::posting::{
    ContactDoc, DocBody, DocKind, DocStatus, InvoiceDoc, PostingLine, ProjectDoc, TaskDoc,
    TimesheetDoc,
};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::raw;

pub const INVOICE: &str = "account.invoice";
pub const PARTY: &str = "party.party";
pub const WORK: &str = "project.work";
pub const TIMESHEET: &str = "timesheet.line";

/// Fields read back from `account.invoice`.
pub const INVOICE_FIELDS: &[&str] = &[
    "number",
    "reference",
    "state",
    "party",
    "invoice_date",
    "currency.code",
    "untaxed_amount",
    "tax_amount",
    "total_amount",
    "amount_to_pay",
    "write_date",
    "create_date",
    "lines.quantity",
    "lines.amount",
    "lines.product.code",
    "lines.account.code",
];

/// Tryton ids for one invoice line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineIds {
    pub product: Option<i64>,
    pub unit: Option<i64>,
    pub account: Option<i64>,
    pub taxes: Vec<i64>,
}

/// Tryton ids for an invoice header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderIds {
    pub company: i64,
    pub party: i64,
    pub invoice_address: Option<i64>,
    pub receivable: i64,
    pub journal: i64,
    pub currency: i64,
    pub payment_term: Option<i64>,
}

/// `-1` for credit notes: Tryton has one invoice model, and a customer credit
/// note is an `out` invoice whose lines have negative quantities.
pub fn sign(kind: DocKind) -> Decimal {
    if kind == DocKind::CreditNote {
        -Decimal::ONE
    } else {
        Decimal::ONE
    }
}

/// A Tryton float field (quantities) as a JSON number with the decimal's exact digits.
fn float(d: Decimal) -> Value {
    crate::json::number(d)
}

/// Street lines, city and postal code of a `party.address`.
pub fn address(a: Option<&Address>) -> Value {
    let mut o = Map::new();
    if let Some(a) = a {
        if !a.lines.is_empty() {
            o.insert("street".into(), json!(a.lines.join("\n")));
        }
        if let Some(c) = &a.city {
            o.insert("city".into(), json!(c));
        }
        if let Some(p) = &a.postal_code {
            o.insert("postal_code".into(), json!(p));
        }
    }
    Value::Object(o)
}

/// A new `party.party`: Ferry's reference in `code`, one address (invoices need
/// one), and email, phone and website as contact mechanisms.
pub fn new_party(reference: &str, c: &ContactDoc) -> Value {
    let mechanisms: Vec<Value> = [
        ("email", &c.email),
        ("phone", &c.phone),
        ("website", &c.website),
    ]
    .into_iter()
    .filter_map(|(ty, v)| v.as_ref().map(|v| json!({ "type": ty, "value": v })))
    .collect();
    let mut o = party_update(c);
    o["code"] = json!(reference);
    o["addresses"] = json!([["create", [address(c.address.as_ref())]]]);
    if !mechanisms.is_empty() {
        o["contact_mechanisms"] = json!([["create", mechanisms]]);
    }
    o
}

/// What Ferry keeps up to date on an existing party (Tryton fixes `code` once set).
pub fn party_update(c: &ContactDoc) -> Value {
    json!({ "name": c.name, "active": !c.archived })
}

/// Ferry's id for a Tryton record: `model,id`, Tryton's own reference notation.
/// Ids are only unique within a model, and Ferry keeps one id map for all kinds.
pub fn erp_id(model: &str, id: i64) -> String {
    format!("{model},{id}")
}

/// The record id from an id made by [`erp_id`] for `model`.
pub fn parse_erp_id(model: &str, erp_id: &str) -> Result<i64, ConnectorError> {
    erp_id
        .strip_prefix(model)
        .and_then(|rest| rest.strip_prefix(','))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ConnectorError::Config {
            message: format!("{erp_id:?} is not a Tryton {model} reference"),
        })
}

/// The first line of a `project.work` comment: Ferry's reference (Tryton lets no
/// one write a project's `number`, so the comment carries it).
pub fn project_comment(reference: &str, p: &ProjectDoc) -> String {
    format!(
        "{reference}\nSynced by Ferry from the PSA{}; Ferry finds this project by the first line.",
        p.code
            .as_ref()
            .map(|c| format!(" (project {c})"))
            .unwrap_or_default()
    )
}

/// A `project.work` of type project under its customer. Ferry invoices it
/// itself, so Tryton's own project invoicing is set to manual.
pub fn project_values(reference: &str, p: &ProjectDoc, party: i64, status: i64) -> Value {
    json!({
        "name": p.name,
        "party": party,
        "status": status,
        "comment": project_comment(reference, p),
        "timesheet_available": true,
    })
}

/// A task (`project.work` of type task) under a project; like projects, Ferry's
/// reference is the first line of its comment.
pub fn task_values(task: &TaskDoc) -> Value {
    json!({
        "name": task.name,
        "comment": format!("{}\nSynced by Ferry from the PSA; Ferry finds this task by the first line.", task.reference),
        "timesheet_available": true,
    })
}

/// Whether a `project.work` comment says it is the work with `reference`.
pub fn has_reference(comment: Option<&str>, reference: &str) -> bool {
    comment.and_then(|c| c.lines().next()) == Some(reference)
}

/// The values only a new project gets.
pub fn new_project(company: i64) -> Value {
    json!({ "type": "project", "company": company, "project_invoice_method": "manual" })
}

/// A `timesheet.line`'s description: Ferry's reference first, by which Ferry finds it.
pub fn timesheet_description(reference: &str, t: &TimesheetDoc) -> String {
    format!("{reference} {}", t.description)
}

/// A `timesheet.line`: hours as Tryton's `timedelta` (exact seconds).
pub fn timesheet_values(reference: &str, t: &TimesheetDoc, work: i64, employee: i64) -> Value {
    json!({
        "work": work,
        "employee": employee,
        "date": raw::date(t.date),
        "duration": raw::timedelta_hours(t.hours),
        "description": timesheet_description(reference, t),
    })
}

/// The header values of an `account.invoice`.
pub fn invoice_header(reference: &str, inv: &InvoiceDoc, ids: &HeaderIds) -> Value {
    let mut o = json!({
        "type": "out",
        "company": ids.company,
        "party": ids.party,
        "account": ids.receivable,
        "journal": ids.journal,
        "currency": ids.currency,
        "invoice_date": raw::date(inv.date),
        "reference": reference,
    });
    if let Some(a) = ids.invoice_address {
        o["invoice_address"] = json!(a);
    }
    if let Some(t) = ids.payment_term {
        o["payment_term"] = json!(t);
    }
    if let Some(n) = &inv.number {
        o["description"] = json!(format!("PSA invoice {n}"));
    }
    o
}

/// The values of one `account.invoice.line`.
pub fn invoice_line(line: &PostingLine, ids: &LineIds, sign: Decimal) -> Value {
    let mut o = json!({
        "type": "line",
        "description": line.description,
        "quantity": float(sign * line.quantity),
        "unit_price": raw::decimal(line.unit_amount),
    });
    if let Some(p) = ids.product {
        o["product"] = json!(p);
    }
    if let Some(u) = ids.unit {
        o["unit"] = json!(u);
    }
    if let Some(a) = ids.account {
        o["account"] = json!(a);
    }
    if !ids.taxes.is_empty() {
        o["taxes"] = json!([["add", ids.taxes]]);
    }
    o
}

/// One2many actions that turn `existing` lines into `wanted`: existing lines are
/// rewritten in place (so a changed quantity updates its line rather than adding
/// one), extra wanted lines are created and leftover existing ones deleted.
pub fn line_actions(existing: &[i64], wanted: Vec<Value>) -> Value {
    let mut actions = Vec::new();
    let mut create = Vec::new();
    for (i, values) in wanted.into_iter().enumerate() {
        match existing.get(i) {
            Some(id) => actions.push(json!(["write", [id], values])),
            None => create.push(values),
        }
    }
    if !create.is_empty() {
        actions.push(json!(["create", create]));
    }
    if existing.len() > actions.len() {
        let rest: Vec<i64> = existing[actions.len()..].to_vec();
        actions.push(json!(["delete", rest]));
    }
    Value::Array(actions)
}

/// The document as Ferry will write it, with its codes (ids are resolved at write time).
pub fn render(item: &OutboundItem) -> Result<Value, ConnectorError> {
    let doc = &item.doc;
    match &doc.body {
        DocBody::Contact(c) => {
            let mut v = new_party(&doc.reference, c);
            if let Some(id) = &item.erp_id {
                v["id"] = json!(id);
            }
            Ok(v)
        }
        DocBody::Timesheet(t) => Ok(json!({
            "id": item.erp_id,
            "project": t.project_erp_id,
            "employee": t.person,
            "date": raw::date(t.date),
            "duration": raw::timedelta_hours(t.hours),
            "description": timesheet_description(&doc.reference, t),
            "removed": t.removed,
        })),
        DocBody::Project(p) => Ok(json!({
            "id": item.erp_id,
            "type": "project",
            "name": p.name,
            "party": p.contact_erp_id,
            "status": if p.closed { "Done" } else { "Open" },
            "comment": project_comment(&doc.reference, p),
        })),
        DocBody::Invoice(inv) => {
            if inv.lines.iter().any(|l| !l.tracking.is_empty()) {
                return Err(ConnectorError::Config {
                    message: "the Tryton connector does not post tracking (analytic) dimensions; \
                              remove erp_category from the template's dimensions"
                        .into(),
                });
            }
            let s = sign(doc.kind);
            let lines: Vec<Value> = inv
                .lines
                .iter()
                .map(|l| {
                    json!({
                        "description": l.description,
                        "quantity": float(s * l.quantity),
                        "unit_price": raw::decimal(l.unit_amount),
                        "product_code": l.item_code,
                        "account_code": l.account_code,
                        "tax": l.tax_type,
                    })
                })
                .collect();
            Ok(json!({
                "id": item.erp_id,
                "type": "out",
                "party": inv.contact_erp_id,
                "invoice_date": raw::date(inv.date),
                "reference": doc.reference,
                "currency": inv.currency.code(),
                "state": match inv.status {
                    DocStatus::Draft => "draft",
                    DocStatus::Authorised => "posted",
                    DocStatus::Deleted => "deleted",
                    DocStatus::Voided => "cancelled",
                },
                "lines": lines,
            }))
        }
    }
}

/// Tryton's invoice state in Ferry's status words.
/// A Tryton invoice state in Ferry's words.
pub fn state(state: &str, id: i64) -> Result<ErpState, ConnectorError> {
    Ok(match state {
        "draft" => ErpState::Draft,
        // Numbered and checked, waiting to be posted.
        "validated" => ErpState::Submitted,
        "posted" => ErpState::Posted,
        "paid" => ErpState::Paid,
        "cancelled" => ErpState::Voided,
        other => {
            return Err(ConnectorError::protocol(format!(
                "Tryton invoice {id} has state {other:?}, which Ferry does not know"
            )));
        }
    })
}

fn dec(v: &Value, k: &str) -> Decimal {
    v.get(k).and_then(raw::read_decimal).unwrap_or_default()
}

/// An `account.invoice` read with [`INVOICE_FIELDS`], as Ferry compares it.
/// Credit notes (negative totals) are returned with positive amounts, like the
/// other ERPs' credit notes.
pub fn read_document(v: &Value) -> Result<ErpDocument, ConnectorError> {
    let id = raw::id(v).ok_or_else(|| ConnectorError::protocol("Tryton invoice without an id"))?;
    let state = raw::text(v, "state").unwrap_or_default();
    let total = dec(v, "total_amount");
    let kind = if total.is_sign_negative() && !total.is_zero() {
        DocKind::CreditNote
    } else {
        DocKind::Invoice
    };
    let s = sign(kind);
    let currency_code = v
        .get("currency")
        .and_then(|c| raw::text(c, "code"))
        .unwrap_or_default();
    let currency = Currency::parse(&currency_code).map_err(|e| {
        ConnectorError::protocol(format!(
            "Tryton invoice {id}: currency {currency_code:?}: {e}"
        ))
    })?;
    let date = v
        .get("invoice_date")
        .and_then(raw::read_date)
        .or_else(|| {
            v.get("create_date")
                .and_then(raw::read_datetime)
                .map(|t| t.date_naive())
        })
        .unwrap_or(NaiveDate::MIN);
    let due = match state.as_str() {
        "draft" | "validated" => total,
        "cancelled" => Decimal::ZERO,
        _ => dec(v, "amount_to_pay"),
    };
    let paid = if state == "cancelled" {
        Decimal::ZERO
    } else {
        total - due
    };
    let lines = v
        .get("lines")
        .and_then(Value::as_array)
        .map(|ls| {
            ls.iter()
                .map(|l| ErpLine {
                    item_code: l.get("product").and_then(|p| raw::text(p, "code")),
                    account_code: l.get("account").and_then(|a| raw::text(a, "code")),
                    quantity: s * dec(l, "quantity"),
                    line_amount: s * dec(l, "amount"),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ErpDocument {
        kind,
        erp_id: erp_id(INVOICE, id),
        number: raw::text(v, "number"),
        reference: raw::text(v, "reference"),
        contact_erp_id: v.get("party").and_then(raw::id).map(|p| erp_id(PARTY, p)),
        date,
        currency,
        state: self::state(&state, id)?,
        subtotal: s * dec(v, "untaxed_amount"),
        tax: s * dec(v, "tax_amount"),
        total: s * total,
        amount_paid: s * paid,
        amount_due: s * due,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn a_changed_line_is_rewritten_in_place_and_leftovers_are_deleted() {
        let a = line_actions(&[11, 12, 13], vec![json!({"q": 1}), json!({"q": 2})]);
        assert_eq!(
            a,
            json!([["write", [11], {"q": 1}], ["write", [12], {"q": 2}], ["delete", [13]]])
        );
        let b = line_actions(&[11], vec![json!({"q": 1}), json!({"q": 2})]);
        assert_eq!(
            b,
            json!([["write", [11], {"q": 1}], ["create", [{"q": 2}]]])
        );
    }

    #[test]
    fn credit_notes_are_negative_quantities_and_read_back_positive() {
        let line = PostingLine {
            kind: ferry_canon::LineKind::Time,
            description: "x".into(),
            quantity: d("6.5"),
            unit_amount: d("150.00"),
            line_amount: d("975.00"),
            item_code: None,
            account_code: None,
            tax_type: None,
            tracking: vec![],
        };
        let v = invoice_line(&line, &LineIds::default(), sign(DocKind::CreditNote));
        assert_eq!(v["quantity"].to_string(), "-6.5");
        assert_eq!(v["unit_price"]["decimal"], "150.00");

        let read: Value = serde_json::from_str(
            r#"{"id": 4, "state": "posted", "number": "7", "party": 3,
                "currency": {"id": 1, "code": "USD"},
                "invoice_date": {"__class__": "date", "year": 2026, "month": 10, "day": 31},
                "untaxed_amount": {"__class__": "Decimal", "decimal": "-975.00"},
                "tax_amount": {"__class__": "Decimal", "decimal": "0.00"},
                "total_amount": {"__class__": "Decimal", "decimal": "-975.00"},
                "amount_to_pay": {"__class__": "Decimal", "decimal": "-975.00"},
                "lines": [{"id": 9, "quantity": -6.5, "amount": {"__class__": "Decimal", "decimal": "-975.00"},
                           "product": {"id": 1, "code": "CONSULT"}, "account": {"id": 100, "code": "4.1.2"}}]}"#,
        )
        .unwrap();
        let doc = read_document(&read).unwrap();
        assert_eq!(doc.kind, DocKind::CreditNote);
        assert_eq!(
            (doc.total, doc.amount_due, doc.amount_paid),
            (d("975.00"), d("975.00"), d("0.00"))
        );
        assert_eq!(doc.lines[0].quantity, d("6.5"));
        assert_eq!(doc.lines[0].item_code.as_deref(), Some("CONSULT"));
        assert_eq!(doc.state, ErpState::Posted);
    }

    #[test]
    fn a_paid_invoice_reads_as_paid_in_full() {
        let read = json!({"id": 2, "state": "paid", "currency": {"code": "USD"},
            "total_amount": {"__class__": "Decimal", "decimal": "1064.90"},
            "untaxed_amount": {"__class__": "Decimal", "decimal": "1064.90"},
            "amount_to_pay": {"__class__": "Decimal", "decimal": "0"}});
        let doc = read_document(&read).unwrap();
        assert_eq!(doc.state, ErpState::Paid);
        assert_eq!(doc.amount_paid, d("1064.90"));
        assert_eq!(doc.amount_due, Decimal::ZERO);
    }
}
