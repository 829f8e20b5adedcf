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
use crate::pages::{acts, unavailable};
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
) -> Result<ExceptionRecord, Response> {
    let Some(c) = &signed.customer else {
        return Err(unavailable("an action without its customer"));
    };
    match console.fleet.exception(&c.tenant, id).await {
        Ok(Some(e)) if acts(&signed.principal, e.owner) => Ok(e),
        Ok(Some(e)) => Err((
            StatusCode::FORBIDDEN,
            format!("{} exceptions are not yours to act on", e.owner),
        )
            .into_response()),
        Ok(None) => Err((StatusCode::NOT_FOUND, "no such exception").into_response()),
        Err(e) => Err(unavailable(e)),
    }
}

fn replay_refused(e: ReplayError) -> Response {
    match e {
        ReplayError::Port(p) => unavailable(p),
        ReplayError::NotFound(_) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
        other => (StatusCode::CONFLICT, other.to_string()).into_response(),
    }
}

pub async fn replay(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let e = match actionable(&console, &signed, &id).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    if let Err(err) = console.fleet.replay(&e.tenant, &e.id).await {
        return replay_refused(err);
    }
    if let Err(err) = console
        .record(
            &signed.principal,
            Some(&e.tenant),
            "replay",
            &e.id,
            e.reason.as_str(),
        )
        .await
    {
        return unavailable(err);
    }
    done(
        &headers,
        &tenant,
        &id,
        json!({ "replayed": [e.id], "status": "replayed" }),
    )
}

/// Replays the selected exceptions (`id` fields) the user may act on; the
/// others are named in the answer, not silently dropped.
pub async fn replay_many(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Response {
    let mut replayed = Vec::new();
    let mut refused = Vec::new();
    // Each id once, however often the form names it.
    let ids: std::collections::BTreeSet<String> = fields(&form, "id").into_iter().collect();
    for id in ids {
        match actionable(&console, &signed, &id).await {
            Ok(e) => match console.fleet.replay(&e.tenant, &e.id).await {
                Ok(()) => {
                    if let Err(err) = console
                        .record(
                            &signed.principal,
                            Some(&e.tenant),
                            "replay",
                            &e.id,
                            e.reason.as_str(),
                        )
                        .await
                    {
                        return unavailable(err);
                    }
                    replayed.push(e.id);
                }
                Err(err) => refused.push(json!({ "id": id, "why": err.to_string() })),
            },
            Err(r) => refused.push(json!({ "id": id, "why": r.status().to_string() })),
        }
    }
    let outcome = json!({ "replayed": &replayed, "refused": &refused });
    if wants_json(&headers) {
        Json(outcome).into_response()
    } else {
        Redirect::to(&format!(
            "/exceptions?tenant={tenant}&replayed={}&refused={}",
            replayed.len(),
            refused.len()
        ))
        .into_response()
    }
}

pub async fn assign(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Response {
    let e = match actionable(&console, &signed, &id).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let to = field(&form, "to")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    // Only a user of the same partner who could act on it may be assigned.
    if let Some(name) = &to {
        match console.store.user(name).await {
            Ok(Some(u))
                if u.partner == signed.principal.partner
                    && u.role.acts_for(e.owner)
                    && (u.tenant.is_none() || u.tenant.as_ref() == Some(&e.tenant)) => {}
            Ok(_) => {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{name} cannot act on this exception"),
                )
                    .into_response();
            }
            Err(err) => return unavailable(err),
        }
    }
    if let Err(err) = console.store.assign(&e.tenant, &e.id, to.as_deref()).await {
        return unavailable(err);
    }
    if let Err(err) = console
        .record(
            &signed.principal,
            Some(&e.tenant),
            "assign",
            &e.id,
            to.as_deref().unwrap_or("nobody"),
        )
        .await
    {
        return unavailable(err);
    }
    done(&headers, &tenant, &id, json!({ "assignee": to }))
}

pub async fn comment(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Response {
    let e = match actionable(&console, &signed, &id).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let text = field(&form, "text").unwrap_or_default();
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_COMMENT {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a comment is 1 to {MAX_COMMENT} characters"),
        )
            .into_response();
    }
    let c = Comment {
        at: console.clock.now(),
        user: signed.principal.user.clone(),
        text: text.to_string(),
    };
    if let Err(err) = console.store.comment(&e.tenant, &e.id, &c).await {
        return unavailable(err);
    }
    if let Err(err) = console
        .record(&signed.principal, Some(&e.tenant), "comment", &e.id, text)
        .await
    {
        return unavailable(err);
    }
    done(&headers, &tenant, &id, json!({ "commented": true }))
}

pub async fn resolve(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let e = match actionable(&console, &signed, &id).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    if e.status == ExceptionStatus::Resolved {
        return (StatusCode::CONFLICT, "this exception is already resolved").into_response();
    }
    match console.fleet.resolve(&e.tenant, &e.id).await {
        Ok(true) => {}
        Ok(false) => return (StatusCode::NOT_FOUND, "no such exception").into_response(),
        Err(err) => return unavailable(err),
    }
    if let Err(err) = console
        .record(
            &signed.principal,
            Some(&e.tenant),
            "resolve",
            &e.id,
            e.reason.as_str(),
        )
        .await
    {
        return unavailable(err);
    }
    done(&headers, &tenant, &id, json!({ "status": "resolved" }))
}
