//! Contracts for the stores. Stores take `now` as an argument, so these suites
//! use fixed instants and need no clock.

use ferry_core::ReasonCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ferry_canon::{Domain, SourceVersion};
use ferry_core::ports::*;

use super::tenant;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid")
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// One millisecond: every expiry is checked one millisecond before it and at it.
fn ms(n: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(n)
}

/// Cursors: absent until set, advance only forward, compound (timestamp, id) order,
/// independent per tenant and stream.
pub async fn cursor_store(s: Arc<dyn CursorStore>) {
    let a = tenant("contract-a");
    let b = tenant("contract-b");
    assert_eq!(
        s.get(&a, "cw/time_entries").await.expect("get"),
        None,
        "no cursor at first"
    );
    let c1 = Cursor::new(t0(), "9");
    assert_eq!(
        s.advance(&a, "cw/time_entries", &c1)
            .await
            .expect("advance"),
        Advance::Advanced
    );
    assert_eq!(
        s.get(&a, "cw/time_entries").await.expect("get"),
        Some(c1.clone())
    );
    assert_eq!(
        s.advance(&a, "cw/time_entries", &c1)
            .await
            .expect("advance"),
        Advance::Rejected {
            current: c1.clone()
        },
        "the same cursor is not an advance"
    );
    let older = Cursor::new(t0() - secs(1), "50");
    assert!(
        matches!(
            s.advance(&a, "cw/time_entries", &older)
                .await
                .expect("advance"),
            Advance::Rejected { .. }
        ),
        "a cursor never moves backwards"
    );
    assert_eq!(
        s.get(&a, "cw/time_entries").await.expect("get"),
        Some(c1.clone())
    );
    let same_time_higher_id = Cursor::new(t0(), "10");
    assert_eq!(
        s.advance(&a, "cw/time_entries", &same_time_higher_id)
            .await
            .expect("advance"),
        Advance::Advanced,
        "at the same timestamp a higher id (numerically) advances"
    );
    assert_eq!(
        s.get(&b, "cw/time_entries").await.expect("get"),
        None,
        "tenants are isolated"
    );
    assert_eq!(
        s.get(&a, "cw/expenses").await.expect("get"),
        None,
        "streams are isolated"
    );
}

fn begin<'a>(
    t: &'a ferry_canon::TenantId,
    key: &'a str,
    hash: &'a str,
    now: DateTime<Utc>,
) -> BeginRequest<'a> {
    BeginRequest {
        tenant: t,
        key,
        payload_hash: hash,
        now,
        in_progress_until: now + secs(30),
        expires_at: now + secs(3600),
    }
}

