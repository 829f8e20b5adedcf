//! Asynchronous batch upserts, checked record by record as NetSuite
//! checks them, and the jobs and tasks that report them.

use super::*;

/// `PUT /record/v1/{type}` as an asynchronous batch upsert.
pub(super) fn submit(
    inner: &Inner,
    ty: &str,
    headers: &HeaderMap,
    body: Option<&Value>,
    origin: &str,
) -> Routed {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let bad = |detail: &str| {
        (
            StatusCode::BAD_REQUEST,
            problem(StatusCode::BAD_REQUEST, "INVALID_REQUEST", detail),
            None,
        )
    };
    if !matches!(ty, "customer" | "invoice" | "creditMemo") {
        return bad(&format!("record type {ty} is not supported here"));
    }
    if header("prefer") != "respond-async"
        || header("content-type") != "application/vnd.oracle.resource+json; type=collection"
    {
        return bad("a batch needs Prefer: respond-async and the collection content type");
    }
    let Some(items) = body.and_then(|b| b["items"].as_array()) else {
        return bad("the body must be {\"items\": [...]}");
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return bad(&format!("a batch holds 1 to {MAX_BATCH} records"));
    }
    let key = header("x-netsuite-idempotency-key").to_string();
    let job_url = |id: u64| format!("{origin}/services/rest/async/v1/job/{id}");
    let stamp = now(inner);
    let hangs = inner.faults.lock().expect("not poisoned").jobs_hang;
    let mut d = inner.data.lock().expect("not poisoned");
    if !key.is_empty()
        && let Some(first) = d.keys.get(&key)
    {
        return (
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "IDEMPOTENCY_ERROR",
                "A request with this idempotency key has already been received.",
            ),
            Some(job_url(*first)),
        );
    }
    let tasks: Vec<Result<String, Value>> = items
        .iter()
        .map(|item| upsert(&inner.cfg, &mut d, ty, item, &stamp))
        .collect();
    d.next_id += 1;
    let id = d.next_id;
    d.jobs.insert(
        id,
        Job {
            tasks,
            polls_left: inner.cfg.job_polls,
            hangs,
        },
    );
    if !key.is_empty() {
        d.keys.insert(key, id);
    }
    (StatusCode::ACCEPTED, Value::Null, Some(job_url(id)))
}

pub(super) fn user_error(detail: String) -> Value {
    problem(StatusCode::BAD_REQUEST, "USER_ERROR", &detail)
}

/// One record of a batch, created or updated by its external id.
pub(super) fn upsert(
    cfg: &NetSuiteSimConfig,
    d: &mut Data,
    ty: &str,
    item: &Value,
    stamp: &str,
) -> Result<String, Value> {
    let Some(ext) = item["externalId"].as_str().filter(|e| !e.is_empty()) else {
        return Err(user_error("externalId is required for an upsert".into()));
    };
    if item["subsidiary"]["id"] != cfg.subsidiary.as_str() {
        return Err(user_error(format!(
            "Invalid subsidiary reference key {}.",
            item["subsidiary"]
        )));
    }
    if let Some(cur) = item.get("currency")
        && !cfg.currencies.values().any(|v| cur["id"] == v.as_str())
    {
        return Err(user_error(format!("Invalid currency reference key {cur}.")));
    }
    let existing = if ty == "customer" {
        d.customers
            .iter()
            .find(|(_, r)| r["externalId"] == ext)
            .map(|(k, _)| *k)
    } else {
        d.transactions
            .iter()
            .find(|(_, r)| r["externalId"] == ext && r["recordType"] == ty)
            .map(|(k, _)| *k)
    };
    let id = match existing {
        Some(id) => id,
        None => {
            d.next_id += 1;
            d.next_id
        }
    };
    let record = if ty == "customer" {
        let name = item["companyName"].as_str().unwrap_or_default();
        if name.trim().is_empty() {
            return Err(user_error("Please enter a value for Company Name.".into()));
        }
        if d.customers
            .iter()
            .any(|(k, c)| *k != id && c["companyName"] == name)
        {
            return Err(user_error(format!(
                "A customer record with this ID already exists: {name}."
            )));
        }
        if let Some(t) = item["taxItem"]["externalId"].as_str()
            && !cfg.tax_codes.contains_key(t)
        {
            return Err(user_error(format!("Invalid taxitem reference key {t}.")));
        }
        let mut r = item.clone();
        r["id"] = json!(id.to_string());
        r["entityId"] = json!(format!("CUST{id}"));
        r["lastModifiedDate"] = json!(stamp);
        d.customers.insert(id, r.clone());
        r
    } else {
        transaction(cfg, d, ty, id, item, existing.is_some(), stamp)?
    };
    let _ = record;
    Ok(format!("/services/rest/record/v1/{ty}/{id}"))
}

