//! Exceptions: the filtered list across the customers a user sees, one
//! exception's detail, and its status for a page waiting on a replay.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use ferry_canon::{Domain, TenantId};
use ferry_core::ports::{ExceptionQuery, ExceptionRecord, ExceptionStatus, Owner};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Console;
use crate::pages::{Frame, acts, age, since, unavailable};
use crate::routes::Signed;

/// One exception in a list.
#[derive(Serialize)]
pub struct ExceptionRow {
    pub tenant: String,
    pub id: String,
    pub domain: &'static str,
    pub source_key: String,
    pub reason: String,
    pub owner: &'static str,
    pub status: &'static str,
    pub message: String,
    pub age: String,
    pub amount: Option<String>,
    pub hours: Option<String>,
    pub assignee: Option<String>,
    pub may_act: bool,
}

/// The rows of a tenant's exceptions, with assignees and what the user may do.
pub async fn rows(
    console: &Console,
    signed: &Signed,
    list: &[ExceptionRecord],
) -> Vec<ExceptionRow> {
    let now = console.clock.now();
    let mut assignees: HashMap<(String, String), String> = HashMap::new();
    let mut tenants: Vec<&TenantId> = list.iter().map(|e| &e.tenant).collect();
    tenants.sort();
    tenants.dedup();
    for t in tenants {
        if let Ok(pairs) = console.store.assignees(t).await {
            for (id, user) in pairs {
                assignees.insert((t.to_string(), id), user);
            }
        }
    }
    list.iter()
        .map(|e| ExceptionRow {
            tenant: e.tenant.to_string(),
            id: e.id.clone(),
            domain: e.domain.as_str(),
            source_key: e.source_key.clone(),
            reason: e.reason.to_string(),
            owner: e.owner.as_str(),
            status: e.status.as_str(),
            message: e.message.clone(),
            age: age(since(now, e.first_seen)),
            amount: e
                .amount
                .as_ref()
                .map(|m| format!("{} {}", m.currency.code(), m.amount)),
            hours: e.hours.map(|h| h.normalize().to_string()),
            assignee: assignees
                .get(&(e.tenant.to_string(), e.id.clone()))
                .cloned(),
            may_act: acts(&signed.principal, e.owner),
        })
        .collect()
}

/// The list's filters, all optional.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Filters {
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Only exceptions at least this many days old.
    #[serde(default)]
    pub min_age_days: Option<String>,
    /// `open`, `retrying`, `replayed`, `resolved`; default open and retrying.
    #[serde(default)]
    pub status: Option<String>,
    /// After a bulk replay: how many went back into the pipeline.
    #[serde(default)]
    pub replayed: Option<String>,
    /// After a bulk replay: how many were refused.
    #[serde(default)]
    pub refused: Option<String>,
}

/// The oldest age filter: a hundred years.
const MAX_AGE_DAYS: u32 = 36_500;

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub async fn list(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Query(f): Query<Filters>,
) -> Response {
    let customers = match console.visible(&signed.principal).await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let mut problems = Vec::new();
    let domain = nonempty(&f.domain).and_then(|d| {
        Domain::parse(d).or_else(|| {
            problems.push(format!("no domain {d}"));
            None
        })
    });
    let owner = nonempty(&f.owner).and_then(|o| {
        Owner::parse(o).or_else(|| {
            problems.push(format!("no owner {o}"));
            None
        })
    });
    let statuses = match nonempty(&f.status) {
        None => vec![ExceptionStatus::Open, ExceptionStatus::Retrying],
        Some(s) => match ExceptionStatus::parse(s) {
            Some(st) => vec![st],
            None => {
                problems.push(format!("no status {s}"));
                vec![ExceptionStatus::Open, ExceptionStatus::Retrying]
            }
        },
    };
    let now = console.clock.now();
    // Checked: an age past the calendar's range is a mistake to name, not a panic.
    let first_seen_before = match nonempty(&f.min_age_days) {
        None => None,
        Some(d) => {
            let before = d
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_AGE_DAYS)
                .and_then(|n| now.checked_sub_signed(Duration::try_days(i64::from(n))?));
            if before.is_none() {
                problems.push(format!(
                    "{d} is not a number of days from 0 to {MAX_AGE_DAYS}"
                ));
            }
            before
        }
    };
    let wanted = nonempty(&f.tenant);
    if let Some(w) = wanted
        && !customers.iter().any(|c| c.tenant.as_str() == w)
    {
        problems.push(format!("no customer {w}"));
    }
    let mut all = Vec::new();
    // A filter that names nothing real lists nothing (and says why), rather
    // than quietly listing everything.
    let listed = if problems.is_empty() {
        customers.as_slice()
    } else {
        &[]
    };
    for c in listed
        .iter()
        .filter(|c| wanted.is_none_or(|w| w == c.tenant.as_str()))
    {
        let q = ExceptionQuery {
            tenant: Some(c.tenant.clone()),
            statuses: statuses.clone(),
            owner,
            domain,
            first_seen_before,
            limit: Some(1_000),
        };
        match console.fleet.exceptions(&q).await {
            Ok(list) => all.extend(list),
            Err(e) => return unavailable(e),
        }
    }
    if let Some(r) = nonempty(&f.reason) {
        all.retain(|e| e.reason.to_string().contains(r));
    }
    all.sort_by(|a, b| a.first_seen.cmp(&b.first_seen).then(a.id.cmp(&b.id)));
    let rows = rows(&console, &signed, &all).await;
    let frame = Frame::of(&console, &signed).await;
    let tenants: Vec<(String, String)> = customers
        .iter()
        .map(|c| (c.tenant.to_string(), c.name.clone()))
        .collect();
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    console.views.page_with(
        status,
        "exceptions.html",
        json!({
            "frame": frame,
            "exceptions": rows,
            // Several at once for one customer: the one filtered to, or a customer user's own.
            "bulk_tenant": wanted
                .filter(|w| tenants.iter().any(|(t, _)| t == w))
                .map(str::to_string)
                .or_else(|| (tenants.len() == 1).then(|| tenants[0].0.clone())),
            "outcome": f.replayed.as_ref().map(|n| json!({
                "replayed": n,
                "refused": f.refused.clone().unwrap_or_default(),
            })),
            "filters": f,
            "problems": problems,
            "tenants": tenants,
            "domains": Domain::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
            "owners": ["project_operations", "finance", "support"],
        }),
    )
}