/// Idempotency: the Powertools protocol.
pub async fn idempotency_store(s: Arc<dyn IdempotencyStore>) {
    let t = tenant("contract-a");
    let now = t0();
    assert_eq!(
        s.begin(begin(&t, "k1", "h1", now)).await.expect("begin"),
        Begin::Started { prior_attempts: 0 }
    );
    assert!(
        matches!(
            s.begin(begin(&t, "k1", "h1", now + secs(1)))
                .await
                .expect("begin"),
            Begin::InProgress { .. }
        ),
        "a second attempt while the first is in progress is refused"
    );
    assert!(
        matches!(
            s.begin(begin(&t, "k1", "other", now + secs(1)))
                .await
                .expect("begin"),
            Begin::PayloadMismatch { .. }
        ),
        "the same key with a different payload is rejected"
    );
    s.complete(&t, "k1", "{\"erp_id\":\"X1\"}", now + secs(3600))
        .await
        .expect("complete");
    assert_eq!(
        s.begin(begin(&t, "k1", "h1", now + secs(2)))
            .await
            .expect("begin"),
        Begin::Completed {
            response: Some("{\"erp_id\":\"X1\"}".into())
        },
        "a completed key returns the stored response"
    );
    let rec = s.get(&t, "k1").await.expect("get").expect("record");
    assert_eq!(rec.status, IdemStatus::Completed);

    // An in-progress record past its in-progress expiry can be taken over, and says so.
    assert!(matches!(
        s.begin(begin(&t, "k2", "h", now)).await.expect("begin"),
        Begin::Started { .. }
    ));
    assert!(
        matches!(
            s.begin(begin(&t, "k2", "h", now + secs(30) - ms(1)))
                .await
                .expect("begin"),
            Begin::InProgress { .. }
        ),
        "in progress until just before its in-progress expiry"
    );
    assert_eq!(
        s.begin(begin(&t, "k2", "h", now + secs(30)))
            .await
            .expect("begin"),
        Begin::Started { prior_attempts: 1 },
        "at its in-progress expiry an attempt is taken over and counted"
    );
    // Abandon: outcome unknown, next attempt may start at once and knows it is not the first.
    s.abandon(&t, "k2", now + secs(32)).await.expect("abandon");
    assert_eq!(
        s.begin(begin(&t, "k2", "h", now + secs(32)))
            .await
            .expect("begin"),
        Begin::Started { prior_attempts: 2 }
    );
    // Release: the side effect did not happen; start afresh.
    s.release(&t, "k2").await.expect("release");
    assert_eq!(s.get(&t, "k2").await.expect("get"), None);
    assert_eq!(
        s.begin(begin(&t, "k2", "h", now + secs(33)))
            .await
            .expect("begin"),
        Begin::Started { prior_attempts: 0 }
    );
    // TTL: an expired completed record is as good as absent.
    assert!(
        matches!(
            s.begin(begin(&t, "k1", "h1", now + secs(3600) - ms(1)))
                .await
                .expect("begin"),
            Begin::Completed { .. }
        ),
        "completed until just before its TTL ends"
    );
    assert_eq!(
        s.begin(begin(&t, "k1", "h1", now + secs(3600)))
            .await
            .expect("begin"),
        Begin::Started { prior_attempts: 0 },
        "at the end of its TTL a key can be used again"
    );
    // Release never deletes a completed record.
    s.complete(&t, "k3-done", "r", now)
        .await
        .expect_err("completing an absent key is an error");
    assert!(matches!(
        s.begin(begin(&t, "k3", "h", now)).await.expect("begin"),
        Begin::Started { .. }
    ));
    s.complete(&t, "k3", "r", now + secs(3600))
        .await
        .expect("complete");
    s.release(&t, "k3").await.expect("release");
    assert!(
        matches!(
            s.begin(begin(&t, "k3", "h", now)).await.expect("begin"),
            Begin::Completed { .. }
        ),
        "release leaves completed records alone"
    );
    let other = tenant("contract-b");
    assert!(
        matches!(
            s.begin(begin(&other, "k3", "h", now)).await.expect("begin"),
            Begin::Started { .. }
        ),
        "keys are per tenant"
    );
}

fn claim<'a>(
    t: &'a ferry_canon::TenantId,
    key: &'a str,
    version: i64,
    hash: &'a str,
    now: DateTime<Utc>,
) -> ClaimRequest<'a> {
    ClaimRequest {
        tenant: t,
        doc_key: key,
        version,
        content_hash: hash,
        now,
        lease_until: now + secs(60),
    }
}

