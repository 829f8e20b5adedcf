//! The audit trail of one customer: Ferry's postings (what was sent to the
//! ERP, from which records, by which template version) and what people did
//! in the console; searchable, and exported per period as CSV or JSON for the
//! customer's auditors.

use std::sync::Arc;

use axum::extract::{Extension, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use ferry_core::ports::AuditEntry;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Console;
use crate::pages::{Answer, Frame, Refusal, customer_of};
use crate::routes::Signed;
use crate::store::{Action, ActionQuery};

/// The most postings one page or export reads.
const MAX_POSTINGS: usize = 100_000;

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Search {
    /// A source record key: postings that came from it.
    #[serde(default)]
    pub record: Option<String>,
    /// A document key: its postings.
    #[serde(default)]
    pub doc: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// First day (YYYY-MM-DD), inclusive.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD), inclusive.
    #[serde(default)]
    pub to: Option<String>,
    /// `csv` or `json` for the export.
    #[serde(default)]
    pub format: Option<String>,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A half-open period of instants; an end left open is `None`.
type Period = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The search's period as instants: [from 00:00, the day after `to` 00:00).
fn period(s: &Search) -> Result<Period, String> {
    let day = |v: &str| {
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| format!("{v} is not a YYYY-MM-DD date"))
    };
    let from = nonempty(&s.from).map(day).transpose()?;
    let to = nonempty(&s.to).map(day).transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(format!("{f} is after {t}"));
    }
    Ok((
        from.and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc()),
        to.and_then(|d| d.succ_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc()),
    ))
}

/// Postings and actions matching the search.
async fn find(
    console: &Console,
    signed: &Signed,
    s: &Search,
) -> Result<(Vec<AuditEntry>, Vec<Action>), Refusal> {
    let c = customer_of(signed)?;
    let (since, until) = period(s).map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e))?;
    let within = |at: DateTime<Utc>| since.is_none_or(|f| at >= f) && until.is_none_or(|u| at < u);
    let doc = nonempty(&s.doc);
    let mut postings = console.fleet.postings(&c.tenant, doc, MAX_POSTINGS).await?;
    let record = nonempty(&s.record);
    let user = nonempty(&s.user);
    postings.retain(|p| {
        within(p.at)
            && record.is_none_or(|r| p.source_keys.iter().any(|k| k == r))
            && user.is_none()
    });
    let actions = console
        .store
        .actions(&ActionQuery {
            partner: Some(c.partner.clone()),
            tenants: Some(vec![c.tenant.clone()]),
            user: user.map(str::to_string),
            target: None,
            since,
            until,
            limit: 10_000,
        })
        .await?
        .into_iter()
        .filter(|_| doc.is_none() && record.is_none())
        .collect();
    Ok((postings, actions))
}

pub async fn list(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(s): Query<Search>,
) -> Answer {
    let (postings, actions) = find(&console, &signed, &s).await?;
    let frame = Frame::of(&console, &signed).await;
    let shown: Vec<_> = postings.iter().rev().take(500).map(posting_json).collect();
    Ok(console.views.page(
        "audit.html",
        json!({
            "frame": frame,
            "customer": signed.customer,
            "search": s,
            "postings": shown,
            "postings_total": postings.len(),
            "actions": actions.iter().take(500).collect::<Vec<_>>(),
        }),
    ))
}

fn posting_json(p: &AuditEntry) -> serde_json::Value {
    json!({
        "at": p.at.to_rfc3339(),
        "doc_key": p.doc_key,
        "erp_system": p.erp_system,
        "erp_id": p.erp_id,
        "action": p.action,
        "version": p.version,
        "source_keys": p.source_keys,
        "source_hash": p.source_hash,
        "template_version": p.template_version,
        "idempotency_key": p.idempotency_key,
        "correlation_id": p.correlation_id,
    })
}

