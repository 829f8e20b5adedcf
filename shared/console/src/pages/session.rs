//! Signing in and out, and the compiled-in assets.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::Console;
use crate::auth;
use crate::pages::unavailable;
use crate::routes::Signed;
use crate::views;

pub async fn form(State(console): State<Arc<Console>>) -> Response {
    let look = console.look(console.home_partner.as_deref()).await;
    console
        .views
        .page("sign_in.html", json!({ "look": look, "error": null }))
}

#[derive(Deserialize)]
pub struct SignInForm {
    user: String,
    password: String,
}

/// Checks the password, starts a session and sets its cookie. A wrong user
/// and a wrong password get the same answer.
pub async fn sign_in(State(console): State<Arc<Console>>, Form(f): Form<SignInForm>) -> Response {
    let name = f.user.trim();
    let now = console.clock.now();
    if console.throttle.locked(name, now) {
        let look = console.look(console.home_partner.as_deref()).await;
        return console.views.page_with(
            StatusCode::TOO_MANY_REQUESTS,
            "sign_in.html",
            json!({ "look": look, "error": format!(
                "Too many failed sign-ins for this name: try again in {} minutes.",
                auth::LOCKOUT_MINUTES
            ) }),
        );
    }
    let user = match console.store.user(name).await {
        Ok(u) => u,
        Err(e) => return unavailable(e),
    };
    let valid = match &user {
        Some(u) => auth::verify_password(&f.password, &u.password_hash),
        None => {
            auth::verify_nobody(&f.password);
            false
        }
    };
    let Some(user) = user.filter(|_| valid) else {
        console.throttle.failed(name, now);
        let look = console.look(console.home_partner.as_deref()).await;
        return console.views.page_with(
            StatusCode::UNAUTHORIZED,
            "sign_in.html",
            json!({ "look": look, "error": "That user name and password do not match." }),
        );
    };
    console.throttle.succeeded(name);
    let (id, session) = auth::new_session(&user.name, console.clock.now());
    if let Err(e) = console.store.put_session(&session).await {
        return unavailable(e);
    }
    let principal = crate::Principal {
        user: user.name.clone(),
        partner: user.partner.clone(),
        role: user.role,
        tenant: user.tenant.clone(),
    };
    if let Err(e) = console
        .record(&principal, user.tenant.as_ref(), "sign_in", &user.name, "")
        .await
    {
        return unavailable(e);
    }
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(&id)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub async fn sign_out(
    State(console): State<Arc<Console>>,
    Extension(_signed): Extension<Signed>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Some(id) = auth::session_id(&headers)
        && let Err(e) = console.store.delete_session(&auth::id_hash(&id)).await
    {
        return unavailable(e);
    }
    let mut resp = Redirect::to("/sign-in").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::cleared_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub async fn stylesheet() -> Response {
    views::asset("text/css; charset=utf-8", views::STYLESHEET)
}

pub async fn script() -> Response {
    views::asset("text/javascript; charset=utf-8", views::SCRIPT)
}