/// An invoice or credit memo, checked as NetSuite checks one.
pub(super) fn transaction(
    cfg: &NetSuiteSimConfig,
    d: &mut Data,
    ty: &str,
    id: u64,
    item: &Value,
    update: bool,
    stamp: &str,
) -> Result<Value, Value> {
    let entity = item["entity"]["id"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok());
    if !entity.is_some_and(|e| d.customers.contains_key(&e)) {
        return Err(user_error(format!(
            "Invalid entity reference key {}.",
            item["entity"]
        )));
    }
    let Some(date) = item["tranDate"]
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    else {
        return Err(user_error("Please enter a value for Date.".into()));
    };
    if cfg.closed_through.is_some_and(|c| date <= c) {
        return Err(user_error(format!(
            "The accounting period for {date} is closed; you cannot post to it."
        )));
    }
    if update && d.links.iter().any(|(_, inv, _)| *inv == id) {
        return Err(user_error(
            "This transaction has payments applied; it cannot be changed.".into(),
        ));
    }
    let lines = item["item"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if lines.is_empty() {
        return Err(user_error(
            "You must enter at least one line item for this transaction.".into(),
        ));
    }
    let mut subtotal = Decimal::ZERO;
    let mut tax = Decimal::ZERO;
    let mut stored = Vec::new();
    for (n, l) in lines.iter().enumerate() {
        let code = l["item"]["externalId"].as_str().unwrap_or_default();
        if !cfg.items.contains(code) {
            return Err(user_error(format!(
                "Invalid item reference key {code} on line {}.",
                n + 1
            )));
        }
        for (field, allowed) in &cfg.segments {
            if let Some(v) = l.get(field.as_str()).and_then(|v| v["externalId"].as_str())
                && !allowed.contains(v)
            {
                return Err(user_error(format!("Invalid {field} reference key {v}.")));
            }
        }
        let amount = dec(&l["amount"]);
        let rate = match l["taxCode"]["externalId"].as_str() {
            None => Decimal::ZERO,
            Some(t) => *cfg
                .tax_codes
                .get(t)
                .ok_or_else(|| user_error(format!("Invalid taxcode reference key {t}.")))?,
        };
        // Legacy tax: each line's tax is rounded on its own.
        let line_tax = (amount * rate / Decimal::from(100))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        subtotal += amount;
        tax += line_tax;
        stored.push(
            json!({ "line": n + 1, "item": code, "quantity": l["quantity"], "rate": l["rate"],
                            "amount": num(amount), "description": l["description"] }),
        );
    }
    let total = subtotal + tax;
    let mut r = item.clone();
    r["id"] = json!(id.to_string());
    r["recordType"] = json!(ty);
    r["tranId"] = json!(format!(
        "{}{id}",
        if ty == "invoice" { "INV" } else { "CM" }
    ));
    r["item"] = json!({ "items": stored });
    r["subtotal"] = num(subtotal);
    r["taxTotal"] = num(tax);
    r["total"] = num(total);
    r["amountPaid"] = num(Decimal::ZERO);
    r["amountRemaining"] = num(total);
    r["status"] = json!("A");
    if ty == "invoice" && r.get("approvalStatus").is_none() {
        r["approvalStatus"] = json!({ "id": "2" });
    }
    r["lastModifiedDate"] = json!(stamp);
    d.transactions.insert(id, r.clone());
    Ok(r)
}

pub(super) fn job_of(inner: &Inner, id: &str) -> Option<(u64, Job)> {
    let n = id.parse::<u64>().ok()?;
    let d = inner.data.lock().expect("not poisoned");
    d.jobs.get(&n).cloned().map(|j| (n, j))
}

pub(super) fn job(inner: &Inner, id: &str) -> Routed {
    let Some((n, j)) = job_of(inner, id) else {
        return not_found(id);
    };
    let completed = !j.hangs && j.polls_left == 0;
    if j.polls_left > 0 {
        let mut d = inner.data.lock().expect("not poisoned");
        if let Some(job) = d.jobs.get_mut(&n) {
            job.polls_left -= 1;
        }
    }
    let failed = j.tasks.iter().any(Result::is_err);
    let progress = match (completed, failed) {
        (false, _) => "pending",
        (true, false) => "succeeded",
        (true, true) => "failed",
    };
    (
        StatusCode::OK,
        json!({ "id": n.to_string(), "completed": completed, "progress": progress }),
        None,
    )
}

pub(super) fn tasks(inner: &Inner, id: &str) -> Routed {
    let Some((_, j)) = job_of(inner, id) else {
        return not_found(id);
    };
    let items: Vec<Value> = j
        .tasks
        .iter()
        .enumerate()
        .map(|(k, t)| {
            json!({ "id": (k + 1).to_string(),
                    "progress": if t.is_ok() { "succeeded" } else { "failed" } })
        })
        .collect();
    (
        StatusCode::OK,
        json!({ "count": items.len(), "items": items }),
        None,
    )
}

pub(super) fn task_result(inner: &Inner, id: &str, n: &str) -> Routed {
    let Some((_, j)) = job_of(inner, id) else {
        return not_found(id);
    };
    match n
        .parse::<usize>()
        .ok()
        .and_then(|k| k.checked_sub(1))
        .and_then(|k| j.tasks.get(k))
    {
        Some(Ok(location)) => (
            StatusCode::OK,
            json!({ "status": 204, "location": location }),
            None,
        ),
        Some(Err(e)) => (StatusCode::OK, e.clone(), None),
        None => not_found(n),
    }
}
