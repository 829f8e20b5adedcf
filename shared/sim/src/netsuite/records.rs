//! The Record API's single-record reads and deletions.

use super::*;

/// A record by internal id or `eid:<external id>`.
pub(super) fn find(inner: &Inner, ty: &str, id: &str) -> Option<Value> {
    let d = inner.data.lock().expect("not poisoned");
    let table = match *ty {
        _ if ty == "customer" => &d.customers,
        _ => &d.transactions,
    };
    let hit = |r: &&Value| ty == "customer" || r["recordType"] == ty;
    match id.strip_prefix("eid:") {
        Some(ext) => table
            .values()
            .filter(hit)
            .find(|r| r["externalId"] == ext)
            .cloned(),
        None => id
            .parse::<u64>()
            .ok()
            .and_then(|n| table.get(&n))
            .filter(hit)
            .cloned(),
    }
}

pub(super) fn delete(inner: &Inner, ty: &str, id: &str) -> Routed {
    let Some(found) = find(inner, ty, id) else {
        return not_found(id);
    };
    let n: u64 = found["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    let mut d = inner.data.lock().expect("not poisoned");
    if d.links.iter().any(|(_, inv, _)| *inv == n) {
        return (
            StatusCode::BAD_REQUEST,
            problem(
                StatusCode::BAD_REQUEST,
                "USER_ERROR",
                "This record cannot be deleted because it has dependent records (payments).",
            ),
            None,
        );
    }
    if ty == "customer" {
        d.customers.remove(&n);
    } else {
        d.transactions.remove(&n);
    }
    (StatusCode::NO_CONTENT, Value::Null, None)
}
