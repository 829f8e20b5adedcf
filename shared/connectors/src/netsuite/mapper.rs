//! Posting documents → NetSuite record bodies, and SuiteQL rows → the neutral
//! shapes reconciliation reads.
//!
//! NetSuite references list records (items, tax codes, departments, classes,
//! locations) by internal id or by external id: Ferry sends the template's codes
//! as external ids (`{"externalId": "CONS-SR"}`), so an account is set up by
//! giving those records the codes the template uses. Ferry's reference is each
//! document's `externalId`, which makes every write an upsert: a retry, or a
//! write whose answer was lost, updates the document it created.
//! A draft is an invoice pending approval (`approvalStatus` 1), an authorised
//! one is approved (2).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ferry_canon::Currency;
use ferry_canon::Money;
use ferry_core::ConnectorError;
use ferry_core::ports::{ErpDocument, ErpLine, ErpPayment, ErpState, OutboundItem};
use ferry_core::posting::{DocBody, DocKind, DocStatus};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::config::NetSuiteConfig;
use super::queries::text;
use crate::json::number;

/// The record type of a document kind.
pub fn record_type(kind: DocKind) -> Option<&'static str> {
    match kind {
        DocKind::Contact => Some("customer"),
        DocKind::Invoice => Some("invoice"),
        DocKind::CreditNote => Some("creditMemo"),
        DocKind::Project | DocKind::Timesheet => None,
    }
}

/// The transaction type SuiteQL knows a document kind by.
pub fn tran_type(kind: DocKind) -> Option<&'static str> {
    match kind {
        DocKind::Invoice => Some("CustInvc"),
        DocKind::CreditNote => Some("CustCred"),
        _ => None,
    }
}

fn ext(code: &str) -> Value {
    json!({ "externalId": code })
}

fn currency_ref(cfg: &NetSuiteConfig, c: Currency) -> Result<Value, ConnectorError> {
    cfg.currencies
        .get(c.code())
        .map(|id| json!({ "id": id }))
        .ok_or_else(|| ConnectorError::Config {
            message: format!(
                "netsuite currencies has no internal id for {c}; add it to the tenant's [erp.netsuite.currencies]"
            ),
        })
}

/// The record body for one document (with its `externalId`).
pub fn render(cfg: &NetSuiteConfig, item: &OutboundItem) -> Result<Value, ConnectorError> {
    let doc = &item.doc;
    let mut o = Map::new();
    o.insert("externalId".into(), json!(doc.reference));
    o.insert("subsidiary".into(), json!({ "id": cfg.subsidiary }));
    match (&doc.body, doc.kind) {
        (DocBody::Contact(c), DocKind::Contact) => {
            o.insert("companyName".into(), json!(c.name));
            o.insert("isInactive".into(), json!(c.archived));
            if let Some(e) = &c.email {
                o.insert("email".into(), json!(e));
            }
            if let Some(p) = &c.phone {
                o.insert("phone".into(), json!(p));
            }
            if let Some(cur) = c.currency {
                o.insert("currency".into(), currency_ref(cfg, cur)?);
            }
            if let Some(t) = &c.tax_type {
                o.insert("taxItem".into(), ext(t));
            }
        }
        (DocBody::Invoice(inv), DocKind::Invoice | DocKind::CreditNote) => {
            if matches!(inv.status, DocStatus::Deleted | DocStatus::Voided) {
                return Err(ConnectorError::Config {
                    message: format!("{} is a removal, not a record body", doc.key),
                });
            }
            o.insert("entity".into(), json!({ "id": inv.contact_erp_id }));
            o.insert("tranDate".into(), json!(inv.date.to_string()));
            if let Some(d) = inv.due_date {
                o.insert("dueDate".into(), json!(d.to_string()));
            }
            o.insert("currency".into(), currency_ref(cfg, inv.currency)?);
            o.insert("otherRefNum".into(), json!(doc.reference));
            if doc.kind == DocKind::Invoice {
                let approval = match inv.status {
                    DocStatus::Draft => "1",
                    _ => "2",
                };
                o.insert("approvalStatus".into(), json!({ "id": approval }));
            }
            let mut lines = Vec::with_capacity(inv.lines.len());
            for (i, l) in inv.lines.iter().enumerate() {
                let item = l.item_code.as_deref().ok_or_else(|| ConnectorError::Config {
                    message: format!(
                        "{} line {i}: NetSuite invoice lines need an item; the template gives only an account ({})",
                        doc.key,
                        l.account_code.as_deref().unwrap_or("none")
                    ),
                })?;
                let mut line = Map::new();
                line.insert("item".into(), ext(item));
                line.insert("description".into(), json!(l.description));
                line.insert("quantity".into(), number(l.quantity));
                line.insert("rate".into(), number(l.unit_amount));
                line.insert("amount".into(), number(l.line_amount));
                if let Some(t) = &l.tax_type {
                    line.insert("taxCode".into(), ext(t));
                }
                for t in &l.tracking {
                    // The template's ERP category names the line field.
                    line.insert(t.category.clone(), ext(&t.option));
                }
                lines.push(Value::Object(line));
            }
            o.insert("item".into(), json!({ "items": lines }));
        }
        (_, kind) => {
            return Err(ConnectorError::Config {
                message: format!(
                    "NetSuite documents of kind {} are not written by Ferry",
                    kind.as_str()
                ),
            });
        }
    }
    Ok(Value::Object(o))
}

