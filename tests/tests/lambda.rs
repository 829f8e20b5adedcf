//! The Lambda translations: an API Gateway HTTP API event reaches intake, and an
//! SQS batch answers with only the failed message ids.

use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Duration, SecondsFormat};
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
        "_info": {"lastUpdated": h.now().to_rfc3339_opts(SecondsFormat::Secs, true)}});
    let body = json!({"MessageId": "m-1", "Action": "updated", "Type": "company", "ID": 100,
        "Entity": entity.to_string(), "Metadata": {"key_url": h.sims.cw.key_url()}})
    .to_string();
    let sig = ferry_sim::connectwise::sign(&h.sims.cw.config().signing_key, body.as_bytes());
    // The checked-in sample, pointed at this test's tenant and carrying a body the
    // simulator signed. As checked in (a placeholder signature) it is refused.
    let mut http = sample("intake/webhook-connectwise-forged.json");
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
    let response = ferry_lambda::handle_sqs(
        &h.deps,
        ferry_core::Invocation::UNBOUNDED,
        QueueName::Transform,
        sqs,
    )
    .await;
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

/// Points a sample at the harness's tenant (the path names the tenant; it is not signed).
fn at_tenant(mut event: serde_json::Value, tenant: &str) -> serde_json::Value {
    let path = event["rawPath"]
        .as_str()
        .expect("rawPath")
        .replace("/demo-firm", &format!("/{tenant}"));
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"]["tenant"] = json!(tenant);
    event
}

