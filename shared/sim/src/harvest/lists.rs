//! Lists as Harvest shapes them: filters, newest first, `page`/`per_page`
//! with `links`, and invoice payments.

use super::*;

/// The date a list filters and sorts by (`from`/`to`), where it has one.
pub(super) fn dated_by(name: &str) -> Option<&'static str> {
    match name {
        "time_entries" | "expenses" => Some("spent_date"),
        "invoices" => Some("issue_date"),
        _ => None,
    }
}

pub(super) fn list(
    inner: &Inner,
    name: &'static str,
    path: &str,
    q: &BTreeMap<String, String>,
    keep: impl Fn(&Value) -> bool,
) -> (StatusCode, Value) {
    let since = match q.get("updated_since") {
        None => None,
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({ "code": 422, "message": format!("updated_since {s:?} is not an ISO 8601 time") }),
                );
            }
        },
    };
    let day = |k: &str| q.get(k).map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d"));
    let (from, to) = match (day("from").transpose(), day("to").transpose()) {
        (Ok(f), Ok(t)) => (f, t),
        _ => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "code": 422, "message": "from and to must be dates (YYYY-MM-DD)" }),
            );
        }
    };
    let date_field = dated_by(name);
    let mut items: Vec<Value> = {
        let d = inner.data.lock().expect("not poisoned");
        d.tables
            .get(name)
            .map(|t| t.values().filter(|r| keep(r)).cloned().collect())
            .unwrap_or_default()
    };
    items.retain(|r| {
        let updated = r
            .get("updated_at")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        let date = date_field
            .and_then(|f| r.get(f))
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
        since.is_none_or(|s| updated.is_some_and(|u| u >= s))
            && from.is_none_or(|f| date.is_some_and(|d| d >= f))
            && to.is_none_or(|t| date.is_some_and(|d| d <= t))
    });
    // Newest first: by date where the list has one, else by creation; then id.
    let sort_key = |r: &Value| {
        let at = date_field
            .or(Some("created_at"))
            .and_then(|f| r.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        (at, r.get("id").and_then(Value::as_i64).unwrap_or_default())
    };
    items.sort_by_key(|r| std::cmp::Reverse(sort_key(r)));
    let (status, page) = page_of(inner, name, path, items, q);
    if status == StatusCode::OK && page["page"] == json!(1) && page["links"]["next"].is_string() {
        let grow = {
            let mut f = inner.faults.lock().expect("not poisoned");
            let g = f.grow_after_first_page > 0;
            if g {
                f.grow_after_first_page -= 1;
            }
            g
        };
        if grow && let Some(last) = page[name].as_array().and_then(|a| a.first()).cloned() {
            // A copy of the newest record under a new id: it sorts first, shifting every page.
            let mut copy = last;
            copy.as_object_mut().map(|o| o.remove("id"));
            let stamp = now(inner);
            let mut d = inner.data.lock().expect("not poisoned");
            put(&mut d, name, copy, &stamp);
        }
    }
    (status, page)
}

/// One page of `items` as Harvest shapes a list answer.
pub(super) fn page_of(
    inner: &Inner,
    key: &str,
    path: &str,
    items: Vec<Value>,
    q: &BTreeMap<String, String>,
) -> (StatusCode, Value) {
    let per_page = match q.get("per_page").map(|s| s.parse::<usize>()) {
        None => MAX_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "code": 422, "message": format!("per_page must be between 1 and {MAX_PAGE}") }),
            );
        }
    };
    let page = match q.get("page").map(|s| s.parse::<usize>()) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "code": 422, "message": "page must be a positive number" }),
            );
        }
    };
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let foreign = inner.faults.lock().expect("not poisoned").foreign_next_link;
    let origin = if foreign {
        "http://203.0.113.9".to_string()
    } else {
        inner.origin.lock().expect("not poisoned").clone()
    };
    let link = |p: usize| {
        let mut u = url::Url::parse(&format!("{origin}{API_ROOT}/{path}")).expect("valid URL");
        u.query_pairs_mut()
            .append_pair("page", &p.to_string())
            .append_pair("per_page", &per_page.to_string());
        for (k, v) in q
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "page" | "per_page"))
        {
            u.query_pairs_mut().append_pair(k, v);
        }
        u.to_string()
    };
    let next = (page < total_pages).then(|| page + 1);
    let previous = (page > 1).then(|| page - 1);
    let mut answer = json!({
        "per_page": per_page,
        "total_pages": total_pages,
        "total_entries": total,
        "next_page": next,
        "previous_page": previous,
        "page": page,
        "links": {
            "first": link(1),
            "next": next.map(link),
            "previous": previous.map(link),
            "last": link(total_pages),
        },
    });
    answer[key] = Value::Array(slice);
    (StatusCode::OK, answer)
}

/// `POST /invoices/{id}/payments`: records a payment and moves the invoice's
/// due amount and state.
pub(super) fn pay(inner: &Inner, id: i64, body: Option<&Value>) -> (StatusCode, Value) {
    let amount = body
        .and_then(|b| b.get("amount"))
        .and_then(|a| a.as_number())
        .and_then(|n| n.to_string().parse::<Decimal>().ok());
    let Some(amount) = amount.filter(|a| *a > Decimal::ZERO) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "code": 422, "message": "Amount must be greater than 0" }),
        );
    };
    let stamp = now(inner);
    let today = now_at(inner).date_naive().to_string();
    let mut d = inner.data.lock().expect("not poisoned");
    let Some(mut invoice) = d.tables.get("invoices").and_then(|t| t.get(&id)).cloned() else {
        return not_found();
    };
    let due = invoice
        .get("due_amount")
        .and_then(Value::as_number)
        .and_then(|n| n.to_string().parse::<Decimal>().ok())
        .unwrap_or_default();
    if amount > due {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "code": 422, "message": format!("Amount is more than the {due} due") }),
        );
    }
    d.next_id += 1;
    let payment = json!({
        "id": d.next_id,
        "amount": num(amount),
        "paid_at": stamp,
        "paid_date": body.and_then(|b| b.get("paid_date")).cloned().unwrap_or(json!(today)),
        "recorded_by": "Ferry",
        "recorded_by_email": null,
        "notes": body.and_then(|b| b.get("notes")).cloned().unwrap_or(Value::Null),
        "transaction_id": null,
        "payment_gateway": null,
        "created_at": stamp,
        "updated_at": stamp,
    });
    d.payments.entry(id).or_default().push(payment.clone());
    let left = due - amount;
    invoice["due_amount"] = num(left);
    if left.is_zero() {
        invoice["state"] = json!("paid");
        invoice["paid_at"] = json!(stamp);
        invoice["paid_date"] = payment["paid_date"].clone();
    }
    put(&mut d, "invoices", invoice, &stamp);
    (StatusCode::CREATED, payment)
}
