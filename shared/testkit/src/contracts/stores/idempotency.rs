//! The idempotency store's contract (see `stores`).

use super::*;

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
