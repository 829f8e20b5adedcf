//! The REST API: authentication, faults and limits, records, paging with
//! `conditions`, and invoice payments.

use super::*;

pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": code, "message": message, "errors": [] })),
    )
        .into_response()
}

pub(super) fn authorised(inner: &Inner, headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}+{}:{}",
            inner.cfg.company_id, inner.cfg.public_key, inner.cfg.private_key
        ))
    );
    let auth_ok =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    let client_ok =
        headers.get("clientid").and_then(|v| v.to_str().ok()) == Some(inner.cfg.client_id.as_str());
    auth_ok && client_ok
}

pub(super) async fn signing_key(State(inner): State<Arc<Inner>>) -> Response {
    inner.key_fetches.fetch_add(1, Ordering::Relaxed);
    axum::Json(json!({ "signing_key": inner.cfg.signing_key })).into_response()
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
    {
        let mut f = inner.faults.lock().expect("not poisoned");
        if f.fail_next > 0 {
            f.fail_next -= 1;
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "simulated failure",
            );
        }
        if f.throttle_next > 0 {
            f.throttle_next -= 1;
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
        }
        if f.garbage_next > 0 {
            f.garbage_next -= 1;
            return (StatusCode::OK, "<html>maintenance</html>").into_response();
        }
    }
    if let Some(max) = inner.cfg.max_per_second {
        let mut recent = inner.recent.lock().expect("not poisoned");
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
        {
            recent.pop_front();
        }
        if recent.len() >= max as usize {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
        }
        recent.push_back(now);
    }
    if !authorised(&inner, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "invalid credentials or clientId",
        );
    }
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (Method::GET, [a, b]) => match Kind::from_path(&format!("{a}/{b}")) {
            Some(kind) => list(&inner, kind, &q),
            None => error(StatusCode::NOT_FOUND, "NotFound", "unknown resource"),
        },
        (Method::GET, [a, b, id]) => {
            match (Kind::from_path(&format!("{a}/{b}")), id.parse::<i64>()) {
                (Some(kind), Ok(id)) => match inner
                    .data
                    .lock()
                    .expect("not poisoned")
                    .tables
                    .get(&kind)
                    .and_then(|t| t.get(&id))
                {
                    Some(r) => axum::Json(r.clone()).into_response(),
                    None => error(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        &format!("{} {id} not found", kind.path()),
                    ),
                },
                _ => error(StatusCode::NOT_FOUND, "NotFound", "unknown resource"),
            }
        }
        (Method::POST, ["finance", "invoices", id, "payments"]) => match id.parse::<i64>() {
            Ok(id) => {
                let resp = add_payment(&inner, id, &body);
                if resp.status().is_success() {
                    // A payment changes the invoice: ConnectWise reports it like any update.
                    let invoice = inner
                        .data
                        .lock()
                        .expect("not poisoned")
                        .tables
                        .get(&Kind::Invoice)
                        .and_then(|t| t.get(&id))
                        .cloned();
                    if let Some(invoice) = invoice {
                        let inner = inner.clone();
                        tokio::spawn(async move {
                            notify(&inner, Kind::Invoice, "updated", &invoice).await
                        });
                    }
                }
                resp
            }
            Err(_) => error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                "invoice id must be a number",
            ),
        },
        (Method::GET, ["finance", "invoices", id, "payments"]) => {
            let id: i64 = id.parse().unwrap_or_default();
            axum::Json(Value::Array(
                inner
                    .data
                    .lock()
                    .expect("not poisoned")
                    .payments
                    .get(&id)
                    .cloned()
                    .unwrap_or_default(),
            ))
            .into_response()
        }
        (Method::POST, ["system", "callbacks"]) => {
            let v: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidObject", &e.to_string()),
            };
            let (Some(url), Some(kind)) = (v["url"].as_str(), v["type"].as_str()) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidObject",
                    "url and type are required",
                );
            };
            let mut d = inner.data.lock().expect("not poisoned");
            d.callbacks.push(Callback {
                url: url.to_string(),
                kind: kind.to_string(),
            });
            let mut out = v.clone();
            out["id"] = json!(d.callbacks.len());
            (StatusCode::CREATED, axum::Json(out)).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "NotFound", "unknown resource"),
    }
}

pub(super) fn list(inner: &Inner, kind: Kind, q: &BTreeMap<String, String>) -> Response {
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let page_size: usize = q
        .get("pageSize")
        .and_then(|p| p.parse().ok())
        .unwrap_or(25)
        .clamp(1, 1000);
    let cond = match q.get("conditions").map(|c| conditions::parse(c)) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidConditions",
                &format!("conditions: {e}"),
            );
        }
        None => None,
    };
    // Filter and sort references; clone only the page that is returned.
    let data = inner.data.lock().expect("not poisoned");
    let mut rows: Vec<&Value> = data
        .tables
        .get(&kind)
        .map(|t| {
            t.values()
                .filter(|r| cond.as_ref().is_none_or(|c| conditions::eval(c, r)))
                .collect()
        })
        .unwrap_or_default();
    if let Err(e) = conditions::sort(
        &mut rows,
        q.get("orderBy").map(String::as_str).unwrap_or("id asc"),
    ) {
        return error(StatusCode::BAD_REQUEST, "InvalidOrderBy", &e);
    }
    let page_rows: Vec<Value> = rows
        .into_iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .cloned()
        .collect();
    drop(data);
    axum::Json(Value::Array(page_rows)).into_response()
}

pub(super) fn add_payment(inner: &Inner, invoice_id: i64, body: &[u8]) -> Response {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidObject", &e.to_string()),
    };
    let amount = match v
        .get("amount")
        .and_then(|a| a.as_number())
        .and_then(|n| n.to_string().parse::<rust_decimal::Decimal>().ok())
    {
        Some(a) if a > rust_decimal::Decimal::ZERO => a,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidObject",
                "amount must be a positive number",
            );
        }
    };
    let mut d = inner.data.lock().expect("not poisoned");
    let Some(inv) = d
        .tables
        .get_mut(&Kind::Invoice)
        .and_then(|t| t.get_mut(&invoice_id))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("invoice {invoice_id} not found"),
        );
    };
    let dec = |v: &Value| {
        v.as_number()
            .and_then(|n| n.to_string().parse::<rust_decimal::Decimal>().ok())
            .unwrap_or_default()
    };
    let total = dec(&inv["total"]).abs();
    let paid = dec(&inv["payments"]) + amount;
    if paid > total {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidObject",
            "payment exceeds the invoice balance",
        );
    }
    inv["payments"] = crate::num(paid);
    inv["balance"] = crate::num(total - paid);
    inv["_info"] = json!({ "lastUpdated": now_stamp(inner), "updatedBy": "payments" });
    let mut pay = v.clone();
    let pid = d.next_id + 1;
    d.next_id = pid;
    pay["id"] = json!(pid);
    pay["invoice"] = json!({ "id": invoice_id });
    d.payments.entry(invoice_id).or_default().push(pay.clone());
    (StatusCode::CREATED, axum::Json(pay)).into_response()
}
