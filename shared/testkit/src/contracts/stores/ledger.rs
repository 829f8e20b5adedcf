//! The ledger store's contract (see `stores`).

use super::*;

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
    assert_eq!(
        s.activity(&t).await.expect("activity"),
        vec![DomainActivity {
            domain: Domain::TimeEntries,
            last_posted_at: None,
            oldest_unsettled_at: Some(t0() + secs(10)),
            unsettled: 1,
        }],
        "activity: nothing posted yet; the one pending record's receipt is the oldest"
    );
    assert!(
        s.activity(&tenant("contract-b"))
            .await
            .expect("activity")
            .is_empty(),
        "another tenant's activity is its own"
    );
    assert!(
        s.get(&tenant("contract-b"), "cw:1")
            .await
            .expect("get")
            .is_none()
    );
}
