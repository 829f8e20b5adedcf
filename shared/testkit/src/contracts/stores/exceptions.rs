//! The exceptions store's contract (see `stores`).

use super::*;

fn exception(id: &str, source: &str, owner: Owner, at: DateTime<Utc>) -> ExceptionRecord {
    ExceptionRecord {
        id: id.into(),
        tenant: tenant("contract-a"),
        stage: "transform".into(),
        domain: Domain::TimeEntries,
        source_key: source.into(),
        reason: ReasonCode::RequiredDimension,
        message: "department missing".into(),
        field: Some("dimensions.department".into()),
        rule: None,
        erp_message: None,
        owner,
        status: ExceptionStatus::Open,
        attempts: 1,
        first_seen: at,
        last_seen: at,
        amount: None,
        hours: None,
        doc_key: None,
        blocked_by: None,
        replay_queue: QueueName::Transform,
        replay_body: "{}".into(),
    }
}

/// Exceptions: one per id (re-raising counts attempts), queries by status,
/// owner, domain and age, auto-resolution, dependents.
pub async fn exception_store(s: Arc<dyn ExceptionStore>) {
    let t = tenant("contract-a");
    let now = t0();
    let e1 = s
        .raise(exception("e1", "cw:1", Owner::ProjectOperations, now))
        .await
        .expect("raise");
    assert_eq!(e1.attempts, 1);
    let again = s
        .raise(ExceptionRecord {
            message: "still missing".into(),
            ..exception("e1", "cw:1", Owner::ProjectOperations, now + secs(60))
        })
        .await
        .expect("raise");
    assert_eq!(
        again.attempts, 2,
        "raising the same exception again counts an attempt"
    );
    assert_eq!(again.first_seen, now, "first_seen is kept");
    assert_eq!(again.message, "still missing", "the newest message wins");
    s.raise(exception("e2", "cw:2", Owner::Finance, now + secs(10)))
        .await
        .expect("raise");
    s.raise(ExceptionRecord {
        blocked_by: Some("cw:customer-7".into()),
        ..exception("e3", "cw:3", Owner::Finance, now + secs(20))
    })
    .await
    .expect("raise");
    let finance = s
        .list(&ExceptionQuery {
            tenant: Some(t.clone()),
            owner: Some(Owner::Finance),
            ..ExceptionQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        finance.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["e2", "e3"]
    );
    let old = s
        .list(&ExceptionQuery {
            tenant: Some(t.clone()),
            first_seen_before: Some(now + secs(5)),
            ..ExceptionQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        old.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["e1"],
        "age filter"
    );
    assert!(
        s.set_status(&t, "e2", ExceptionStatus::Replayed, now + secs(30))
            .await
            .expect("set")
    );
    assert!(
        !s.set_status(&t, "nope", ExceptionStatus::Open, now)
            .await
            .expect("set")
    );
    let replayed = s
        .list(&ExceptionQuery {
            tenant: Some(t.clone()),
            statuses: vec![ExceptionStatus::Replayed],
            ..ExceptionQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(replayed.len(), 1);
    assert_eq!(
        s.blocked_by(&t, "cw:customer-7")
            .await
            .expect("blocked")
            .len(),
        1
    );
    assert_eq!(s.open_for_source(&t, "cw:1").await.expect("open").len(), 1);
    assert_eq!(
        s.resolve_source(&t, "cw:1", now + secs(40))
            .await
            .expect("resolve"),
        1
    );
    assert!(
        s.open_for_source(&t, "cw:1")
            .await
            .expect("open")
            .is_empty(),
        "resolved is not open"
    );
    assert_eq!(
        s.get(&t, "e1").await.expect("get").map(|e| e.status),
        Some(ExceptionStatus::Resolved)
    );
    assert_eq!(
        s.resolve_source(&t, "cw:1", now + secs(41))
            .await
            .expect("resolve"),
        0
    );
    let by_domain = s
        .list(&ExceptionQuery {
            tenant: Some(t.clone()),
            domain: Some(Domain::Invoices),
            ..ExceptionQuery::default()
        })
        .await
        .expect("list");
    assert!(by_domain.is_empty(), "domain filter");
    assert!(
        s.get(&tenant("contract-b"), "e1")
            .await
            .expect("get")
            .is_none(),
        "tenants are isolated"
    );
}