/// Id map: leases, version monotonicity, reverse lookup.
pub async fn id_map(s: Arc<dyn IdMap>) {
    let t = tenant("contract-a");
    let now = t0();
    let key = "invoices/cw:1";
    assert_eq!(
        s.claim(claim(&t, key, 5, "h5", now)).await.expect("claim"),
        Claim::Granted { entry: None }
    );
    assert!(
        matches!(
            s.claim(claim(&t, key, 6, "h6", now + secs(1)))
                .await
                .expect("claim"),
            Claim::Busy { .. }
        ),
        "a held document cannot be claimed"
    );
    s.commit(CommitRequest {
        tenant: &t,
        doc_key: key,
        erp_id: Some("INV-GUID-1"),
        erp_number: Some("INV-0001"),
        version: 5,
        content_hash: "h5",
        now: now + secs(2),
    })
    .await
    .expect("commit");
    let e = s.get(&t, key).await.expect("get").expect("entry");
    assert_eq!(
        (e.erp_id.as_deref(), e.version, e.lease_until),
        (Some("INV-GUID-1"), 5, None)
    );
    assert!(
        matches!(
            s.claim(claim(&t, key, 4, "h4", now + secs(3)))
                .await
                .expect("claim"),
            Claim::Stale {
                current_version: 5,
                ..
            }
        ),
        "an older version never overwrites a newer one"
    );
    assert!(
        matches!(
            s.claim(claim(&t, key, 5, "h5", now + secs(3)))
                .await
                .expect("claim"),
            Claim::Stale { .. }
        ),
        "the same version and content is already written"
    );
    match s
        .claim(claim(&t, key, 5, "h5-fixed-template", now + secs(3)))
        .await
        .expect("claim")
    {
        Claim::Granted { entry: Some(e) } => assert_eq!(e.erp_id.as_deref(), Some("INV-GUID-1")),
        other => {
            panic!("same version with new content must be claimable with the ERP id, got {other:?}")
        }
    }
    s.release(&t, key).await.expect("release");
    assert!(matches!(
        s.claim(claim(&t, key, 6, "h6", now + secs(4)))
            .await
            .expect("claim"),
        Claim::Granted { .. }
    ));
    // An expired lease can be taken over (the claim at +4 s holds until +64 s).
    assert!(
        matches!(
            s.claim(claim(&t, key, 7, "h7", now + secs(64) - ms(1)))
                .await
                .expect("claim"),
            Claim::Busy { .. }
        ),
        "a lease holds until just before it expires"
    );
    assert!(
        matches!(
            s.claim(claim(&t, key, 7, "h7", now + secs(64)))
                .await
                .expect("claim"),
            Claim::Granted { .. }
        ),
        "an expired lease does not block forever"
    );
    assert_eq!(
        s.find_by_erp_id(&t, "INV-GUID-1")
            .await
            .expect("find")
            .map(|e| e.doc_key),
        Some(key.to_string())
    );
    // A write that removed the document from the ERP leaves no ERP id: the
    // next write of it looks for a live one and otherwise creates it anew.
    let removed = "summaries/cw:emptied";
    s.claim(claim(&t, removed, 1, "r1", now))
        .await
        .expect("claim");
    s.commit(CommitRequest {
        tenant: &t,
        doc_key: removed,
        erp_id: Some("INV-GONE"),
        erp_number: Some("INV-0009"),
        version: 1,
        content_hash: "r1",
        now,
    })
    .await
    .expect("commit");
    s.claim(claim(&t, removed, 2, "r2-deleted", now + secs(1)))
        .await
        .expect("claim");
    s.commit(CommitRequest {
        tenant: &t,
        doc_key: removed,
        erp_id: None,
        erp_number: None,
        version: 2,
        content_hash: "r2-deleted",
        now: now + secs(1),
    })
    .await
    .expect("commit");
    let e = s.get(&t, removed).await.expect("get").expect("entry");
    assert_eq!((e.erp_id, e.version), (None, 2), "removed: no ERP id");
    assert_eq!(
        s.find_by_erp_id(&t, "INV-GONE").await.expect("find"),
        None,
        "and the removed document's id no longer leads to it"
    );
    match s
        .claim(claim(&t, removed, 3, "r3", now + secs(2)))
        .await
        .expect("claim")
    {
        Claim::Granted { entry: Some(e) } => assert_eq!(e.erp_id, None),
        other => panic!("a removed document is claimable to be created anew, got {other:?}"),
    }
    s.release(&t, removed).await.expect("release");

    s.claim(claim(&t, "customers/cw:9", 1, "c", now))
        .await
        .expect("claim");
    s.commit(CommitRequest {
        tenant: &t,
        doc_key: "customers/cw:9",
        erp_id: Some("CONTACT-9"),
        erp_number: None,
        version: 1,
        content_hash: "c",
        now,
    })
    .await
    .expect("commit");

    // A document claimed and never recorded: the next claim says so, so the
    // caller looks it up before creating it, whatever version it writes.
    let attempted = "summaries/cw:attempted";
    s.claim(claim(&t, attempted, 1, "a1", now))
        .await
        .expect("claim");
    s.release(&t, attempted).await.expect("release");
    match s
        .claim(claim(&t, attempted, 2, "a2", now + secs(1)))
        .await
        .expect("claim")
    {
        Claim::Granted { entry: Some(e) } => assert_eq!(
            (e.erp_id, e.doc_key.as_str()),
            (None, attempted),
            "an earlier claim without a write is reported"
        ),
        other => panic!("a claimed-before document must report its entry, got {other:?}"),
    }
    // After an unknown outcome the document stays held until `until`, exactly.
    let until = now + secs(120);
    s.hold(&t, attempted, until).await.expect("hold");
    assert_eq!(
        s.get(&t, attempted)
            .await
            .expect("get")
            .and_then(|e| e.lease_until),
        Some(until)
    );
    assert!(
        matches!(
            s.claim(claim(&t, attempted, 3, "a3", until - ms(1)))
                .await
                .expect("claim"),
            Claim::Busy { until: u } if u == until
        ),
        "a held document cannot be claimed before the hold ends"
    );
    assert!(
        matches!(
            s.claim(claim(&t, attempted, 3, "a3", until))
                .await
                .expect("claim"),
            Claim::Granted { entry: Some(_) }
        ),
        "the hold ends at `until`"
    );
    s.hold(&t, "summaries/cw:never-claimed", until)
        .await
        .expect("hold of a missing entry");
    assert_eq!(
        s.get(&t, "summaries/cw:never-claimed").await.expect("get"),
        None,
        "holding a document nobody claimed creates nothing"
    );

    let invoices = s.list(&t, "invoices/").await.expect("list");
    assert_eq!(
        invoices
            .iter()
            .map(|e| e.doc_key.as_str())
            .collect::<Vec<_>>(),
        vec![key]
    );
    assert_eq!(
        s.get(&tenant("contract-b"), key).await.expect("get"),
        None,
        "tenants are isolated"
    );
}

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

