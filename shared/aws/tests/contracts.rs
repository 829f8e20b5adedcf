//! Every AWS adapter passes its port's contract suite, against moto (`make test`
//! starts it and sets `AWS_ENDPOINT_URL`). Each test provisions its own table,
//! queues and bus under a fresh prefix, so tests run in parallel on one server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_aws::{Adapters, Resources, provision};
use ferry_core::ports::{Secrets, SystemClock};
use ferry_testkit::{ManualClock, RealTime, contracts};

async fn stack(name: &str, max_receives: u32) -> (aws_config::SdkConfig, Resources, Adapters) {
    let sdk = ferry_aws::testing::emulator().await;
    let prefix = format!("c-{name}-{}", fastrand::u32(..));
    let r = provision::create(&sdk, &prefix, max_receives)
        .await
        .expect("provision a stack on the emulator");
    let a = Adapters::new(&sdk, &r, Arc::new(SystemClock));
    (sdk, r, a)
}

#[tokio::test]
async fn sqs_queue_meets_the_contract() {
    let (_, _, a) = stack("queue", 3).await;
    contracts::queue(a.queue.clone(), &RealTime, 3).await;
}

#[tokio::test]
async fn dynamodb_cursor_store_meets_the_contract() {
    contracts::cursor_store(stack("cursor", 3).await.2.cursors).await;
}

#[tokio::test]
async fn dynamodb_idempotency_store_meets_the_contract() {
    contracts::idempotency_store(stack("idem", 3).await.2.idempotency).await;
}

#[tokio::test]
async fn dynamodb_id_map_meets_the_contract() {
    contracts::id_map(stack("idmap", 3).await.2.idmap).await;
}

#[tokio::test]
async fn dynamodb_exception_store_meets_the_contract() {
    contracts::exception_store(stack("exc", 3).await.2.exceptions).await;
}

#[tokio::test]
async fn dynamodb_audit_log_meets_the_contract() {
    contracts::audit_log(stack("audit", 3).await.2.audit).await;
}

#[tokio::test]
async fn dynamodb_rate_budget_meets_the_contract() {
    contracts::rate_budget(stack("budget", 3).await.2.budget).await;
}

#[tokio::test]
async fn dynamodb_record_ledger_meets_the_contract() {
    contracts::record_ledger(stack("ledger", 3).await.2.ledger).await;
}

#[tokio::test]
async fn dynamodb_reports_meet_the_contract() {
    contracts::reports(stack("reports", 3).await.2.reports).await;
}

#[tokio::test]
async fn dynamodb_staging_meets_the_contract() {
    contracts::staging(stack("staging", 3).await.2.staging).await;
}

#[tokio::test]
async fn dynamodb_event_dedupe_meets_the_contract() {
    contracts::event_dedupe(stack("dedupe", 3).await.2.dedupe).await;
}

#[tokio::test]
async fn the_credentials_account_is_read_from_sts() {
    let sdk = ferry_aws::testing::emulator().await;
    let account = ferry_aws::caller_account(&sdk).await.expect("sts");
    assert_eq!(account.len(), 12, "{account}");
    assert!(account.chars().all(|c| c.is_ascii_digit()), "{account}");
}

#[tokio::test]
async fn dynamodb_lock_store_meets_the_contract() {
    contracts::lock_store(stack("lock", 3).await.2.locks).await;
}

#[tokio::test]
async fn secrets_come_from_secrets_manager_cached_and_refreshed() {
    let (sdk, mut r, _) = stack("secrets", 3).await;
    r.secret_ttl = Duration::from_secs(300);
    let clock = Arc::new(ManualClock::new());
    let a = Adapters::new(&sdk, &r, clock.clone());
    let t = contracts::tenant("acme");
    let values = |v: &str| BTreeMap::from([("xero.webhook_key".to_string(), v.to_string())]);
    provision::put_secret(&sdk, &r, &t, &values("one"))
        .await
        .expect("put");
    assert_eq!(
        a.secrets
            .get(&t, "xero.webhook_key")
            .await
            .expect("get")
            .expose(),
        "one"
    );
    provision::put_secret(&sdk, &r, &t, &values("two"))
        .await
        .expect("rotate");
    assert_eq!(
        a.secrets
            .get(&t, "xero.webhook_key")
            .await
            .expect("get")
            .expose(),
        "one",
        "within the TTL the cached value is used"
    );
    clock.advance(Duration::from_millis(299_999));
    assert_eq!(
        a.secrets
            .get(&t, "xero.webhook_key")
            .await
            .expect("get")
            .expose(),
        "one",
        "until just before the TTL ends"
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        a.secrets
            .get(&t, "xero.webhook_key")
            .await
            .expect("get")
            .expose(),
        "two",
        "after the TTL a rotated secret is read again"
    );
    provision::put_secret(&sdk, &r, &t, &values("three"))
        .await
        .expect("rotate");
    a.secrets.invalidate(&t);
    assert_eq!(
        a.secrets
            .get(&t, "xero.webhook_key")
            .await
            .expect("get")
            .expose(),
        "three"
    );
    let missing = a
        .secrets
        .get(&t, "connectwise.private_key")
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("connectwise.private_key"),
        "{missing}"
    );
    let other = a
        .secrets
        .get(&contracts::tenant("globex"), "xero.webhook_key")
        .await
        .unwrap_err();
    assert!(other.to_string().contains("ResourceNotFound"), "{other}");
}

#[tokio::test]
async fn domain_events_reach_the_bus_with_their_envelope() {
    use aws_sdk_eventbridge::types::Target;
    use ferry_core::ports::{DomainEvent, QueueName};
    let (sdk, r, a) = stack("events", 3).await;
    // Route the bus into the post-dlq queue (any SQS target will do) and read it back.
    let eb = aws_sdk_eventbridge::Client::new(&sdk);
    eb.put_rule()
        .name("all-ferry")
        .event_bus_name(&r.event_bus)
        .event_pattern(r#"{"source":["ferry"]}"#)
        .send()
        .await
        .expect("rule");
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&r.queues[&QueueName::PostDlq])
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("arn")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("arn");
    eb.put_targets()
        .rule("all-ferry")
        .event_bus_name(&r.event_bus)
        .targets(Target::builder().id("q").arn(arn).build().expect("target"))
        .send()
        .await
        .expect("targets");
    let t = contracts::tenant("acme");
    let events: Vec<DomainEvent> = (0..12)
        .map(|i| {
            DomainEvent::new(
                DomainEvent::RECORD_POSTED,
                &t,
                ferry_core::ports::Clock::now(&ferry_core::ports::SystemClock),
                serde_json::json!({"doc_key": format!("invoices/cw:{i}")}),
            )
        })
        .collect();
    a.events
        .publish(events)
        .await
        .expect("publish 12 events (two PutEvents calls)");
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(
            a.queue
                .receive(QueueName::PostDlq, 10, Duration::from_secs(30))
                .await
                .expect("receive"),
        );
        if got.len() >= 12 {
            break;
        }
    }
    assert_eq!(got.len(), 12, "every event is delivered");
    let first: serde_json::Value = serde_json::from_str(&got[0].body).expect("json");
    assert_eq!(first["detail-type"], "ferry.record.posted");
    assert_eq!(first["source"], "ferry");
    assert_eq!(first["detail"]["schema_version"], 1);
    assert_eq!(first["detail"]["tenant"], "acme");
    assert!(
        first["detail"]["detail"]["doc_key"]
            .as_str()
            .is_some_and(|d| d.starts_with("invoices/"))
    );
}
