//! The lock store's contract (see `stores`).

use super::*;

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