fn audit_entry(doc: &str, at: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        tenant: tenant("contract-a"),
        at,
        doc_key: doc.into(),
        erp_system: "xero".into(),
        erp_id: Some("X".into()),
        action: "create".into(),
        version: 1,
        source_keys: vec!["cw:1".into()],
        source_hash: "s".into(),
        template_version: "t@1".into(),
        idempotency_key: "k".into(),
        request: "{}".into(),
        response: "{}".into(),
        correlation_id: "c".into(),
    }
}

/// Audit: append-only, ordered, per document and per tenant.
pub async fn audit_log(s: Arc<dyn AuditLog>) {
    let t = tenant("contract-a");
    let n1 = s
        .append(&audit_entry("invoices/cw:1", t0()))
        .await
        .expect("append");
    let n2 = s
        .append(&audit_entry("invoices/cw:2", t0() + secs(1)))
        .await
        .expect("append");
    let n3 = s
        .append(&AuditEntry {
            action: "update".into(),
            ..audit_entry("invoices/cw:1", t0() + secs(2))
        })
        .await
        .expect("append");
    assert!(n1 < n2 && n2 < n3, "sequence numbers increase");
    let doc = s.list(&t, Some("invoices/cw:1"), 10).await.expect("list");
    assert_eq!(
        doc.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["create", "update"]
    );
    let latest = s.list(&t, None, 2).await.expect("list");
    assert_eq!(
        latest
            .iter()
            .map(|e| e.doc_key.as_str())
            .collect::<Vec<_>>(),
        vec!["invoices/cw:2", "invoices/cw:1"],
        "the latest entries, oldest first"
    );
    assert!(
        s.list(&tenant("contract-b"), None, 10)
            .await
            .expect("list")
            .is_empty()
    );
}