fn dec(row: &Value, col: &str) -> Result<Decimal, ConnectorError> {
    match row.get(col) {
        None | Some(Value::Null) => Ok(Decimal::ZERO),
        Some(v) => text(row, col)
            .and_then(|s| s.parse::<Decimal>().ok())
            .ok_or_else(|| ConnectorError::protocol(format!("NetSuite {col} {v} is not a number"))),
    }
}

/// SuiteQL's dates (`2026-10-31`; NetSuite also answers `10/31/2026`).
pub fn date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%m/%d/%Y"))
        .ok()
}

/// A transaction's state in Ferry's words: pending approval is submitted,
/// rejected is voided; otherwise its status letter (open, paid in full or
/// fully applied, voided).
fn state(kind: DocKind, row: &Value, id: &str) -> Result<ErpState, ConnectorError> {
    match text(row, "approvalstatus").as_deref() {
        Some("1") => return Ok(ErpState::Submitted),
        Some("3") => return Ok(ErpState::Voided),
        _ => {}
    }
    Ok(match (kind, text(row, "status").as_deref()) {
        (_, Some("A")) => ErpState::Posted,
        (_, Some("B")) => ErpState::Paid,
        (_, Some("V")) => ErpState::Voided,
        (_, other) => {
            return Err(ConnectorError::protocol(format!(
                "NetSuite transaction {id} has status {other:?}, which Ferry does not know"
            )));
        }
    })
}

/// A SuiteQL transaction row and its line rows → the neutral document.
/// NetSuite keeps an invoice's income lines as credits (below zero) and a
/// credit memo's as debits; Ferry reads both as the document shows them.
pub fn read_document(
    kind: DocKind,
    cfg: &NetSuiteConfig,
    row: &Value,
    lines: &[&Value],
) -> Result<ErpDocument, ConnectorError> {
    let id = text(row, "id").ok_or_else(|| ConnectorError::protocol("NetSuite row without id"))?;
    let currency = currency_of(cfg, row, &id)?;
    let date = text(row, "trandate")
        .as_deref()
        .and_then(date)
        .ok_or_else(|| ConnectorError::protocol(format!("NetSuite {id} without a trandate")))?;
    let sign = match kind {
        DocKind::CreditNote => Decimal::ONE,
        _ => -Decimal::ONE,
    };
    let total = dec(row, "foreigntotal")?;
    let tax = dec(row, "taxtotal")?;
    let paid = dec(row, "foreignamountpaid")?;
    Ok(ErpDocument {
        kind,
        number: text(row, "tranid"),
        reference: text(row, "externalid"),
        contact_erp_id: text(row, "entity"),
        date,
        currency,
        state: state(kind, row, &id)?,
        subtotal: total - tax,
        tax,
        total,
        amount_paid: paid,
        amount_due: dec(row, "foreignamountunpaid")?,
        lines: lines
            .iter()
            .map(|l| {
                Ok(ErpLine {
                    item_code: text(l, "item"),
                    account_code: None,
                    quantity: sign * dec(l, "quantity")?,
                    line_amount: sign * dec(l, "foreignamount")?,
                })
            })
            .collect::<Result<_, ConnectorError>>()?,
        erp_id: id,
    })
}

/// The ISO code of a row's currency (internal id) by the settings' map.
fn currency_of(cfg: &NetSuiteConfig, row: &Value, id: &str) -> Result<Currency, ConnectorError> {
    let internal = text(row, "currency")
        .ok_or_else(|| ConnectorError::protocol(format!("NetSuite {id} without a currency")))?;
    let code = cfg
        .currencies
        .iter()
        .find(|(_, v)| **v == internal)
        .map(|(k, _)| k.as_str())
        .ok_or_else(|| {
            ConnectorError::protocol(format!(
                "NetSuite {id} is in currency {internal}, which [erp.netsuite.currencies] does not name"
            ))
        })?;
    Currency::parse(code).map_err(|e| ConnectorError::protocol(e.to_string()))
}

/// A payment application row → the neutral payment.
pub fn read_payment(cfg: &NetSuiteConfig, row: &Value) -> Result<ErpPayment, ConnectorError> {
    let id = text(row, "payment")
        .ok_or_else(|| ConnectorError::protocol("NetSuite payment row without payment"))?;
    let currency = currency_of(cfg, row, &id)?;
    Ok(ErpPayment {
        invoice_erp_id: text(row, "invoice").ok_or_else(|| {
            ConnectorError::protocol(format!("NetSuite payment {id} applied to no invoice"))
        })?,
        date: text(row, "trandate")
            .as_deref()
            .and_then(date)
            .ok_or_else(|| {
                ConnectorError::protocol(format!("NetSuite payment {id} without a date"))
            })?,
        amount: Money::new(dec(row, "amount")?, currency),
        reference: text(row, "tranid"),
        state: match text(row, "voided").as_deref() {
            Some("T") => ErpState::Voided,
            _ => ErpState::Posted,
        },
        erp_id: id,
    })
}

/// Groups line rows by their `transaction` column.
pub fn lines_by_transaction(rows: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut out: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in rows {
        if let Some(t) = text(r, "transaction") {
            out.entry(t).or_default().push(r);
        }
    }
    out
}

/// A SQL string literal (quotes doubled).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SuiteQL date literal.
pub fn date_literal(d: NaiveDate) -> String {
    format!("TO_DATE('{d}', 'YYYY-MM-DD')")
}
