//! The API's front door: faults, limits (concurrency, minute, day),
//! authentication and the answer's envelope, then `handlers`.

use super::*;

pub(super) struct Flight<'a>(&'a AtomicU32);
impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) fn respond(
    inner: &Inner,
    status: StatusCode,
    body: Value,
    extra: &[(&'static str, String)],
) -> Response {
    let (min_left, day_left) = {
        let r = inner.rate.lock().expect("not poisoned");
        (
            inner.cfg.per_minute.saturating_sub(r.minute.len()),
            inner.cfg.per_day.saturating_sub(r.day.len()),
        )
    };
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert("x-minlimit-remaining", HeaderValue::from(min_left as u64));
    h.insert("x-daylimit-remaining", HeaderValue::from(day_left as u64));
    h.insert("x-appminlimit-remaining", HeaderValue::from(9_999u64));
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(*k, v);
        }
    }
    resp
}

pub(super) fn throttle(inner: &Inner, problem: &str, retry: u64, injected: bool) -> Response {
    {
        let mut r = inner.rate.lock().expect("not poisoned");
        if injected {
            r.stats.throttled_injected += 1;
        } else {
            r.stats.throttled_by_limits += 1;
        }
    }
    respond(
        inner,
        StatusCode::TOO_MANY_REQUESTS,
        json!({ "Title": "Too Many Requests", "Status": 429, "Detail": format!("rate limit exceeded: {problem}") }),
        &[
            ("retry-after", retry.to_string()),
            ("x-rate-limit-problem", problem.to_string()),
        ],
    )
}