/// Rate budget: sliding minute and day windows, pauses, usage.
pub async fn rate_budget(s: Arc<dyn RateBudget>) {
    let limits = RateLimits {
        per_minute: 3,
        per_day: 5,
        concurrent: 1,
    };
    let acct = "xero:contract";
    let now = t0();
    for i in 0..3 {
        assert_eq!(
            s.acquire(acct, &limits, now + secs(i))
                .await
                .expect("acquire"),
            Acquire::Granted,
            "call {i} fits the minute window"
        );
    }
    match s
        .acquire(acct, &limits, now + secs(10))
        .await
        .expect("acquire")
    {
        Acquire::Wait(d) => assert!(
            d <= Duration::from_secs(50) && d >= Duration::from_secs(49),
            "waits until the oldest call leaves the window, got {d:?}"
        ),
        Acquire::Granted => panic!("a fourth call within a minute must wait"),
    }
    assert_eq!(
        s.acquire(acct, &limits, now + secs(60) - ms(1))
            .await
            .expect("acquire"),
        Acquire::Wait(Duration::from_millis(1)),
        "the oldest call is in the window until a minute has passed"
    );
    assert_eq!(
        s.acquire(acct, &limits, now + secs(60))
            .await
            .expect("acquire"),
        Acquire::Granted,
        "a minute after it, the oldest call has left the window"
    );
    assert_eq!(
        s.acquire(acct, &limits, now + secs(122))
            .await
            .expect("acquire"),
        Acquire::Granted
    );
    assert!(
        matches!(
            s.acquire(acct, &limits, now + secs(200))
                .await
                .expect("acquire"),
            Acquire::Wait(_)
        ),
        "the daily limit holds even when the minute window has room"
    );
    let usage = s.usage(acct, now + secs(200)).await.expect("usage");
    assert_eq!(
        usage,
        Usage {
            last_minute: 0,
            last_day: 5
        }
    );
    let other = "xero:other";
    s.pause_until(other, now + secs(30)).await.expect("pause");
    match s
        .acquire(other, &limits, now + secs(10))
        .await
        .expect("acquire")
    {
        Acquire::Wait(d) => assert_eq!(d, Duration::from_secs(20), "a pause holds every call"),
        Acquire::Granted => panic!("a paused account must wait"),
    }
    assert_eq!(
        s.acquire(other, &limits, now + secs(30) - ms(1))
            .await
            .expect("acquire"),
        Acquire::Wait(Duration::from_millis(1)),
        "paused until the instant the pause ends"
    );
    assert_eq!(
        s.acquire(other, &limits, now + secs(30))
            .await
            .expect("acquire"),
        Acquire::Granted
    );
}

fn version(s: i64) -> SourceVersion {
    SourceVersion::at(t0() + secs(s))
}

fn obs<'a>(
    t: &'a ferry_canon::TenantId,
    key: &'a str,
    v: &'a SourceVersion,
    hash: &'a str,
    at: DateTime<Utc>,
) -> Observation<'a> {
    Observation {
        tenant: t,
        source_key: key,
        domain: Domain::TimeEntries,
        version: v,
        content_hash: hash,
        received_at: at,
        canonical: Some("{}"),
    }
}

