//! The id map store's contract (see `stores`).

use super::*;

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