pub(super) async fn api(
    State(inner): State<Arc<Inner>>,
    method: Method,
    Path(rest): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Authentication comes before any accounting, as in Xero.
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let known = presented == inner.cfg.token || {
        let auth = inner.auth.lock().expect("not poisoned");
        auth.access
            .get(presented)
            .is_some_and(|exp| *exp > Instant::now())
    };
    if !known {
        return respond(
            &inner,
            StatusCode::UNAUTHORIZED,
            json!({ "Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful" }),
            &[],
        );
    }
    if headers.get("xero-tenant-id").and_then(|v| v.to_str().ok())
        != Some(inner.cfg.tenant_id.as_str())
    {
        return respond(
            &inner,
            StatusCode::FORBIDDEN,
            json!({ "Title": "Forbidden", "Status": 403, "Detail": "AuthorizationUnsuccessful" }),
            &[],
        );
    }
    {
        let mut f = inner.faults.lock().expect("not poisoned");
        if f.garbage_next > 0 {
            f.garbage_next -= 1;
            return (StatusCode::OK, "<html>maintenance</html>").into_response();
        }
    }
    let flying = inner.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    let _flight = Flight(&inner.inflight);
    // Injected faults: nothing is committed or counted.
    let (fail, throttle_injected, retry_after, lose, slow, commit_late, malformed, day_cap, stall) = {
        let mut f = inner.faults.lock().expect("not poisoned");
        let fail = f.fail_next > 0;
        if fail {
            f.fail_next -= 1;
        }
        let day_cap = !fail && f.day_cap_next > 0;
        if day_cap {
            f.day_cap_next -= 1;
        }
        let thr = !fail && !day_cap && f.throttle_next > 0;
        if thr {
            f.throttle_next -= 1;
        }
        let writes = method != Method::GET;
        let stall = writes && !fail && !day_cap && !thr && f.stall_next > 0;
        if stall {
            f.stall_next -= 1;
        }
        let lose = writes && !fail && !thr && f.lose_next_responses > 0;
        if lose {
            f.lose_next_responses -= 1;
        }
        let slow = writes && !fail && !thr && !lose && f.slow_next > 0;
        if slow {
            f.slow_next -= 1;
        }
        let malformed = writes && !fail && !thr && !lose && f.malformed_next > 0;
        if malformed {
            f.malformed_next -= 1;
        }
        (
            fail,
            thr,
            f.retry_after_secs.max(1),
            lose,
            slow.then_some(f.slow_for),
            f.commit_late,
            malformed,
            day_cap,
            stall,
        )
    };
    if fail {
        return respond(
            &inner,
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "Title": "Internal Server Error", "Status": 500 }),
            &[],
        );
    }
    if throttle_injected {
        return throttle(&inner, "minute", retry_after, true);
    }
    if day_cap {
        return throttle(&inner, "day", retry_after, true);
    }
    // Xero's limits: concurrent, per rolling minute, per day.
    {
        let now = Instant::now();
        let mut r = inner.rate.lock().expect("not poisoned");
        if flying > inner.cfg.concurrent {
            drop(r);
            return throttle(&inner, "concurrent", 1, false);
        }
        while r
            .minute
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            r.minute.pop_front();
        }
        while r
            .day
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(86_400))
        {
            r.day.pop_front();
        }
        if r.minute.len() >= inner.cfg.per_minute {
            let oldest = *r.minute.front().expect("non-empty");
            let wait = 60u64
                .saturating_sub(now.duration_since(oldest).as_secs())
                .max(1);
            drop(r);
            return throttle(&inner, "minute", wait, false);
        }
        if r.day.len() >= inner.cfg.per_day {
            drop(r);
            return throttle(&inner, "day", 3600, false);
        }
        r.minute.push_back(now);
        r.day.push_back(now);
        r.stats.calls += 1;
        r.stats.max_in_minute = r.stats.max_in_minute.max(r.minute.len());
        r.stats.max_concurrent = r.stats.max_concurrent.max(flying);
    }

    let request: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                return respond(
                    &inner,
                    StatusCode::BAD_REQUEST,
                    xero_error(&format!("The request body is not valid JSON: {e}"), vec![]),
                    &[],
                );
            }
        }
    };
    let path = rest.trim_matches('/').to_string();
    let idem_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let fingerprint = format!("{method} {path} {q:?} {}", String::from_utf8_lossy(&body));
    if let Some(k) = &idem_key {
        if k.len() > 128 {
            return respond(
                &inner,
                StatusCode::BAD_REQUEST,
                xero_error("Idempotency-Key must be 128 characters or fewer", vec![]),
                &[],
            );
        }
        let org = inner.org.lock().expect("not poisoned");
        if let Some((fp, status, resp)) = org.idem.get(k) {
            if *fp != fingerprint {
                drop(org);
                return respond(
                    &inner,
                    StatusCode::BAD_REQUEST,
                    xero_error(
                        "The Idempotency-Key was already used with a different request",
                        vec![],
                    ),
                    &[],
                );
            }
            let (status, resp) = (*status, resp.clone());
            drop(org);
            return respond(
                &inner,
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                resp,
                &[],
            );
        }
    }

    let modified_since = headers
        .get("if-modified-since")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc));
    // The request is processed to the end even if the client hangs up (a client
    // timeout does not stop Xero committing): the work runs in its own task.
    let work = {
        let inner = inner.clone();
        let method = method.clone();
        let path = path.clone();
        let request = request.clone();
        let late = if commit_late { slow } else { None };
        let parked = stall.then(|| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            inner.stalled.lock().expect("not poisoned").push(tx);
            inner.stalled_pending.fetch_add(1, Ordering::SeqCst);
            rx
        });
        tokio::spawn(async move {
            if let Some(d) = late {
                tokio::time::sleep(d).await;
            }
            if let Some(rx) = parked {
                // Released, or the simulator is going away: commit either way.
                let _ = rx.await;
            }
            let (status, mut resp) =
                handle(&inner, &method, &path, &q, request.as_ref(), modified_since);
            if malformed {
                malform(&mut resp);
            }
            if let Some(k) = idem_key
                && method != Method::GET
            {
                inner
                    .org
                    .lock()
                    .expect("not poisoned")
                    .idem
                    .insert(k, (fingerprint, status.as_u16(), resp.clone()));
            }
            inner.log.lock().expect("not poisoned").push(Exchange {
                method: method.to_string(),
                path,
                status: status.as_u16(),
                request,
                response: resp.clone(),
            });
            if stall {
                inner.stalled_pending.fetch_sub(1, Ordering::SeqCst);
            }
            (status, resp)
        })
    };
    let (status, resp) = match work.await {
        Ok(done) => done,
        Err(e) => {
            return respond(
                &inner,
                StatusCode::INTERNAL_SERVER_ERROR,
                xero_error(&format!("simulator task failed: {e}"), vec![]),
                &[],
            );
        }
    };
    if lose {
        return respond(
            &inner,
            StatusCode::GATEWAY_TIMEOUT,
            json!({ "Title": "Gateway Timeout", "Status": 504 }),
            &[],
        );
    }
    if !commit_late && let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    respond(&inner, status, resp, &[])
}

/// Gives every document of a write answer fields of unexpected types.
pub(super) fn malform(resp: &mut Value) {
    for key in ["Invoices", "CreditNotes", "Contacts"] {
        if let Some(items) = resp.get_mut(key).and_then(Value::as_array_mut) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                item.insert("SubTotal".into(), json!("twelve"));
                item.insert("LineItems".into(), json!("not a list"));
                item.insert("HasValidationErrors".into(), json!("no"));
                item.insert("Addresses".into(), json!(42));
                item.insert("FutureField".into(), json!({ "Nested": [1, "two"] }));
            }
        }
    }
}

pub(super) fn envelope(key: &str, items: Vec<Value>) -> Value {
    json!({
        "Id": uuid(),
        "Status": "OK",
        "ProviderName": "Ferry Xero simulator",
        "DateTimeUTC": now_ms(),
        key: items,
    })
}
