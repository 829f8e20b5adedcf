//! Webhook intake through the HTTP edge: what is refused, with which status,
//! and that nothing is enqueued twice.

use chrono::{Duration, SecondsFormat, Utc};
use ferry_core::ports::QueueName;
use ferry_tests::*;
use serde_json::{Value, json};

fn callback(
    h: &Harness,
    message_id: &str,
    updated: chrono::DateTime<Utc>,
    key_url: &str,
) -> Vec<u8> {
    let entity = json!({
        "id": 424242, "name": "Callback Co", "identifier": "CallbackCo",
        "_info": { "lastUpdated": updated.to_rfc3339_opts(SecondsFormat::Secs, true) },
    });
    json!({
        "MessageId": message_id, "Action": "added", "Type": "company", "ID": 424242,
        "CompanyId": h.sims.cw.config().company_id, "Entity": entity.to_string(),
        "Metadata": { "key_url": key_url },
    })
    .to_string()
    .into_bytes()
}

async fn post(url: &str, body: Vec<u8>, signature: Option<String>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(s) = signature {
        req = req.header("x-content-signature", s);
    }
    let resp = req.send().await.expect("edge answers");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn enqueued(h: &Harness) -> u64 {
    h.deps
        .queue
        .depth(QueueName::Transform)
        .await
        .expect("depth")
        .total()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_verified_on_the_raw_body_and_refused_with_the_right_status() {
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    let url = h.edge.url("connectwise", "test-firm");
    let key = h.sims.cw.config().signing_key.clone();
    let sign = |b: &[u8]| Some(ferry_sim::connectwise::sign(&key, b));
    let key_url = h.sims.cw.key_url();

    let good = callback(&h, "msg-1", Utc::now(), &key_url);
    let (status, body) = post(&url, good.clone(), sign(&good)).await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    assert_eq!(enqueued(&h).await, 1);

    let (status, body) = post(&url, good.clone(), sign(&good)).await;
    assert_eq!(
        (status, body["duplicates"].as_u64()),
        (200, Some(1)),
        "a redelivery is acknowledged as a duplicate"
    );
    assert_eq!(enqueued(&h).await, 1, "and not enqueued again");

    let other = callback(&h, "msg-2", Utc::now(), &key_url);
    let (status, _) = post(
        &url,
        other.clone(),
        Some(ferry_sim::connectwise::sign("wrong key", &other)),
    )
    .await;
    assert_eq!(status, 401, "a bad signature is refused");
    let (status, _) = post(&url, other.clone(), None).await;
    assert_eq!(status, 401, "a missing signature header is refused");
    let mut tampered = other.clone();
    tampered.extend_from_slice(b" ");
    let (status, _) = post(&url, tampered, sign(&other)).await;
    assert_eq!(status, 401, "a body changed after signing is refused");

    let stale = callback(&h, "msg-3", Utc::now() - Duration::days(3), &key_url);
    let (status, body) = post(&url, stale.clone(), sign(&stale)).await;
    assert_eq!(
        status, 401,
        "a replay of an old callback is refused: {body}"
    );
    let future = callback(&h, "msg-4", Utc::now() + Duration::hours(1), &key_url);
    let (status, _) = post(&url, future.clone(), sign(&future)).await;
    assert_eq!(status, 401, "a timestamp from the future is refused");

    let evil = callback(&h, "msg-5", Utc::now(), "http://203.0.113.9/key");
    let (status, _) = post(
        &url,
        evil.clone(),
        Some(ferry_sim::connectwise::sign("whatever", &evil)),
    )
    .await;
    assert_eq!(
        status, 401,
        "a key URL outside the allow-list is never fetched"
    );

    let junk = b"{not json".to_vec();
    let (status, body) = post(&url, junk.clone(), sign(&junk)).await;
    assert_eq!(
        status, 400,
        "a malformed body is a 400 with a message: {body}"
    );
    assert!(body["error"].as_str().unwrap_or("").contains("malformed"));

    let big = vec![b' '; 300 * 1024];
    let (status, body) = post(&url, big.clone(), sign(&big)).await;
    assert_eq!(status, 413, "an oversize body is refused: {body}");

    let (unknown_tenant, b1) = post(
        &h.edge.url("connectwise", "nobody-here"),
        good.clone(),
        sign(&good),
    )
    .await;
    let (unknown_route, b2) = post(
        &h.edge.url("autotask", "test-firm"),
        good.clone(),
        sign(&good),
    )
    .await;
    assert_eq!((unknown_tenant, unknown_route), (404, 404));
    assert_eq!(
        b1, b2,
        "unknown tenants and routes look the same from outside"
    );

    assert_eq!(enqueued(&h).await, 1, "nothing refused was enqueued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xero_intent_to_receive_passes_only_with_a_valid_signature() {
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    let url = h.edge.url("xero", "test-firm");
    let body =
        br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"ABC"}"#.to_vec();
    let key = h.sims.xero.config().webhook_key.clone();
    let send = |sig: String| {
        let url = url.clone();
        let body = body.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .header("x-xero-signature", sig)
                .body(body)
                .send()
                .await
                .expect("edge answers")
                .status()
                .as_u16()
        }
    };
    assert_eq!(send(ferry_sim::xero::sign(&key, &body)).await, 200);
    assert_eq!(send(ferry_sim::xero::sign("not the key", &body)).await, 401);
}