/// A period's postings and actions as a file for auditors.
pub async fn export(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(s): Query<Search>,
) -> Answer {
    let format = nonempty(&s.format).unwrap_or("csv");
    if !matches!(format, "csv" | "json") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("no export format {format}; csv or json"),
        ));
    }
    let (postings, actions) = find(&console, &signed, &s).await?;
    let tenant = signed
        .customer
        .as_ref()
        .map(|c| c.tenant.to_string())
        .unwrap_or_default();
    let stem = format!(
        "{tenant}-audit-{}-{}",
        nonempty(&s.from).unwrap_or("start"),
        nonempty(&s.to).unwrap_or("now")
    );
    console
        .record(
            &signed.principal,
            signed.customer.as_ref().map(|c| &c.tenant),
            "export",
            &stem,
            &format!("{} postings, {} actions", postings.len(), actions.len()),
        )
        .await?;
    Ok(if format == "json" {
        let body = json!({
            "tenant": tenant,
            "from": s.from,
            "to": s.to,
            "postings": postings.iter().map(posting_json).collect::<Vec<_>>(),
            "actions": actions,
        });
        attachment(
            "application/json",
            &format!("{stem}.json"),
            body.to_string(),
        )
    } else {
        attachment(
            "text/csv; charset=utf-8",
            &format!("{stem}.csv"),
            csv(&postings, &actions),
        )
    })
}

fn attachment(kind: &'static str, name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// One CSV field: quoted, quotes doubled, and a leading `=`, `+`, `-`, `@`
/// (a spreadsheet formula) neutralised with a `'`.
fn cell(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    format!("\"{}\"", v.replace('"', "\"\""))
}

/// The period as CSV: one row per posting (with its source hash and
/// template version) and one per action a person took, told apart by `kind`.
pub fn csv(postings: &[AuditEntry], actions: &[Action]) -> String {
    let mut out = String::from(
        "kind,at,doc_key_or_target,action,user,detail,erp_system,erp_id,version,source_keys,source_hash,template_version,idempotency_key,correlation_id\r\n",
    );
    let mut line = |row: &[String]| {
        out.push_str(&row.iter().map(|v| cell(v)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    };
    for p in postings {
        line(&[
            "posting".into(),
            p.at.to_rfc3339(),
            p.doc_key.clone(),
            p.action.clone(),
            String::new(),
            String::new(),
            p.erp_system.clone(),
            p.erp_id.clone().unwrap_or_default(),
            p.version.to_string(),
            p.source_keys.join(" "),
            p.source_hash.clone(),
            p.template_version.clone(),
            p.idempotency_key.clone(),
            p.correlation_id.clone(),
        ]);
    }
    for a in actions {
        line(&[
            "action".into(),
            a.at.to_rfc3339(),
            a.target.clone(),
            a.action.clone(),
            a.user.clone(),
            a.detail.clone(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(cell("plain"), "\"plain\"");
        assert_eq!(cell("a \"b\", c"), "\"a \"\"b\"\", c\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-12.50"), "\"'-12.50\"");
    }

    #[test]
    fn the_csv_holds_postings_and_actions_with_formulas_neutralised() {
        let at = chrono::DateTime::UNIX_EPOCH;
        let action = Action {
            at,
            user: "fiona".into(),
            partner: "p".into(),
            tenant: None,
            action: "comment".into(),
            target: "ex-1".into(),
            detail: "=cmd|' /C calc'!A0".into(),
        };
        let out = csv(&[], &[action]);
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert!(lines[0].starts_with("kind,at,"));
        assert!(lines[1].starts_with("\"action\","), "{}", lines[1]);
        assert!(lines[1].contains("\"'=cmd|' /C calc'!A0\""), "{}", lines[1]);
        assert_eq!(lines[0].split(',').count(), 14);
    }

    #[test]
    fn periods_are_whole_days_and_in_order() {
        let s = Search {
            from: Some("2026-03-01".into()),
            to: Some("2026-03-31".into()),
            ..Search::default()
        };
        let (f, t) = period(&s).expect("period");
        assert_eq!(f.expect("from").to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(t.expect("to").to_rfc3339(), "2026-04-01T00:00:00+00:00");
        let bad = Search {
            from: Some("2026-04-01".into()),
            to: Some("2026-03-31".into()),
            ..Search::default()
        };
        assert!(period(&bad).is_err());
        let junk = Search {
            from: Some("March".into()),
            ..Search::default()
        };
        assert!(period(&junk).expect_err("junk").contains("YYYY-MM-DD"));
    }
}
