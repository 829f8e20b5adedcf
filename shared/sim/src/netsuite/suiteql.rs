//! The simulator's SuiteQL: the query shapes Ferry sends
//! (`ferry_connectors::netsuite::queries`), answered from the account's
//! records, 1,000 rows a page at most (`limit`, `offset`, `hasMore`). Any
//! other query is refused as NetSuite refuses a query it cannot parse, so a
//! connector change that sends new SQL fails its tests here first. Dates come
//! back as `MM/DD/YYYY` (the account's format), amounts as numbers, ids as text.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Data, NetSuiteSimConfig, dec, problem};
use crate::num;

/// Most rows one page holds.
const PAGE: usize = 1000;

fn refuse(detail: &str) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        problem(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER",
            &format!("Invalid search query. Detailed unprocessed description follows. {detail}"),
        ),
    )
}

/// The quoted value after `key` (`type = 'CustInvc'` → `CustInvc`).
fn quoted(q: &str, key: &str) -> Option<String> {
    let rest = &q[q.find(key)? + key.len()..];
    let rest = rest.strip_prefix('\'')?;
    Some(rest[..rest.find('\'')?].to_string())
}

fn date(q: &str, key: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(&quoted(q, key)?, "%Y-%m-%d").ok()
}

/// The number after `key` (`id = 1001`).
fn number(q: &str, key: &str) -> Option<u64> {
    let rest = &q[q.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The quoted values of `externalid IN ('a', 'b')` (quotes doubled inside).
fn in_list(q: &str) -> Option<Vec<String>> {
    let start = q.find("externalid IN (")? + "externalid IN (".len();
    let mut out = Vec::new();
    let mut chars = q[start..].chars().peekable();
    loop {
        match chars.next()? {
            ' ' | ',' => {}
            ')' => return Some(out),
            '\'' => {
                let mut v = String::new();
                loop {
                    match chars.next()? {
                        '\'' if chars.peek() == Some(&'\'') => {
                            chars.next();
                            v.push('\'');
                        }
                        '\'' => break,
                        c => v.push(c),
                    }
                }
                out.push(v);
            }
            _ => return None,
        }
    }
}

fn us_date(s: &Value) -> Value {
    s.as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .map_or(Value::Null, |d| json!(d.format("%m/%d/%Y").to_string()))
}

/// The transaction types Ferry asks for, by SuiteQL name.
fn record_type(tran: &str) -> Option<&'static str> {
    match tran {
        "CustInvc" => Some("invoice"),
        "CustCred" => Some("creditMemo"),
        _ => None,
    }
}

/// Which transactions a query's filter keeps (`alias` is `""` or `t.`).
fn selected<'a>(d: &'a Data, q: &str, alias: &str) -> Result<Vec<&'a Value>, String> {
    let tran = quoted(q, &format!("{alias}type = ")).ok_or("no type filter")?;
    let ty = record_type(&tran).ok_or_else(|| format!("unknown type {tran}"))?;
    let one = number(q, &format!("{alias}id = "));
    let from = date(q, &format!("{alias}trandate >= TO_DATE("));
    let to = date(q, &format!("{alias}trandate <= TO_DATE("));
    if one.is_none() && (from.is_none() || to.is_none()) {
        return Err("a transaction read needs an id or a trandate range".into());
    }
    Ok(d.transactions
        .iter()
        .filter(|(id, t)| {
            let day = t["tranDate"]
                .as_str()
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
            t["recordType"] == ty
                && one.is_none_or(|n| **id == n)
                && from.is_none_or(|f| day.is_some_and(|x| x >= f))
                && to.is_none_or(|f| day.is_some_and(|x| x <= f))
        })
        .map(|(_, t)| t)
        .collect())
}

fn head_row(t: &Value) -> Value {
    json!({
        "id": t["id"], "tranid": t["tranId"], "externalid": t["externalId"],
        "entity": t["entity"]["id"], "trandate": us_date(&t["tranDate"]),
        "currency": t["currency"]["id"], "status": t["status"],
        "approvalstatus": t.get("approvalStatus").map_or(Value::Null, |a| a["id"].clone()),
        "foreigntotal": t["total"], "taxtotal": t["taxTotal"],
        "foreignamountpaid": t["amountPaid"], "foreignamountunpaid": t["amountRemaining"],
    })
}

/// An invoice's income lines are credits in the ledger (below zero), a credit memo's debits.
fn line_rows(t: &Value) -> Vec<Value> {
    let sign = if t["recordType"] == "invoice" {
        -Decimal::ONE
    } else {
        Decimal::ONE
    };
    t["item"]["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            json!({ "transaction": t["id"], "item": l["item"],
                    "quantity": num(sign * dec(&l["quantity"])),
                    "foreignamount": num(sign * dec(&l["amount"])) })
        })
        .collect()
}