/// Ledger: version monotonicity, duplicates, dispositions, document settlement.
pub async fn record_ledger(s: Arc<dyn RecordLedger>) {
    let t = tenant("contract-a");
    let v1 = version(1);
    let v2 = version(2);
    assert_eq!(
        s.observe(obs(&t, "cw:1", &v1, "h1", t0()))
            .await
            .expect("observe"),
        Observe::New {
            previous: None,
            last_doc: None
        }
    );
    assert!(
        s.settle(
            &t,
            "cw:1",
            &v1,
            &Disposition::Queued {
                doc_key: "summary/x".into(),
                revision: 3
            }
        )
        .await
        .expect("settle")
    );
    assert!(
        matches!(
            s.observe(obs(&t, "cw:1", &v1, "h1", t0()))
                .await
                .expect("observe"),
            Observe::New { .. }
        ),
        "an unfinished version may be processed again"
    );
    assert_eq!(
        s.settle_doc(
            &t,
            "summary/x",
            2,
            &Disposition::Posted {
                doc_key: "summary/x".into(),
                revision: 2
            },
            t0() + secs(5)
        )
        .await
        .expect("settle_doc"),
        0,
        "posting an earlier revision does not settle a later change"
    );
    assert_eq!(
        s.settle_doc(
            &t,
            "summary/x",
            3,
            &Disposition::Posted {
                doc_key: "summary/x".into(),
                revision: 3
            },
            t0() + secs(5)
        )
        .await
        .expect("settle_doc"),
        1
    );
    assert!(
        matches!(
            s.observe(obs(&t, "cw:1", &v1, "h1", t0()))
                .await
                .expect("observe"),
            Observe::Duplicate { .. }
        ),
        "the same version and content after a final state is a duplicate"
    );
    let old = version(0);
    assert!(
        matches!(
            s.observe(obs(&t, "cw:1", &old, "h0", t0()))
                .await
                .expect("observe"),
            Observe::Stale { .. }
        ),
        "an older version is refused"
    );
    match s
        .observe(obs(&t, "cw:1", &v2, "h2", t0() + secs(10)))
        .await
        .expect("observe")
    {
        Observe::New {
            previous: Some(Disposition::Posted { .. }),
            last_doc,
        } => {
            assert_eq!(
                last_doc.as_deref(),
                Some("summary/x"),
                "the last document is remembered"
            );
        }
        other => panic!("a newer version is new, got {other:?}"),
    }
    assert!(
        !s.settle(
            &t,
            "cw:1",
            &v1,
            &Disposition::Skipped { reason: "x".into() }
        )
        .await
        .expect("settle"),
        "a settle for a superseded version is ignored"
    );
    assert!(
        s.settle(
            &t,
            "cw:1",
            &v2,
            &Disposition::Skipped {
                reason: "not approved".into()
            }
        )
        .await
        .expect("settle")
    );
    let e = s.get(&t, "cw:1").await.expect("get").expect("entry");
    assert_eq!(e.version, v2);
    assert_eq!(
        e.disposition,
        Disposition::Skipped {
            reason: "not approved".into()
        }
    );
    // A record noted for a document before it was sent there (then the
    // process died) still names that document, and nothing settles it early.
    s.observe(obs(&t, "cw:2", &v1, "h", t0()))
        .await
        .expect("observe");
    assert!(
        s.note_doc(&t, "cw:2", &v1, "summary/y")
            .await
            .expect("note_doc")
    );
    assert!(
        !s.note_doc(&t, "cw:2", &v2, "summary/z")
            .await
            .expect("note_doc"),
        "a note for a version that is not current is ignored"
    );
    assert_eq!(
        s.settle_doc(
            &t,
            "summary/y",
            9,
            &Disposition::Posted {
                doc_key: "summary/y".into(),
                revision: 9
            },
            t0()
        )
        .await
        .expect("settle_doc"),
        0,
        "a noted record is not queued: a post does not settle it"
    );
    assert_eq!(
        s.get(&t, "cw:2").await.expect("get").map(|e| e.disposition),
        Some(Disposition::Pending)
    );
    match s
        .observe(obs(&t, "cw:2", &v2, "h2", t0() + secs(10)))
        .await
        .expect("observe")
    {
        Observe::New { last_doc, .. } => assert_eq!(last_doc.as_deref(), Some("summary/y")),
        other => panic!("a newer version is new, got {other:?}"),
    }
    let counts = s.counts(&t).await.expect("counts");
    let skipped: u64 = counts
        .iter()
        .filter(|c| c.state == "skipped")
        .map(|c| c.count)
        .sum();
    let pending: u64 = counts
        .iter()
        .filter(|c| c.state == "pending")
        .map(|c| c.count)
        .sum();
    assert_eq!((skipped, pending), (1, 1));
    let lat = s.latencies(&t, t0() - secs(100)).await.expect("latencies");
    assert!(
        lat.is_empty(),
        "records that were not posted have no latency"
    );
    assert_eq!(
        s.list(&t, Domain::TimeEntries).await.expect("list").len(),
        2
    );
    assert!(
        s.get(&tenant("contract-b"), "cw:1")
            .await
            .expect("get")
            .is_none()
    );
}