async fn intake_status(deps: &ferry_core::Deps, event: serde_json::Value) -> u16 {
    let req: LambdaRequest = serde_json::from_value(event).expect("an HTTP API event");
    ferry_lambda::handle_intake(deps, req.into())
        .await
        .expect("an HTTP answer")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_webhook_sample_gets_the_answer_its_name_promises() {
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    let t = h.tenant.as_str();
    // Xero: signed with the simulator's demo webhook key, as checked in.
    assert_eq!(
        intake_status(
            &h.deps,
            at_tenant(sample("intake/webhook-xero-valid.json"), t)
        )
        .await,
        200
    );
    assert_eq!(
        intake_status(
            &h.deps,
            at_tenant(sample("intake/webhook-xero-forged.json"), t)
        )
        .await,
        401
    );
    // ConnectWise: the signing key is fetched from the callback's key_url, which
    // must be the running simulator; the valid sample is re-pointed and re-signed
    // with the same demo key it was signed with.
    let mut valid = at_tenant(sample("intake/webhook-connectwise-valid.json"), t);
    let mut body: serde_json::Value =
        serde_json::from_str(valid["body"].as_str().expect("body")).expect("json body");
    let checked_in = ferry_sim::connectwise::sign(
        &h.sims.cw.config().signing_key,
        valid["body"].as_str().expect("body").as_bytes(),
    );
    assert_eq!(
        valid["headers"]["x-content-signature"], checked_in,
        "the checked-in sample is signed with the simulator's demo key"
    );
    let message_id = body["MessageId"].as_str().expect("MessageId").to_string();
    body["Metadata"]["key_url"] = json!(h.sims.cw.key_url());
    let body = body.to_string();
    valid["headers"]["x-content-signature"] = json!(ferry_sim::connectwise::sign(
        &h.sims.cw.config().signing_key,
        body.as_bytes()
    ));
    valid["body"] = json!(body);
    // The sample says when API Gateway received it; its entity was updated then.
    let delivered = DateTime::from_timestamp_millis(
        valid["requestContext"]["timeEpoch"]
            .as_i64()
            .expect("timeEpoch"),
    )
    .expect("a valid instant");
    h.take_notices().await; // the Xero sample's payment notice
    // Read on the day it was sent, the body is mapped as sent (a fat notice).
    // Read on any other day it is still accepted, as a thin notice: transform
    // reads the company from ConnectWise. The real clock is one such day.
    for (deps, fat, when) in [
        (h.deps_at(delivered), Some(true), "on the day it was sent"),
        (
            h.deps_at(delivered + Duration::days(400)),
            Some(false),
            "400 days later",
        ),
        (
            h.deps_at(delivered - Duration::hours(1)),
            Some(false),
            "an hour before its entity changed",
        ),
        (h.deps.clone(), None, "today"),
    ] {
        h.deps
            .dedupe
            .forget(&h.tenant, &format!("connectwise:{message_id}"))
            .await
            .expect("forget the delivery, as after the dedupe TTL");
        assert_eq!(intake_status(&deps, valid.clone()).await, 200, "{when}");
        let notices = h.take_notices().await;
        assert_eq!(notices.len(), 1, "{when}: one notice");
        if let Some(fat) = fat {
            assert_eq!(notices[0].record.is_some(), fat, "{when}: fat notice?");
            assert_eq!(notices[0].version.is_some(), fat, "{when}: version?");
        }
        assert_eq!(notices[0].id, "100");
    }
    let forged = at_tenant(sample("intake/webhook-connectwise-forged.json"), t);
    assert_eq!(intake_status(&h.deps, forged).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_poison_sample_is_the_only_failure_of_its_batch() {
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    for (file, queue) in [
        ("transform/sqs-with-poison.json", QueueName::Transform),
        ("post/sqs-with-poison.json", QueueName::Post),
    ] {
        let mut event = sample(file);
        let records = event["Records"].as_array_mut().expect("records");
        for r in records.iter_mut() {
            let body = r["body"]
                .as_str()
                .expect("body")
                .replace("demo-firm", h.tenant.as_str());
            r["body"] = json!(body);
        }
        let poison: Vec<String> = records
            .iter()
            .filter(|r| {
                r["messageId"]
                    .as_str()
                    .is_some_and(|id| id.ends_with("dead"))
            })
            .map(|r| r["messageId"].as_str().expect("id").to_string())
            .collect();
        assert_eq!(poison.len(), 1, "{file} holds one poison message");
        let sqs: SqsEvent = serde_json::from_value(event).expect("an SQS event");
        let response =
            ferry_lambda::handle_sqs(&h.deps, ferry_core::Invocation::UNBOUNDED, queue, sqs).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(failed, poison, "{file}: only the poison message fails");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_429_is_a_throttled_retry_apart_from_other_retries() {
    use ferry_core::usecases::outcome::Outcome;
    use ferry_core::usecases::{post, transform};
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    h.sims
        .cw
        .create(
            Kind::Company,
            json!({"identifier": "Nimbus", "name": "Nimbus Analytics Ltd", "status": {"id": 1, "name": "Active"},
                   "taxCode": {"id": 1, "name": "Taxable"}, "currency": {"id": 1, "currencyCode": "USD"}}),
        )
        .await;
    let vt = std::time::Duration::from_secs(30);
    let notices = h
        .deps
        .queue
        .receive(QueueName::Transform, 10, vt)
        .await
        .expect("receive");
    assert_eq!(notices.len(), 1, "the callback was enqueued");
    let done = transform::handle_batch(&h.deps, &notices).await;
    assert!(matches!(done[..], [Outcome::Done]), "{done:?}");
    let commands = h
        .deps
        .queue
        .receive(QueueName::Post, 10, vt)
        .await
        .expect("receive");
    assert_eq!(commands.len(), 1, "transform queued the contact");
    h.sims.xero.set_faults(XeroFaults {
        throttle_next: 1,
        retry_after_secs: 7,
        ..XeroFaults::default()
    });
    let outcomes = post::handle_batch(&h.deps, ferry_core::Invocation::UNBOUNDED, &commands).await;
    match &outcomes[..] {
        [
            Outcome::Retry {
                throttled: true,
                after,
                ..
            },
        ] => {
            assert!(
                *after >= std::time::Duration::from_secs(7),
                "Retry-After is honoured: {after:?}"
            )
        }
        other => panic!("a 429 must be a throttled retry, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_reconcile_schedule_takes_the_month_before_the_clocks_today() {
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    let new_year = DateTime::parse_from_rfc3339("2028-01-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&chrono::Utc);
    for (now, from, to) in [
        (new_year, "2027-12-01", "2027-12-31"),
        (
            new_year - Duration::milliseconds(1),
            "2027-11-01",
            "2027-11-30",
        ),
        (new_year + Duration::days(59), "2028-01-01", "2028-01-31"),
        (new_year + Duration::days(60), "2028-02-01", "2028-02-29"),
    ] {
        let bare = ferry_lambda::serve::reconcile_input(sample("reconcile/scheduled.json"))
            .expect("the sample is a schedule");
        let got = ferry_lambda::handle_schedule(&h.deps_at(now), bare)
            .await
            .expect("reconciles");
        assert_eq!(
            (got["from"].as_str(), got["to"].as_str()),
            (Some(from), Some(to)),
            "at {now}"
        );
    }
}
