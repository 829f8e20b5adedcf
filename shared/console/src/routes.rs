//! One route table: each route's method, path and the permission it needs.
//! The router is built from it, with the guard in front of every page, and
//! the route × role test reads the same table, so no route can exist
//! without a declared check.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use ferry_canon::TenantId;

use crate::Console;
use crate::auth::{self, CSRF_FIELD};
use crate::pages;
use crate::roles::{Need, Principal};

/// Largest form the console accepts.
const MAX_FORM: usize = 64 * 1024;

/// A route of the console.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// axum path syntax; a `{tenant}` segment scopes the route to one customer.
    pub path: &'static str,
    pub need: Need,
    pub page: Page,
}

/// Which handler serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    SignInForm,
    SignIn,
    SignOut,
    Stylesheet,
    Script,
    Customers,
    Customer,
    Exceptions,
    Exception,
    ExceptionStatus,
    Replay,
    ReplayMany,
    Assign,
    Comment,
    Resolve,
    Audit,
    AuditExport,
    Reconciliations,
    Reconciliation,
    SignOff,
    Trends,
}

const fn r(method: Method, path: &'static str, need: Need, page: Page) -> Route {
    Route {
        method,
        path,
        need,
        page,
    }
}

/// Every route the console serves.
pub const ROUTES: &[Route] = &[
    r(Method::GET, "/sign-in", Need::Public, Page::SignInForm),
    r(Method::POST, "/sign-in", Need::Public, Page::SignIn),
    r(Method::POST, "/sign-out", Need::SignedIn, Page::SignOut),
    r(
        Method::GET,
        "/assets/console.css",
        Need::Public,
        Page::Stylesheet,
    ),
    r(
        Method::GET,
        "/assets/console.js",
        Need::Public,
        Page::Script,
    ),
    r(Method::GET, "/", Need::Read, Page::Customers),
    r(Method::GET, "/exceptions", Need::Read, Page::Exceptions),
    r(Method::GET, "/t/{tenant}", Need::Read, Page::Customer),
    r(
        Method::GET,
        "/t/{tenant}/exceptions/{id}",
        Need::Read,
        Page::Exception,
    ),
    r(
        Method::GET,
        "/t/{tenant}/exceptions/{id}/status",
        Need::Read,
        Page::ExceptionStatus,
    ),
    r(
        Method::POST,
        "/t/{tenant}/exceptions/{id}/replay",
        Need::Act,
        Page::Replay,
    ),
    r(
        Method::POST,
        "/t/{tenant}/exceptions/{id}/assign",
        Need::Act,
        Page::Assign,
    ),
    r(
        Method::POST,
        "/t/{tenant}/exceptions/{id}/comment",
        Need::Act,
        Page::Comment,
    ),
    r(
        Method::POST,
        "/t/{tenant}/exceptions/{id}/resolve",
        Need::Act,
        Page::Resolve,
    ),
    r(
        Method::POST,
        "/t/{tenant}/replay",
        Need::Act,
        Page::ReplayMany,
    ),
    r(Method::GET, "/t/{tenant}/audit", Need::Read, Page::Audit),
    r(
        Method::GET,
        "/t/{tenant}/audit/export",
        Need::Read,
        Page::AuditExport,
    ),
    r(Method::GET, "/t/{tenant}/trends", Need::Read, Page::Trends),
    r(
        Method::GET,
        "/t/{tenant}/reconciliation",
        Need::Read,
        Page::Reconciliations,
    ),
    r(
        Method::GET,
        "/t/{tenant}/reconciliation/{from}/{to}",
        Need::Read,
        Page::Reconciliation,
    ),
    r(
        Method::POST,
        "/t/{tenant}/reconciliation/{from}/{to}/sign-off",
        Need::SignOff,
        Page::SignOff,
    ),
];

fn handler(page: Page) -> MethodRouter<Arc<Console>> {
    match page {
        Page::SignInForm => get(pages::session::form),
        Page::SignIn => post(pages::session::sign_in),
        Page::SignOut => post(pages::session::sign_out),
        Page::Stylesheet => get(pages::session::stylesheet),
        Page::Script => get(pages::session::script),
        Page::Customers => get(pages::customers::list),
        Page::Customer => get(pages::customers::one),
        Page::Exceptions => get(pages::exceptions::list),
        Page::Exception => get(pages::exceptions::one),
        Page::ExceptionStatus => get(pages::exceptions::status),
        Page::Replay => post(pages::actions::replay),
        Page::ReplayMany => post(pages::actions::replay_many),
        Page::Assign => post(pages::actions::assign),
        Page::Comment => post(pages::actions::comment),
        Page::Resolve => post(pages::actions::resolve),
        Page::Audit => get(pages::audit::list),
        Page::AuditExport => get(pages::audit::export),
        Page::Reconciliations => get(pages::reconciliation::list),
        Page::Reconciliation => get(pages::reconciliation::one),
        Page::SignOff => post(pages::reconciliation::sign_off),
        Page::Trends => get(pages::trends::page),
    }
}