/// Rows for a query, or why it cannot be read.
fn rows(cfg: &NetSuiteSimConfig, d: &Data, q: &str) -> Result<Vec<Value>, String> {
    if q.contains("FROM transactionline tl") {
        return Ok(selected(d, q, "t.")?
            .into_iter()
            .flat_map(line_rows)
            .collect());
    }
    if q.contains("foreignamountunpaid FROM transaction WHERE") {
        return Ok(selected(d, q, "")?.into_iter().map(head_row).collect());
    }
    if q.contains("AS number FROM customer WHERE") {
        let refs = in_list(q).ok_or("unreadable IN list")?;
        return Ok(d
            .customers
            .values()
            .filter(|c| c["externalId"].as_str().is_some_and(|e| refs.iter().any(|r| r == e)))
            .map(|c| json!({ "id": c["id"], "externalid": c["externalId"], "number": c["entityId"] }))
            .collect());
    }
    if q.contains("AS number FROM transaction WHERE") {
        let refs = in_list(q).ok_or("unreadable IN list")?;
        let tran = quoted(q, "type = ").ok_or("no type filter")?;
        let ty = record_type(&tran).ok_or("unknown type")?;
        return Ok(d
            .transactions
            .values()
            .filter(|t| t["recordType"] == ty)
            .filter(|t| {
                t["externalId"]
                    .as_str()
                    .is_some_and(|e| refs.iter().any(|r| r == e))
            })
            .map(|t| json!({ "id": t["id"], "externalid": t["externalId"], "number": t["tranId"] }))
            .collect());
    }
    if q.contains("TO_CHAR(lastmodifieddate") {
        let since = quoted(q, "lastmodifieddate >= TO_TIMESTAMP(");
        let mut out: Vec<(String, u64)> = d
            .transactions
            .iter()
            .filter(|(_, t)| t["recordType"] == "invoice")
            .filter_map(|(id, t)| Some((t["lastModifiedDate"].as_str()?.to_string(), *id)))
            .filter(|(at, _)| since.as_deref().is_none_or(|s| at.as_str() >= s))
            .collect();
        out.sort();
        return Ok(out
            .into_iter()
            .map(|(at, id)| json!({ "id": id.to_string(), "lastmodifieddate": at }))
            .collect());
    }
    if q.contains("FROM NextTransactionLineLink l") {
        let from = date(q, "p.trandate >= TO_DATE(").ok_or("no payment date range")?;
        let to = date(q, "p.trandate <= TO_DATE(");
        let mut out = Vec::new();
        for (payment, invoice, amount) in &d.links {
            let Some(p) = d.transactions.get(payment) else {
                continue;
            };
            let day = p["tranDate"]
                .as_str()
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
            if day.is_some_and(|x| x >= from && to.is_none_or(|t| x <= t)) {
                out.push(json!({ "payment": p["id"], "tranid": p["tranId"],
                                 "trandate": us_date(&p["tranDate"]), "currency": p["currency"]["id"],
                                 "voided": p["voided"], "invoice": invoice.to_string(),
                                 "amount": num(*amount) }));
            }
        }
        return Ok(out);
    }
    if q.contains("FROM accountingperiod") {
        return Ok(vec![json!({
            "closed_through": cfg.closed_through.map(|c| c.to_string())
        })]);
    }
    if q.contains("FROM salestaxitem") {
        return Ok(cfg
            .tax_codes
            .iter()
            .map(|(code, rate)| json!({ "externalid": code, "rate": format!("{rate}%") }))
            .collect());
    }
    Err(format!("Search error occurred: unsupported query: {q}"))
}

/// `POST /query/v1/suiteql?limit=&offset=` with `{"q": …}`.
pub(super) fn answer(
    cfg: &NetSuiteSimConfig,
    d: &Data,
    text: &str,
    params: &BTreeMap<String, String>,
) -> (StatusCode, Value) {
    let q = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let limit = match params.get("limit").map(|s| s.parse::<usize>()) {
        None => PAGE,
        Some(Ok(n)) if (1..=PAGE).contains(&n) => n,
        Some(_) => return refuse("limit must be 1 to 1000"),
    };
    let offset = match params.get("offset").map(|s| s.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(_) => return refuse("offset must be a number"),
    };
    let all = match rows(cfg, d, &q) {
        Ok(r) => r,
        Err(e) => return refuse(&e),
    };
    let total = all.len();
    let page: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    (
        StatusCode::OK,
        json!({
            "links": [],
            "count": page.len(),
            "hasMore": offset + page.len() < total,
            "offset": offset,
            "totalResults": total,
            "items": page,
        }),
    )
}
