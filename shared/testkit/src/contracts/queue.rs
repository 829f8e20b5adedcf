//! The queue contract: SQS semantics.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::ports::{OutboundMessage, Queue, QueueName};

use crate::clock::TestTime;

fn msg(body: &str) -> OutboundMessage {
    OutboundMessage::now(body.to_string())
}

async fn drain_bodies(q: &dyn Queue, name: QueueName, vt: Duration) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let got = q.receive(name, 10, vt).await.expect("receive");
        if got.is_empty() {
            return out;
        }
        out.extend(got.into_iter().map(|m| m.body));
    }
}

/// Runs the queue contract on a fresh pair `Transform`/`TransformDlq` whose
/// redrive policy is `max_receives` (at least 2).
pub async fn queue(q: Arc<dyn Queue>, time: &dyn TestTime, max_receives: u32) {
    assert!(max_receives >= 2, "the contract needs max_receives >= 2");
    let vt = Duration::from_secs(2);
    let t = QueueName::Transform;

    // Delivery hides messages for the visibility timeout and counts receives.
    q.send(t, vec![msg("a"), msg("b"), msg("c")])
        .await
        .expect("send");
    let first = q.receive(t, 10, vt).await.expect("receive");
    assert_eq!(first.len(), 3, "all three sent messages are delivered");
    let bodies: BTreeSet<_> = first.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        BTreeSet::from(["a", "b", "c"]),
        "bodies arrive unchanged"
    );
    assert!(
        first.iter().all(|m| m.receive_count == 1),
        "first delivery has receive count 1"
    );
    let receipts: BTreeSet<_> = first.iter().map(|m| m.receipt.clone()).collect();
    assert_eq!(receipts.len(), 3, "every delivery has its own receipt");
    assert!(
        q.receive(t, 10, vt).await.expect("receive").is_empty(),
        "received messages are hidden during the visibility timeout"
    );
    let depth = q.depth(t).await.expect("depth");
    assert_eq!(depth.in_flight, 3, "hidden messages count as in flight");

    // Deleted messages never come back; the others do, with a higher count.
    let a = first.iter().find(|m| m.body == "a").expect("a");
    q.delete(t, &a.receipt).await.expect("delete");
    time.pass(vt + Duration::from_millis(700)).await;
    let second = q.receive(t, 10, vt).await.expect("receive");
    let bodies: BTreeSet<_> = second.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        BTreeSet::from(["b", "c"]),
        "only undeleted messages are redelivered"
    );
    assert!(
        second.iter().all(|m| m.receive_count == 2),
        "redelivery increments the receive count"
    );
    let old_b = first.iter().find(|m| m.body == "b").expect("b");
    q.delete(t, &old_b.receipt)
        .await
        .expect("a delete with an outdated receipt does not fail");
    for m in &second {
        q.delete(t, &m.receipt).await.expect("delete");
    }
    time.pass(vt + Duration::from_millis(700)).await;
    assert!(
        q.receive(t, 10, vt).await.expect("receive").is_empty(),
        "deleted messages are gone"
    );

    // Visibility can be shortened (retry now) or extended (Retry-After).
    q.send(t, vec![msg("v")]).await.expect("send");
    let v = q
        .receive(t, 1, vt)
        .await
        .expect("receive")
        .pop()
        .expect("v delivered");
    q.change_visibility(t, &v.receipt, Duration::ZERO)
        .await
        .expect("change visibility");
    let again = q.receive(t, 1, vt).await.expect("receive");
    assert_eq!(
        again.len(),
        1,
        "a zero visibility makes the message visible at once"
    );
    q.delete(t, &again[0].receipt).await.expect("delete");

    // Delayed sends are invisible until the delay passes.
    q.send(
        t,
        vec![OutboundMessage {
            body: "later".into(),
            delay: Duration::from_secs(2),
        }],
    )
    .await
    .expect("send delayed");
    assert!(
        q.receive(t, 10, vt).await.expect("receive").is_empty(),
        "a delayed message is not delivered before its delay"
    );
    time.pass(Duration::from_millis(2700)).await;
    let later = q.receive(t, 10, vt).await.expect("receive");
    assert_eq!(
        later.len(),
        1,
        "a delayed message is delivered after its delay"
    );
    q.delete(t, &later[0].receipt).await.expect("delete");

    // Received max_receives times without a delete: the next receive moves it to the DLQ.
    q.send(t, vec![msg("poison")]).await.expect("send");
    for n in 1..=max_receives {
        let got = q
            .receive(t, 1, Duration::from_secs(1))
            .await
            .expect("receive");
        assert_eq!(got.len(), 1, "poison delivered on receive {n}");
        assert_eq!(got[0].receive_count, n);
        time.pass(Duration::from_millis(1500)).await;
    }
    let mut moved = Vec::new();
    for _ in 0..5 {
        assert!(
            q.receive(t, 1, Duration::from_secs(1))
                .await
                .expect("receive")
                .is_empty(),
            "after max_receives deliveries the message is not delivered again"
        );
        moved = drain_bodies(q.as_ref(), QueueName::TransformDlq, vt).await;
        if !moved.is_empty() {
            break;
        }
        time.pass(Duration::from_millis(500)).await;
    }
    assert_eq!(
        moved,
        vec!["poison".to_string()],
        "the message lands in the dead-letter queue"
    );
}
