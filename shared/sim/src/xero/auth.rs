//! The OAuth token endpoint: refresh tokens exchanged for access tokens,
//! each refresh token rotating with a grace period, as Xero documents.

use super::*;

/// `POST /connect/token` (grant_type=refresh_token), as Xero's identity server
/// answers it: client credentials in Basic auth, the refresh token rotates on
/// every use, the previous one is honoured for the grace period.
pub(super) async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            inner.cfg.client_id, inner.cfg.client_secret
        ))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let presented = form.get("refresh_token").cloned().unwrap_or_default();
    let now = Instant::now();
    let mut auth = inner.auth.lock().expect("not poisoned");
    let in_grace = auth
        .previous
        .as_ref()
        .is_some_and(|(t, until)| *t == presented && *until > now);
    if presented != auth.refresh && !in_grace {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    auth.refreshes += 1;
    if presented == auth.refresh {
        auth.generation += 1;
        let next = format!("xero-refresh-token-{}-{}", auth.generation, uuid());
        let old = std::mem::replace(&mut auth.refresh, next);
        auth.previous = Some((old, now + REFRESH_GRACE));
    }
    let access = format!("xero-access-{}", uuid());
    let ttl = auth.access_ttl;
    auth.access.insert(access.clone(), now + ttl);
    axum::Json(json!({
        "access_token": access,
        "expires_in": ttl.as_secs(),
        "token_type": "Bearer",
        "refresh_token": auth.refresh,
        "scope": "offline_access accounting.transactions accounting.contacts accounting.settings",
    }))
    .into_response()
}