/// The exception's page: what failed, why, the record, its document's
/// postings, notes, and the actions the user may take.
pub async fn one(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    let Some(c) = signed.customer.clone() else {
        return unavailable("an exception page without its customer");
    };
    let e = match console.fleet.exception(&c.tenant, &id).await {
        Ok(Some(e)) => e,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such exception").into_response(),
        Err(e) => return unavailable(e),
    };
    let source = match console.fleet.source(&c.tenant, &e.source_key).await {
        Ok(s) => s,
        Err(e) => return unavailable(e),
    };
    let record = source
        .as_ref()
        .and_then(|s| s.canonical.as_deref())
        .map(|c| {
            serde_json::from_str::<serde_json::Value>(c)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| c.to_string())
        });
    let postings = match &e.doc_key {
        Some(doc) => match console.fleet.postings(&c.tenant, Some(doc), 50).await {
            Ok(p) => p,
            Err(e) => return unavailable(e),
        },
        None => Vec::new(),
    };
    let notes = match console.store.notes(&c.tenant, &e.id).await {
        Ok(n) => n,
        Err(e) => return unavailable(e),
    };
    let row = rows(&console, &signed, std::slice::from_ref(&e)).await;
    let frame = Frame::of(&console, &signed).await;
    console.views.page(
        "exception.html",
        json!({
            "frame": frame,
            "customer": c,
            "tenant": tenant,
            "e": e,
            "row": row.first(),
            "record": record,
            "ledger_state": source.as_ref().map(|s| s.disposition.state()),
            "postings": postings.iter().map(|p| json!({
                "at": p.at.to_rfc3339(),
                "action": p.action,
                "erp_id": p.erp_id,
                "version": p.version,
                "template_version": p.template_version,
                "source_hash": p.source_hash,
            })).collect::<Vec<_>>(),
            "notes": notes,
            "may_act": acts(&signed.principal, e.owner),
        }),
    )
}

/// The status a page polls after a replay.
pub async fn status(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path((_tenant, id)): Path<(String, String)>,
) -> Response {
    let Some(c) = signed.customer.clone() else {
        return unavailable("a status without its customer");
    };
    match console.fleet.exception(&c.tenant, &id).await {
        Ok(Some(e)) => {
            let ledger = match console.fleet.source(&c.tenant, &e.source_key).await {
                Ok(s) => s.map(|s| s.disposition.state()),
                Err(err) => return unavailable(err),
            };
            Json(json!({
                "id": e.id,
                "status": e.status.as_str(),
                "attempts": e.attempts,
                "last_seen": e.last_seen.to_rfc3339(),
                "message": e.message,
                "record": ledger,
            }))
            .into_response()
        }
        Ok(None) => (StatusCode::NOT_FOUND, "no such exception").into_response(),
        Err(e) => unavailable(e),
    }
}
