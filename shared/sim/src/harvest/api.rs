//! The front door: faults, the rate limit, the headers Harvest requires,
//! and routing.

use super::*;

/// Harvest's error body (`{code, message}` in its OpenAPI).
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": status.as_u16(), "message": message })),
    )
        .into_response()
}

pub(super) fn unauthorised() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({
            "error": "invalid_token",
            "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons."
        })),
    )
        .into_response()
}

pub(super) fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Admission: faults first, then the rate limit, then the headers Harvest requires.
pub(super) fn admit(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    {
        let mut f = inner.faults.lock().expect("not poisoned");
        if f.fail_next > 0 {
            f.fail_next -= 1;
            return Some(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "simulated failure",
            ));
        }
        if f.throttle_next > 0 {
            f.throttle_next -= 1;
            return Some(
                (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response(),
            );
        }
        if f.garbage_next > 0 {
            f.garbage_next -= 1;
            return Some((StatusCode::OK, "<html>maintenance</html>").into_response());
        }
    }
    if let Some((max, window)) = inner.cfg.limit {
        let mut recent = inner.recent.lock().expect("not poisoned");
        let at = Instant::now();
        while recent
            .front()
            .is_some_and(|t| at.duration_since(*t) >= window)
        {
            recent.pop_front();
        }
        if recent.len() >= max as usize {
            let wait = recent
                .front()
                .map(|t| window.saturating_sub(at.duration_since(*t)).as_secs() + 1)
                .unwrap_or(1);
            return Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", wait.to_string())],
                    axum::Json(json!({ "code": 429, "message": "Too Many Requests" })),
                )
                    .into_response(),
            );
        }
        recent.push_back(at);
    }
    let bearer = format!("Bearer {}", inner.cfg.token);
    if header(headers, "authorization") != bearer
        || header(headers, "harvest-account-id") != inner.cfg.account_id
    {
        return Some(unauthorised());
    }
    if header(headers, "user-agent").trim().is_empty() {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "Please include a User-Agent header naming your application and a contact",
        ));
    }
    None
}

pub(super) async fn api(
    State(inner): State<Arc<Inner>>,
    method: Method,
    Path(rest): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(refused) = admit(&inner, &headers) {
        return refused;
    }
    let request = serde_json::from_slice::<Value>(&body).ok();
    let path = rest.trim_matches('/').to_string();
    let (status, response) = route(&inner, &method, &path, &q, request.as_ref());
    inner
        .exchanges
        .lock()
        .expect("not poisoned")
        .push(Exchange {
            method: method.to_string(),
            path,
            query: q,
            request,
            status: status.as_u16(),
            response: response.clone(),
        });
    (status, axum::Json(response)).into_response()
}

pub(super) fn not_found() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({ "code": 404, "message": "Not found" }),
    )
}

pub(super) fn route(
    inner: &Inner,
    method: &Method,
    path: &str,
    q: &BTreeMap<String, String>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let parts: Vec<&str> = path.split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::GET, [name]) => match table(name) {
            Some(name) => list(inner, name, name, q, |_| true),
            None => not_found(),
        },
        (&Method::GET, [name, id]) => {
            let (Some(name), Ok(id)) = (table(name), id.parse::<i64>()) else {
                return not_found();
            };
            let d = inner.data.lock().expect("not poisoned");
            match d.tables.get(name).and_then(|t| t.get(&id)) {
                Some(r) => (StatusCode::OK, r.clone()),
                None => not_found(),
            }
        }
        (&Method::GET, ["projects", id, "task_assignments"]) => {
            let Ok(id) = id.parse::<i64>() else {
                return not_found();
            };
            list(inner, "task_assignments", "task_assignments", q, |a| {
                a.pointer("/project/id").and_then(Value::as_i64) == Some(id)
            })
        }
        (&Method::GET, ["invoices", id, "payments"]) => {
            let Ok(id) = id.parse::<i64>() else {
                return not_found();
            };
            let items = {
                let d = inner.data.lock().expect("not poisoned");
                if d.tables
                    .get("invoices")
                    .is_none_or(|t| !t.contains_key(&id))
                {
                    return not_found();
                }
                d.payments.get(&id).cloned().unwrap_or_default()
            };
            page_of(
                inner,
                "invoice_payments",
                &format!("invoices/{id}/payments"),
                items,
                q,
            )
        }
        (&Method::POST, ["invoices", id, "payments"]) => match id.parse::<i64>() {
            Ok(id) => pay(inner, id, body),
            Err(_) => not_found(),
        },
        _ => not_found(),
    }
}