/// The console's router: every route of [`ROUTES`] behind [`guard`].
pub fn router(console: Arc<Console>) -> Router {
    let mut app = Router::new();
    for route in ROUTES {
        let guarded = handler(route.page).route_layer(middleware::from_fn_with_state(
            (console.clone(), route.clone()),
            guard,
        ));
        app = app.route(route.path, guarded);
    }
    app.fallback(|| async { (StatusCode::NOT_FOUND, "no such page") })
        .layer(middleware::map_response(protective_headers))
        .with_state(console)
}

/// Headers on every answer: no sniffing, no framing, scripts and styles from
/// the console only (the brand's colours are one inline style), and nothing
/// a signed-in page shows kept in a cache unless it says otherwise (assets).
async fn protective_headers(mut r: Response) -> Response {
    use axum::http::{HeaderValue, header};
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' https:; style-src 'self' 'unsafe-inline'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Who is asking, put in the request by the guard for the page.
#[derive(Debug, Clone)]
pub struct Signed {
    pub principal: Principal,
    pub csrf: String,
    /// The customer a tenant-scoped route is about (its directory entry).
    pub customer: Option<crate::store::Customer>,
}

/// Refusals a page never has to think about.
fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

/// The tenant segment of a `/t/{tenant}/…` path.
fn tenant_segment(path: &str) -> Option<&str> {
    path.strip_prefix("/t/")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
}

/// The check in front of every route: a state-changing request must come from
/// the console's own origin; a non-public route needs a live session whose
/// role holds the route's permission; a tenant-scoped one needs a tenant the
/// user sees (an unknown and a forbidden tenant look the same: 404); a POST
/// past sign-in carries the session's CSRF token.
pub async fn guard(
    State((console, route)): State<(Arc<Console>, Route)>,
    request: Request,
    next: Next,
) -> Response {
    let posting = request.method() == Method::POST;
    if posting && !auth::same_origin(request.headers()) {
        return refuse(StatusCode::FORBIDDEN, "cross-origin request refused");
    }
    if route.need == Need::Public {
        return next.run(request).await;
    }
    let signed = match console.signed_in(request.headers()).await {
        Ok(Some(s)) => s,
        Ok(None) if posting => return refuse(StatusCode::UNAUTHORIZED, "sign in first"),
        Ok(None) => return Redirect::to("/sign-in").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading a console session");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again shortly");
        }
    };
    if !signed.principal.role.may(route.need) {
        return refuse(StatusCode::FORBIDDEN, "your role may not do this");
    }
    let customer = match tenant_segment(request.uri().path()) {
        None => None,
        Some(t) => {
            let Ok(tenant) = TenantId::parse(t) else {
                return refuse(StatusCode::NOT_FOUND, "no such customer");
            };
            match console.store.customer(&tenant).await {
                Ok(Some(c)) if signed.principal.sees(&c.tenant, &c.partner) => Some(c),
                Ok(_) => return refuse(StatusCode::NOT_FOUND, "no such customer"),
                Err(e) => {
                    tracing::error!(error = %e, "reading the directory");
                    return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again shortly");
                }
            }
        }
    };
    let mut request = if posting {
        match csrf_checked(request, &signed.csrf).await {
            Ok(r) => r,
            Err(resp) => return resp,
        }
    } else {
        request
    };
    request.extensions_mut().insert(Signed {
        principal: signed.principal,
        csrf: signed.csrf,
        customer,
    });
    next.run(request).await
}

/// Reads the form, checks its CSRF field against the session's, and puts the
/// body back for the page.
async fn csrf_checked(request: Request, expected: &str) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| refuse(StatusCode::PAYLOAD_TOO_LARGE, "form too large"))?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    match token {
        Some(t) if auth::same_token(&t, expected) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(refuse(StatusCode::FORBIDDEN, "missing or stale form token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_segments() {
        assert_eq!(tenant_segment("/t/acme"), Some("acme"));
        assert_eq!(tenant_segment("/t/acme/exceptions/x"), Some("acme"));
        assert_eq!(tenant_segment("/exceptions"), None);
    }

    #[test]
    fn every_route_is_declared_once_and_actions_are_posts() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method.clone(), r.path)), "{} twice", r.path);
            if matches!(r.need, Need::Act | Need::SignOff | Need::ManageUsers) {
                assert_eq!(r.method, Method::POST, "{}: actions are POSTs", r.path);
            }
            if r.method == Method::POST && r.need != Need::Public {
                assert_ne!(r.need, Need::Read, "{}: a POST changes something", r.path);
            }
        }
    }
}
