//! Every SuiteQL query Ferry sends, in one place (the simulator answers
//! exactly these shapes). Values are literals Ferry builds: ids it checked are
//! numbers, external ids and dates quoted.
//! Reference: NetSuite help, "SuiteQL" (`../shared/docs/VENDORS.md` [N3]).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use ferry_core::posting::DocKind;
use serde_json::Value;

use super::mapper::{date_literal, literal, tran_type};

/// A row value as text (SuiteQL answers numbers as strings or numbers).
pub fn text(row: &Value, col: &str) -> Option<String> {
    match row.get(col)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// SuiteQL's timestamps as Ferry asks for them (`TO_CHAR(…, 'YYYY-MM-DD HH24:MI:SS')`, UTC).
pub fn instant(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Which transactions a read is about.
pub enum Which {
    Dated {
        ty: &'static str,
        from: NaiveDate,
        to: NaiveDate,
    },
    One {
        ty: &'static str,
        id: String,
    },
}

impl Which {
    pub fn dated(kind: DocKind, from: NaiveDate, to: NaiveDate) -> Option<Which> {
        Some(Which::Dated {
            ty: tran_type(kind)?,
            from,
            to,
        })
    }

    /// `id` must be a number (the caller checked).
    pub fn one(kind: DocKind, id: &str) -> Option<Which> {
        Some(Which::One {
            ty: tran_type(kind)?,
            id: id.to_string(),
        })
    }

    fn filter(&self, alias: &str) -> String {
        match self {
            Which::Dated { ty, from, to } => format!(
                "{alias}type = {} AND {alias}trandate >= {} AND {alias}trandate <= {}",
                literal(ty),
                date_literal(*from),
                date_literal(*to)
            ),
            Which::One { ty, id } => format!("{alias}type = {} AND {alias}id = {id}", literal(ty)),
        }
    }
}

/// Transactions' header fields.
pub fn heads(w: &Which) -> String {
    format!(
        "SELECT id, tranid, externalid, entity, trandate, currency, status, approvalstatus, \
         foreigntotal, taxtotal, foreignamountpaid, foreignamountunpaid \
         FROM transaction WHERE {} ORDER BY id",
        w.filter("")
    )
}

/// Their item lines (not the main line, not tax lines), with the item's external id.
pub fn lines(w: &Which) -> String {
    format!(
        "SELECT tl.transaction, i.externalid AS item, tl.quantity, tl.foreignamount \
         FROM transactionline tl JOIN item i ON i.id = tl.item \
         WHERE tl.mainline = 'F' AND tl.taxline = 'F' AND tl.transaction IN \
         (SELECT t.id FROM transaction t WHERE {}) ORDER BY tl.transaction, tl.id",
        w.filter("t.")
    )
}

/// The ids (and numbers) of records with these external ids.
pub fn by_external_id(kind: DocKind, refs: &[&str]) -> String {
    let list = refs
        .iter()
        .map(|r| literal(r))
        .collect::<Vec<_>>()
        .join(", ");
    match tran_type(kind) {
        Some(ty) => format!(
            "SELECT id, externalid, tranid AS number FROM transaction \
             WHERE type = {} AND externalid IN ({list})",
            literal(ty)
        ),
        None => format!(
            "SELECT id, externalid, entityid AS number FROM customer WHERE externalid IN ({list})"
        ),
    }
}

/// Invoices changed since an instant (all of them without one), oldest first.
pub fn changed_invoices(since: Option<DateTime<Utc>>) -> String {
    let mut q =
        "SELECT id, TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodifieddate \
                 FROM transaction WHERE type = 'CustInvc'"
            .to_string();
    if let Some(s) = since {
        q.push_str(&format!(
            " AND lastmodifieddate >= TO_TIMESTAMP('{}', 'YYYY-MM-DD HH24:MI:SS')",
            s.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    q.push_str(" ORDER BY lastmodifieddate, id");
    q
}

/// Customer payments applied to invoices, dated from `from` (up to `to`).
pub fn payments(from: NaiveDate, to: Option<NaiveDate>) -> String {
    let mut q = format!(
        "SELECT p.id AS payment, p.tranid, p.trandate, p.currency, p.voided, \
         l.previousdoc AS invoice, l.foreignamount AS amount \
         FROM NextTransactionLineLink l JOIN transaction p ON p.id = l.nextdoc \
         WHERE l.linktype = 'Payment' AND p.type = 'CustPymt' AND p.trandate >= {}",
        date_literal(from)
    );
    if let Some(to) = to {
        q.push_str(&format!(" AND p.trandate <= {}", date_literal(to)));
    }
    q.push_str(" ORDER BY p.id, l.previousdoc");
    q
}

/// The end of the latest closed posting period.
pub const CLOSED_THROUGH: &str = "SELECT TO_CHAR(MAX(enddate), 'YYYY-MM-DD') AS closed_through \
     FROM accountingperiod WHERE closed = 'T' AND isyear = 'F' AND isquarter = 'F'";

/// Sales tax codes by external id, with their rates.
pub const TAX_CODES: &str = "SELECT externalid, rate FROM salestaxitem WHERE isinactive = 'F'";