/// Staging: revisions, headers, single-flight schedule.
pub async fn staging(s: Arc<dyn Staging>) {
    let t = tenant("contract-a");
    let now = t0();
    let req = |member: &'static str, line: Option<&'static str>, header: Option<&'static str>| {
        StageRequest {
            tenant: &t,
            group: "billing/cw:7/2026-11",
            header,
            member,
            line,
            now,
        }
    };
    assert_eq!(
        s.stage(req("cw:1", Some("{\"h\":1}"), Some("H1")))
            .await
            .expect("stage"),
        1
    );
    assert_eq!(
        s.stage(req("cw:1", Some("{\"h\":1}"), Some("H1")))
            .await
            .expect("stage"),
        1,
        "identical content does not bump the revision"
    );
    assert_eq!(
        s.stage(req("cw:2", Some("{\"h\":2}"), None))
            .await
            .expect("stage"),
        2
    );
    assert_eq!(
        s.stage(req("cw:1", Some("{\"h\":1.5}"), None))
            .await
            .expect("stage"),
        3
    );
    assert_eq!(s.stage(req("cw:2", None, None)).await.expect("stage"), 4);
    assert_eq!(
        s.stage(req("cw:2", None, None)).await.expect("stage"),
        4,
        "removing an absent member changes nothing"
    );
    assert_eq!(
        s.stage(req("cw:1", Some("{\"h\":1.5}"), Some("H2")))
            .await
            .expect("stage"),
        5,
        "a new header is a change"
    );
    let snap = s
        .snapshot(&t, "billing/cw:7/2026-11")
        .await
        .expect("snapshot");
    assert_eq!(snap.revision, 5);
    assert_eq!(snap.header.as_deref(), Some("H2"));
    assert_eq!(
        snap.members,
        vec![("cw:1".to_string(), "{\"h\":1.5}".to_string())]
    );
    let g = "billing/cw:7/2026-11";
    assert!(
        s.schedule(&t, g, now, now + secs(60))
            .await
            .expect("schedule"),
        "the first schedule wins"
    );
    assert!(
        !s.schedule(&t, g, now + secs(1), now + secs(61))
            .await
            .expect("schedule"),
        "only one flush pending"
    );
    assert!(
        !s.schedule(&t, g, now + secs(60) - ms(1), now + secs(120))
            .await
            .expect("schedule"),
        "pending until just before it is due"
    );
    assert!(
        s.schedule(&t, g, now + secs(60), now + secs(120))
            .await
            .expect("schedule"),
        "once due, a schedule can be replaced"
    );
    s.unschedule(&t, g).await.expect("unschedule");
    assert!(
        s.schedule(&t, g, now + secs(62), now + secs(120))
            .await
            .expect("schedule")
    );
    let empty = s.snapshot(&t, "nothing").await.expect("snapshot");
    assert_eq!((empty.revision, empty.members.len()), (0, 0));
}

