//! The staging store's contract (see `stores`).

use super::*;

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
