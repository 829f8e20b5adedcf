//! The front door: the token endpoint, faults, the five-minute limit, the
//! bearer token, `$batch`, and webhook subscriptions (which call the
//! subscriber's endpoint to validate it before they exist).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::*;

fn answer(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if body.is_null() {
        status.into_response()
    } else {
        (status, axum::Json(body)).into_response()
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`: client credentials.
pub(super) async fn token(
    State(inner): State<Arc<Inner>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if tenant != inner.cfg.tenant_id
        || field("grant_type") != "client_credentials"
        || field("client_id") != inner.cfg.client_id
        || field("client_secret") != inner.cfg.client_secret
        || field("scope") != "https://api.businesscentral.dynamics.com/.default"
    {
        return answer(
            401,
            json!({ "error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided." }),
        );
    }
    let token = format!("bc-{}", crate::uuid());
    let until = now_at(&inner) + chrono::Duration::hours(1);
    inner
        .data
        .lock()
        .expect("not poisoned")
        .tokens
        .insert(token.clone(), until);
    answer(
        200,
        json!({ "token_type": "Bearer", "expires_in": 3599, "access_token": token }),
    )
}

fn admit(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    {
        let mut f = inner.faults.lock().expect("not poisoned");
        if f.fail_next > 0 {
            f.fail_next -= 1;
            return Some(answer(
                500,
                error("Internal_ServerError", "simulated failure"),
            ));
        }
        if f.throttle_next > 0 {
            f.throttle_next -= 1;
            return Some(throttled(1));
        }
        if f.garbage_next > 0 {
            f.garbage_next -= 1;
            return Some((StatusCode::OK, "<html>maintenance</html>").into_response());
        }
    }
    {
        let window = Duration::from_secs(300);
        let mut recent = inner.recent.lock().expect("not poisoned");
        let at = Instant::now();
        while recent
            .front()
            .is_some_and(|t| at.duration_since(*t) >= window)
        {
            recent.pop_front();
        }
        if recent.len() >= inner.cfg.per_five_minutes {
            let wait = recent
                .front()
                .map(|t| window.saturating_sub(at.duration_since(*t)).as_secs() + 1)
                .unwrap_or(1);
            return Some(throttled(wait));
        }
        recent.push_back(at);
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let valid = inner
        .data
        .lock()
        .expect("not poisoned")
        .tokens
        .get(bearer)
        .is_some_and(|until| *until > now_at(inner));
    (!valid).then(|| {
        answer(
            401,
            error(
                "Authentication_InvalidCredentials",
                "The credentials provided are incorrect",
            ),
        )
    })
}

fn throttled(wait: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", wait.to_string())],
        axum::Json(error(
            "Application_TooManyRequests",
            "Too many requests in the last five minutes",
        )),
    )
        .into_response()
}

/// Every request under `/api/v2.0/`.
pub(super) async fn serve(
    State(inner): State<Arc<Inner>>,
    method: Method,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(refused) = admit(&inner, &headers) {
        return refused;
    }
    let body = serde_json::from_slice::<Value>(&body).ok();
    let if_match = headers
        .get("if-match")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let query = query.unwrap_or_default();
    if rest == "$batch" {
        let atomic = headers.get("isolation").and_then(|v| v.to_str().ok()) == Some("snapshot");
        return batch(&inner, body.as_ref(), atomic).await;
    }
    if rest == "subscriptions" || rest.starts_with("subscriptions(") {
        let (status, v) =
            subscriptions(&inner, &method, &rest, if_match.as_deref(), body.as_ref()).await;
        return answer(status, v);
    }
    let (status, v, changed) = odata::handle(
        &inner,
        method.as_str(),
        &rest,
        &query,
        if_match.as_deref(),
        body.as_ref(),
    );
    if let Some(id) = changed {
        notify(&inner, &id).await;
    }
    answer(status, v)
}

/// A JSON `$batch`: each operation answered in turn; with `atomic`, a failed
/// one undoes the others.
async fn batch(inner: &Arc<Inner>, body: Option<&Value>, atomic: bool) -> Response {
    let Some(requests) = body.and_then(|b| b["requests"].as_array()) else {
        return answer(
            400,
            error("BadRequest", "a $batch body is {\"requests\": [...]}"),
        );
    };
    if requests.len() > 100 {
        return answer(
            400,
            error("BadRequest", "a $batch holds at most 100 operations"),
        );
    }
    let base = format!("{}/api/v2.0/", inner.origin.lock().expect("not poisoned"));
    let saved = atomic.then(|| {
        let d = inner.data.lock().expect("not poisoned");
        (d.customers.clone(), d.documents.clone(), d.version)
    });
    let mut responses = Vec::new();
    let mut changed = Vec::new();
    let mut failed = false;
    for r in requests {
        let id = r["id"].clone();
        let url = r["url"].as_str().unwrap_or_default();
        let Some(path) = url.strip_prefix(&base) else {
            failed = true;
            responses.push(json!({ "id": id, "status": 400, "body": error("BadRequest", "the operation's URL is not under this API") }));
            continue;
        };
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let if_match = r["headers"]["If-Match"].as_str();
        let (status, v, change) = odata::handle(
            inner,
            r["method"].as_str().unwrap_or_default(),
            path,
            query,
            if_match,
            r.get("body"),
        );
        failed |= status >= 300;
        changed.extend(change);
        responses.push(json!({ "id": id, "status": status, "body": v }));
    }
    if failed && let Some((customers, documents, version)) = saved {
        let mut d = inner.data.lock().expect("not poisoned");
        d.customers = customers;
        d.documents = documents;
        d.version = version;
        changed.clear();
        // The operations that succeeded are undone with the rest.
        for r in responses.iter_mut() {
            if r["status"].as_u64().is_some_and(|s| s < 300) {
                r["status"] = json!(424);
                r["body"] = error(
                    "BadRequest_FailedDependency",
                    "undone: another operation of the atomic batch failed",
                );
            }
        }
    }
    for id in changed {
        notify(inner, &id).await;
    }
    answer(200, json!({ "responses": responses }))
}

/// Calls the subscriber's endpoint with a `validationToken`; it must echo it.
async fn validate(inner: &Inner, url: &str) -> bool {
    let token = crate::uuid();
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return false;
    };
    u.query_pairs_mut().append_pair("validationToken", &token);
    match inner.http.post(u).send().await {
        Ok(r) if r.status().is_success() => r.text().await.is_ok_and(|t| t == token),
        _ => false,
    }
}

/// `GET|POST /subscriptions`, `PATCH|DELETE /subscriptions('{id}')`.
async fn subscriptions(
    inner: &Arc<Inner>,
    method: &Method,
    rest: &str,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let id = rest
        .strip_prefix("subscriptions('")
        .and_then(|r| r.strip_suffix("')"))
        .map(String::from);
    let expiry =
        || (now_at(inner) + chrono::Duration::days(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    match (method, id) {
        (&Method::GET, None) => {
            let d = inner.data.lock().expect("not poisoned");
            (
                200,
                json!({ "value": d.subscriptions.values().cloned().collect::<Vec<_>>() }),
            )
        }
        (&Method::POST, None) => {
            let Some(b) = body else {
                return (400, error("BadRequest", "a subscription body is required"));
            };
            let (Some(url), Some(resource)) =
                (b["notificationUrl"].as_str(), b["resource"].as_str())
            else {
                return (
                    400,
                    error("BadRequest", "notificationUrl and resource are required"),
                );
            };
            if !validate(inner, url).await {
                return (
                    400,
                    error(
                        "BadRequest",
                        "The notification URL did not validate: it must answer 200 with the validationToken",
                    ),
                );
            }
            let mut d = inner.data.lock().expect("not poisoned");
            d.version += 1;
            let sid = crate::uuid().replace('-', "");
            let sub = json!({ "subscriptionId": sid, "notificationUrl": url, "resource": resource,
                              "clientState": b["clientState"], "expirationDateTime": expiry(),
                              "lastModifiedDateTime": now(inner), "@odata.etag": etag(d.version) });
            d.subscriptions.insert(sid, sub.clone());
            (201, sub)
        }
        (&Method::PATCH, Some(sid)) => {
            let current = inner
                .data
                .lock()
                .expect("not poisoned")
                .subscriptions
                .get(&sid)
                .cloned();
            let Some(mut sub) = current else {
                return (404, error("BadRequest_NotFound", "no such subscription"));
            };
            if if_match.is_none_or(|e| e != "*" && sub["@odata.etag"] != e) {
                return (
                    412,
                    error(
                        "Request_EntityChanged",
                        "Another user has already changed the record.",
                    ),
                );
            }
            let url = body
                .and_then(|b| b["notificationUrl"].as_str())
                .or(sub["notificationUrl"].as_str())
                .unwrap_or_default()
                .to_string();
            if !validate(inner, &url).await {
                return (
                    400,
                    error("BadRequest", "The notification URL did not validate"),
                );
            }
            let mut d = inner.data.lock().expect("not poisoned");
            d.version += 1;
            sub["notificationUrl"] = json!(url);
            if let Some(cs) = body.and_then(|b| b.get("clientState")) {
                sub["clientState"] = cs.clone();
            }
            sub["expirationDateTime"] = json!(expiry());
            sub["@odata.etag"] = json!(etag(d.version));
            d.subscriptions.insert(sid, sub.clone());
            (200, sub)
        }
        (&Method::DELETE, Some(sid)) => {
            let gone = inner
                .data
                .lock()
                .expect("not poisoned")
                .subscriptions
                .remove(&sid);
            if gone.is_some() {
                (204, Value::Null)
            } else {
                (404, error("BadRequest_NotFound", "no such subscription"))
            }
        }
        _ => (405, error("BadRequest_MethodNotAllowed", "not supported")),
    }
}
