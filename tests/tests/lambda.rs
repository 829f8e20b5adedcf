//! The Lambda translations: an API Gateway HTTP API event reaches intake, and an
//! SQS batch answers with only the failed message ids.

use aws_lambda_events::sqs::SqsEvent;
use chrono::{SecondsFormat, Utc};
use ferry_core::ports::{OutboundMessage, QueueName};
use ferry_tests::*;
use lambda_http::Body;
use lambda_http::request::LambdaRequest;
use serde_json::json;

fn sample(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("sample events are JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_api_event_is_verified_and_an_sqs_batch_reports_only_its_poison_message() {
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    let entity = json!({"id": 100, "name": "Globex Inc.", "identifier": "Globex", "status": {"id": 1, "name": "Active"},
        "taxCode": {"id": 1, "name": "Taxable"}, "currency": {"currencyCode": "USD"},
        "_info": {"lastUpdated": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)}});
    let body = json!({"MessageId": "m-1", "Action": "updated", "Type": "company", "ID": 100,
        "Entity": entity.to_string(), "Metadata": {"key_url": h.sims.cw.key_url()}})
    .to_string();
    let sig = ferry_sim::connectwise::sign(&h.sims.cw.config().signing_key, body.as_bytes());
    // The checked-in sample, pointed at this test's tenant and carrying a body the
    // simulator signed. As checked in (a placeholder signature) it is refused.
    let mut http = sample("intake/webhook-company-updated.json");
    let path = "/webhooks/connectwise/test-firm";
    http["rawPath"] = json!(path);
    http["requestContext"]["http"]["path"] = json!(path);
    http["pathParameters"]["tenant"] = json!("test-firm");
    let unsigned: LambdaRequest =
        serde_json::from_value(http.clone()).expect("a real-shaped HTTP API event");
    let resp = ferry_lambda::handle_intake(&h.deps, unsigned.into())
        .await
        .expect("a webhook always gets an HTTP answer");
    assert_eq!(resp.status(), 401, "the placeholder signature is refused");
    http["body"] = json!(body);
    http["headers"]["x-content-signature"] = json!(sig);
    let event: LambdaRequest = serde_json::from_value(http).expect("a real-shaped HTTP API event");
    let resp = ferry_lambda::handle_intake(&h.deps, event.into())
        .await
        .expect("answer");
    assert_eq!(resp.status(), 200);
    assert!(matches!(resp.body(), Body::Text(t) if t.contains("\"accepted\":1")));

    h.deps
        .queue
        .send(
            QueueName::Transform,
            vec![OutboundMessage::now("not an envelope".into())],
        )
        .await
        .expect("send poison");
    let got = h
        .deps
        .queue
        .receive(QueueName::Transform, 10, std::time::Duration::from_secs(30))
        .await
        .expect("receive");
    assert_eq!(got.len(), 2);
    // Each message in the shape of the checked-in sample's first record.
    let template = sample("transform/sqs-change-notices.json")["Records"][0].clone();
    let records: Vec<_> = got
        .iter()
        .map(|m| {
            let mut r = template.clone();
            r["messageId"] = json!(m.id);
            r["receiptHandle"] = json!(m.receipt);
            r["body"] = json!(m.body);
            r["attributes"]["ApproximateReceiveCount"] = json!(m.receive_count.to_string());
            r
        })
        .collect();
    let sqs: SqsEvent =
        serde_json::from_value(json!({ "Records": records })).expect("a real-shaped SQS event");
    let poison = got
        .iter()
        .find(|m| m.body == "not an envelope")
        .expect("poison")
        .id
        .clone();
    let response = ferry_lambda::handle_sqs(&h.deps, QueueName::Transform, sqs).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        vec![poison],
        "only the poison message is reported failed"
    );
    assert!(
        h.disposition(ferry_canon::Domain::Customers, 100)
            .await
            .is_some(),
        "the good message was processed"
    );
}
