//! The dedupe store's contract (see `stores`).

use super::*;

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
