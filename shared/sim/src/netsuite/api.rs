//! The front door: faults, the bearer token, the account's concurrency
//! limit, the exchange log, and routing.

use super::*;

pub(super) struct Flight<'a>(&'a AtomicU32);

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) fn admit(inner: &Inner, headers: &HeaderMap) -> Option<Response> {
    {
        let mut f = inner.faults.lock().expect("not poisoned");
        if f.fail_next > 0 {
            f.fail_next -= 1;
            return Some(answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNEXPECTED_ERROR",
                    "simulated failure",
                ),
            ));
        }
        if f.throttle_next > 0 {
            f.throttle_next -= 1;
            return Some(throttled());
        }
        if f.garbage_next > 0 {
            f.garbage_next -= 1;
            return Some((StatusCode::OK, "<html>maintenance</html>").into_response());
        }
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let valid = {
        let d = inner.data.lock().expect("not poisoned");
        d.tokens
            .get(bearer)
            .is_some_and(|until| *until > now_at(inner))
    };
    if !valid {
        return Some(answer(
            StatusCode::UNAUTHORIZED,
            problem(
                StatusCode::UNAUTHORIZED,
                "INVALID_LOGIN",
                "Invalid login attempt. For more details, see the Login Audit Trail.",
            ),
        ));
    }
    None
}

pub(super) fn throttled() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", "1")],
        axum::Json(problem(
            StatusCode::TOO_MANY_REQUESTS,
            "CONCURRENCY_LIMIT_EXCEEDED",
            "Request limit exceeded: the account's concurrency limit is reached",
        )),
    )
        .into_response()
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
    let flying = inner.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    let _flight = Flight(&inner.inflight);
    if flying > inner.cfg.concurrency {
        return throttled();
    }
    let request = serde_json::from_slice::<Value>(&body).ok();
    let path = rest.trim_matches('/').to_string();
    let (status, response, location) =
        route(&inner, &method, &path, &q, &headers, request.as_ref());
    inner
        .exchanges
        .lock()
        .expect("not poisoned")
        .push(Exchange {
            method: method.to_string(),
            path: path.clone(),
            status: status.as_u16(),
            request,
            response: response.clone(),
        });
    let mut resp = if response.is_null() {
        status.into_response()
    } else {
        answer(status, response)
    };
    if let Some(l) = location
        && let Ok(v) = l.parse()
    {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    resp
}

pub(super) type Routed = (StatusCode, Value, Option<String>);

pub(super) fn not_found(what: &str) -> Routed {
    (
        StatusCode::NOT_FOUND,
        problem(
            StatusCode::NOT_FOUND,
            "NONEXISTENT_ID",
            &format!("The record {what} was not found."),
        ),
        None,
    )
}

pub(super) fn route(
    inner: &Inner,
    method: &Method,
    path: &str,
    q: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: Option<&Value>,
) -> Routed {
    let parts: Vec<&str> = path.split('/').collect();
    let origin = inner.origin.lock().expect("not poisoned").clone();
    match (method, parts.as_slice()) {
        (&Method::POST, ["query", "v1", "suiteql"]) => {
            let text = body.and_then(|b| b["q"].as_str()).unwrap_or_default();
            let d = inner.data.lock().expect("not poisoned");
            let (status, v) = suiteql::answer(&inner.cfg, &d, text, q);
            (status, v, None)
        }
        (&Method::GET, ["record", "v1", ty, id]) => match find(inner, ty, id) {
            Some(r) => (StatusCode::OK, r, None),
            None => not_found(id),
        },
        (&Method::DELETE, ["record", "v1", ty, id]) => delete(inner, ty, id),
        (&Method::PUT, ["record", "v1", ty]) => submit(inner, ty, headers, body, &origin),
        (&Method::GET, ["async", "v1", "job", id]) => job(inner, id),
        (&Method::GET, ["async", "v1", "job", id, "task"]) => tasks(inner, id),
        (&Method::GET, ["async", "v1", "job", id, "task", n, "result"]) => {
            task_result(inner, id, n)
        }
        _ => not_found(path),
    }
}
