//! The cursor store's contract (see `stores`).

use super::*;

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
