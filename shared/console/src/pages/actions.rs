//! What people do to exceptions: replay (one or many), assign, comment,
//! resolve. Each checks that the user's role acts for the exception's owner,
//! and each is recorded with the user. A script asking for JSON gets the
//! outcome as JSON; a plain form post is sent back to the exception's page.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, RawForm, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ferry_core::ports::{ExceptionRecord, ExceptionStatus};
use ferry_core::usecases::retry::ReplayError;
use serde_json::json;

use crate::Console;
use crate::pages::{Answer, Refusal, acts, customer_of};
use crate::routes::Signed;
use crate::store::Comment;

/// Longest comment kept.
const MAX_COMMENT: usize = 4_000;

fn wants_json(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

fn done(h: &HeaderMap, tenant: &str, id: &str, outcome: serde_json::Value) -> Response {
    if wants_json(h) {
        Json(outcome).into_response()
    } else {
        Redirect::to(&format!("/t/{tenant}/exceptions/{id}")).into_response()
    }
}

fn field(form: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(form)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn fields(form: &[u8], name: &str) -> Vec<String> {
    url::form_urlencoded::parse(form)
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// The exception, if it exists and the user's role acts for its owner.
async fn actionable(
    console: &Console,
    signed: &Signed,
    id: &str,
) -> Result<ExceptionRecord, Refusal> {
    let c = customer_of(signed)?;
    match console.fleet.exception(&c.tenant, id).await? {
        Some(e) if acts(&signed.principal, e.owner) => Ok(e),
        Some(e) => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("{} exceptions are not yours to act on", e.owner),
        )),
        None => Err(Refusal::new(StatusCode::NOT_FOUND, "no such exception")),
    }
}

fn replay_refused(e: ReplayError) -> Refusal {
    match e {
        ReplayError::Port(p) => p.into(),
        ReplayError::NotFound(_) => Refusal::new(StatusCode::NOT_FOUND, e.to_string()),
        other => Refusal::new(StatusCode::CONFLICT, other.to_string()),
    }
}

/// Records what the user did to an exception, then answers.
async fn recorded(
    console: &Console,
    signed: &Signed,
    e: &ExceptionRecord,
    (action, detail): (&str, &str),
    (headers, tenant): (&HeaderMap, &str),
    outcome: serde_json::Value,
) -> Answer {
    console
        .record(&signed.principal, Some(&e.tenant), action, &e.id, detail)
        .await?;
    Ok(done(headers, tenant, &e.id, outcome))
}

pub async fn replay(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let e = actionable(&console, &signed, &id).await?;
    console
        .fleet
        .replay(&e.tenant, &e.id)
        .await
        .map_err(replay_refused)?;
    let outcome = json!({ "replayed": [&e.id], "status": "replayed" });
    let reason = e.reason.as_str();
    recorded(
        &console,
        &signed,
        &e,
        ("replay", reason),
        (&headers, &tenant),
        outcome,
    )
    .await
}

/// Replays the selected exceptions (`id` fields) the user may act on; the
/// others are counted in the answer, not silently dropped.
pub async fn replay_many(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Answer {
    let mut replayed = Vec::new();
    let mut refused = Vec::new();
    // Each id once, however often the form names it.
    let ids: std::collections::BTreeSet<String> = fields(&form, "id").into_iter().collect();
    for id in ids {
        let done = match actionable(&console, &signed, &id).await {
            Ok(e) => console
                .fleet
                .replay(&e.tenant, &e.id)
                .await
                .map(|()| e)
                .map_err(replay_refused),
            Err(r) => Err(r),
        };
        match done {
            Ok(e) => {
                console
                    .record(
                        &signed.principal,
                        Some(&e.tenant),
                        "replay",
                        &e.id,
                        e.reason.as_str(),
                    )
                    .await?;
                replayed.push(e.id);
            }
            Err(Refusal::Unavailable(why)) => return Err(Refusal::Unavailable(why)),
            Err(Refusal::Status(status, why)) => {
                refused.push(json!({ "id": id, "status": status.as_u16(), "why": why }))
            }
        }
    }
    if wants_json(&headers) {
        return Ok(Json(json!({ "replayed": replayed, "refused": refused })).into_response());
    }
    Ok(Redirect::to(&format!(
        "/exceptions?tenant={tenant}&replayed={}&refused={}",
        replayed.len(),
        refused.len()
    ))
    .into_response())
}

pub async fn assign(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Answer {
    let e = actionable(&console, &signed, &id).await?;
    let to = field(&form, "to")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    // Only a user of the same partner who could act on it may be assigned.
    if let Some(name) = &to {
        let fits = console.store.user(name).await?.is_some_and(|u| {
            u.partner == signed.principal.partner
                && u.role.acts_for(e.owner)
                && (u.tenant.is_none() || u.tenant.as_ref() == Some(&e.tenant))
        });
        if !fits {
            return Err(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{name} cannot act on this exception"),
            ));
        }
    }
    console
        .store
        .assign(&e.tenant, &e.id, to.as_deref())
        .await?;
    let detail = to.clone().unwrap_or_else(|| "nobody".into());
    let outcome = json!({ "assignee": to });
    recorded(
        &console,
        &signed,
        &e,
        ("assign", &detail),
        (&headers, &tenant),
        outcome,
    )
    .await
}

pub async fn comment(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Answer {
    let e = actionable(&console, &signed, &id).await?;
    let text = field(&form, "text").unwrap_or_default();
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_COMMENT {
        return Err(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a comment is 1 to {MAX_COMMENT} characters"),
        ));
    }
    let c = Comment {
        at: console.clock.now(),
        user: signed.principal.user.clone(),
        text: text.to_string(),
    };
    console.store.comment(&e.tenant, &e.id, &c).await?;
    let outcome = json!({ "commented": true });
    recorded(
        &console,
        &signed,
        &e,
        ("comment", text),
        (&headers, &tenant),
        outcome,
    )
    .await
}

pub async fn resolve(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let e = actionable(&console, &signed, &id).await?;
    if e.status == ExceptionStatus::Resolved {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "this exception is already resolved",
        ));
    }
    if !console.fleet.resolve(&e.tenant, &e.id).await? {
        return Err(Refusal::new(StatusCode::NOT_FOUND, "no such exception"));
    }
    let outcome = json!({ "status": "resolved" });
    let reason = e.reason.as_str();
    recorded(
        &console,
        &signed,
        &e,
        ("resolve", reason),
        (&headers, &tenant),
        outcome,
    )
    .await
}
