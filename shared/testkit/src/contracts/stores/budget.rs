//! The budget store's contract (see `stores`).

use super::*;

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