/// Event dedupe: first sight only, until expiry; forget undoes it.
pub async fn event_dedupe(s: Arc<dyn EventDedupe>) {
    let t = tenant("contract-a");
    let now = t0();
    assert!(
        s.first_seen(&t, "evt-1", now, now + secs(60))
            .await
            .expect("dedupe")
    );
    assert!(
        !s.first_seen(&t, "evt-1", now + secs(1), now + secs(61))
            .await
            .expect("dedupe"),
        "a replayed id is a duplicate"
    );
    assert!(
        s.first_seen(&tenant("contract-b"), "evt-1", now, now + secs(60))
            .await
            .expect("dedupe"),
        "per tenant"
    );
    assert!(
        !s.first_seen(&t, "evt-1", now + secs(60) - ms(1), now + secs(120))
            .await
            .expect("dedupe"),
        "a duplicate until just before its expiry"
    );
    assert!(
        s.first_seen(&t, "evt-1", now + secs(60), now + secs(120))
            .await
            .expect("dedupe"),
        "at its expiry it is new again"
    );
    s.forget(&t, "evt-1").await.expect("forget");
    assert!(
        s.first_seen(&t, "evt-1", now + secs(62), now + secs(120))
            .await
            .expect("dedupe"),
        "forgotten ids are new"
    );
    // A short claim, kept for longer once the notice is queued.
    assert!(
        s.first_seen(&t, "evt-2", now, now + secs(30))
            .await
            .expect("dedupe")
    );
    s.keep(&t, "evt-2", now, now + secs(3600))
        .await
        .expect("keep");
    assert!(
        !s.first_seen(&t, "evt-2", now + secs(31), now + secs(60))
            .await
            .expect("dedupe"),
        "a kept id stays a duplicate after its claim ran out"
    );
    assert!(
        s.first_seen(&t, "evt-2", now + secs(3600), now + secs(3630))
            .await
            .expect("dedupe"),
        "and is new at the end of what it was kept for"
    );
    // A claim never kept (the process died before queueing) lets the retry in.
    assert!(
        s.first_seen(&t, "evt-3", now, now + secs(30))
            .await
            .expect("dedupe")
    );
    assert!(
        s.first_seen(&t, "evt-3", now + secs(30), now + secs(60))
            .await
            .expect("dedupe"),
        "an unkept claim expires"
    );
}

/// Locks: one holder at a time, re-entrant for the holder, free again when
/// released or expired, per tenant and name.
pub async fn lock_store(s: Arc<dyn LockStore>) {
    let t = tenant("contract-a");
    let now = t0();
    let name = "xero.oauth";
    assert!(
        s.try_acquire(&t, name, "fn-1", now, now + secs(30))
            .await
            .expect("acquire"),
        "a free lock is taken"
    );
    assert!(
        !s.try_acquire(&t, name, "fn-2", now + secs(1), now + secs(31))
            .await
            .expect("acquire"),
        "a held lock is refused to another holder"
    );
    assert!(
        s.try_acquire(&t, name, "fn-1", now + secs(2), now + secs(40))
            .await
            .expect("acquire"),
        "the holder may extend its hold"
    );
    assert!(
        !s.try_acquire(&t, name, "fn-2", now + secs(35), now + secs(60))
            .await
            .expect("acquire"),
        "the extended hold still counts"
    );
    s.release(&t, name, "fn-2").await.expect("release");
    assert!(
        !s.try_acquire(&t, name, "fn-3", now + secs(36), now + secs(60))
            .await
            .expect("acquire"),
        "a release by a non-holder does nothing"
    );
    s.release(&t, name, "fn-1").await.expect("release");
    assert!(
        s.try_acquire(&t, name, "fn-2", now + secs(37), now + secs(60))
            .await
            .expect("acquire"),
        "a released lock is free"
    );
    assert!(
        !s.try_acquire(&t, name, "fn-3", now + secs(60) - ms(1), now + secs(90))
            .await
            .expect("acquire"),
        "held until just before the hold expires"
    );
    assert!(
        s.try_acquire(&t, name, "fn-3", now + secs(60), now + secs(90))
            .await
            .expect("acquire"),
        "an expired hold does not block forever"
    );
    assert!(
        s.try_acquire(
            &tenant("contract-b"),
            name,
            "fn-9",
            now + secs(61),
            now + secs(90)
        )
        .await
        .expect("acquire"),
        "locks are per tenant"
    );
    assert!(
        s.try_acquire(&t, "other", "fn-9", now + secs(61), now + secs(90))
            .await
            .expect("acquire"),
        "and per name"
    );
}
