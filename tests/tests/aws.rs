//! End to end on the AWS adapters against moto: webhooks through an API Gateway
//! stand-in into `intake`, the queues polled like Lambda's event source mapping,
//! the simulators as PSA and ERP. Run by `make test`, which starts moto.

use std::time::Duration;

use ferry_canon::Domain;
use ferry_core::ports::{
    Disposition, ExceptionQuery, ExceptionStatus, OutboundMessage, Owner, QueueName,
};
use ferry_lambda::Schedule;
use ferry_tests::aws::{AwsStack, drain, http_api_event, invoke_intake, poll_once};
use ferry_tests::{Kind, small_firm};
use serde_json::{Value, json};

fn nimbus() -> Value {
    json!({
        "identifier": "Nimbus", "name": "Nimbus Analytics Ltd", "status": {"id": 1, "name": "Active"},
        "taxCode": {"id": 1, "name": "Taxable"}, "currency": {"id": 1, "currencyCode": "USD"},
    })
}

fn contacts_numbered(stack: &AwsStack, id: i64) -> Vec<Value> {
    stack
        .sims
        .xero
        .contacts()
        .into_iter()
        .filter(|c| c["ContactNumber"] == format!("FERRY-C-{id}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_on_aws_becomes_exactly_one_erp_document_and_the_cursor_and_audit_say_so() {
    let stack = AwsStack::start(&small_firm(), 5).await;
    let gateway = stack.gateway(&stack.deps).await;

    // A company is created in ConnectWise; its signed callback reaches intake.
    let company = stack.sims.cw.create(Kind::Company, nimbus()).await;
    let id = company["id"].as_i64().expect("id");
    assert_eq!(
        gateway.events.lock().expect("lock").len(),
        1,
        "one callback forwarded"
    );
    let drained = drain(&stack, &stack.deps, Duration::from_secs(60)).await;
    assert!(
        drained.deleted >= 2,
        "transform and post each took a message: {drained:?}"
    );

    let contacts = contacts_numbered(&stack, id);
    assert_eq!(contacts.len(), 1, "exactly one contact in the ERP");
    assert_eq!(contacts[0]["Name"], "Nimbus Analytics Ltd");
    let contact_id = contacts[0]["ContactID"]
        .as_str()
        .expect("ContactID")
        .to_string();

    let key = format!("customers/connectwise:{id}");
    let entry = stack
        .deps
        .idmap
        .get(&stack.tenant, &key)
        .await
        .expect("idmap")
        .expect("mapped");
    assert_eq!(
        entry.erp_id.as_deref(),
        Some(contact_id.as_str()),
        "DynamoDB maps the document to the contact"
    );
    let audit = stack
        .deps
        .audit
        .list(&stack.tenant, Some(&key), 10)
        .await
        .expect("audit");
    assert_eq!(
        audit
            .iter()
            .map(|a| (a.action.as_str(), a.erp_id.as_deref()))
            .collect::<Vec<_>>(),
        vec![("create", Some(contact_id.as_str()))],
        "the audit log holds one create, with the ERP id"
    );
    let ledger = stack
        .deps
        .ledger
        .get(&stack.tenant, &format!("customers/connectwise:{id}"))
        .await
        .expect("ledger");
    assert!(
        ledger
            .as_ref()
            .is_some_and(|e| matches!(e.disposition, Disposition::Posted { .. })),
        "the record is posted: {ledger:?}"
    );

    // The vendor redelivers the same callback: acknowledged, nothing doubled.
    let again = gateway.events.lock().expect("lock")[0].clone();
    let (status, body) = invoke_intake(&stack.deps, again).await;
    assert_eq!(status, 200, "{body}");
    drain(&stack, &stack.deps, Duration::from_secs(60)).await;

    // The scheduled poll reads the same company again, and advances the cursor.
    let poll = json!({"action": "poll", "tenant": stack.tenant.as_str(), "domains": ["customers"]});
    let req: lambda_http::request::LambdaRequest =
        serde_json::from_value(poll).expect("pass-through");
    let resp = ferry_lambda::handle_intake(&stack.deps, req.into())
        .await
        .expect("poll runs");
    assert_eq!(resp.status(), 200);
    drain(&stack, &stack.deps, Duration::from_secs(60)).await;
    assert_eq!(
        contacts_numbered(&stack, id).len(),
        1,
        "still one contact after redelivery and a poll"
    );
    assert_eq!(
        stack
            .deps
            .audit
            .list(&stack.tenant, Some(&key), 10)
            .await
            .expect("audit")
            .len(),
        1,
        "no second write was audited"
    );
    let cursor = stack
        .deps
        .cursors
        .get(&stack.tenant, "connectwise/customers")
        .await
        .expect("cursor")
        .expect("the poll stored a cursor in DynamoDB");
    let newest = stack
        .sims
        .cw
        .all(Kind::Company)
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .max()
        .expect("companies");
    assert_eq!(
        cursor.id,
        newest.to_string(),
        "the cursor stands on the newest company"
    );
    assert!(
        stack
            .deps
            .exceptions
            .list(&ExceptionQuery {
                tenant: Some(stack.tenant.clone()),
                statuses: vec![ExceptionStatus::Open, ExceptionStatus::Retrying],
                domain: Some(Domain::Customers),
                ..ExceptionQuery::default()
            })
            .await
            .expect("exceptions")
            .iter()
            .all(|e| !e.source_key.ends_with(&format!("connectwise:{id}"))),
        "no exception for the company"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_does_not_acknowledge_a_webhook_it_could_not_store_or_enqueue() {
    let stack = AwsStack::start(&small_firm(), 5).await;
    let bad_queue = stack
        .deps_with(|env| {
            env.insert(
                "FERRY_QUEUE_TRANSFORM_URL".into(),
                format!(
                    "{}/123456789012/no-such-queue",
                    std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
                ),
            );
        })
        .await;
    let bad_table = stack
        .deps_with(|env| {
            env.insert("FERRY_TABLE".into(), "no-such-table".into());
        })
        .await;
    // A real signed callback, first delivered to a function whose queue is missing.
    let sink = stack.gateway(&bad_queue).await;
    stack.sims.cw.create(Kind::Company, nimbus()).await;
    let event = sink.events.lock().expect("lock")[0].clone();

    let (status, body) = invoke_intake(&bad_queue, event.clone()).await;
    assert_eq!(status, 503, "an SQS send error is not acknowledged: {body}");
    let (status, body) = invoke_intake(&bad_table, event.clone()).await;
    assert_eq!(
        status, 503,
        "a DynamoDB failure is not acknowledged: {body}"
    );

    // Nothing half-written: the vendor's retry is accepted as new, once.
    let (status, body) = invoke_intake(&stack.deps, event.clone()).await;
    assert_eq!(
        (status, body.contains("\"accepted\":1")),
        (200, true),
        "{body}"
    );
    let (status, body) = invoke_intake(&stack.deps, event).await;
    assert_eq!(
        (status, body.contains("\"accepted\":0")),
        (200, true),
        "a second delivery is a duplicate: {body}"
    );
    assert_eq!(
        stack
            .deps
            .queue
            .depth(QueueName::Transform)
            .await
            .expect("depth")
            .total(),
        1
    );

    // A forged signature is refused before anything is stored.
    let headers = axum::http::HeaderMap::from_iter([(
        axum::http::HeaderName::from_static("x-content-signature"),
        axum::http::HeaderValue::from_static("Zm9yZ2Vk"),
    )]);
    let path = format!("/webhooks/connectwise/{}", stack.tenant);
    let body = json!({"MessageId": "m-forged", "Action": "updated", "Type": "company", "ID": 100,
        "Entity": "{}", "Metadata": {"key_url": stack.sims.cw.key_url()}});
    let forged = http_api_event("POST", &path, &headers, body.to_string().as_bytes());
    let (status, _) = invoke_intake(&stack.deps, forged).await;
    assert_eq!(status, 401);
    assert_eq!(
        stack
            .deps
            .queue
            .depth(QueueName::Transform)
            .await
            .expect("depth")
            .total(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_fails_alone_until_the_dlq_takes_it_and_the_sweep_parks_it() {
    let stack = AwsStack::start(&small_firm(), 2).await;
    let _gateway = stack.gateway(&stack.deps).await;
    stack
        .deps
        .queue
        .send(
            QueueName::Transform,
            vec![OutboundMessage::now("{\"type\": \"nonsense\"}".into())],
        )
        .await
        .expect("send poison");
    let company = stack.sims.cw.create(Kind::Company, nimbus()).await;
    let id = company["id"].as_i64().expect("id");

    // First delivery: the batch holds both; only the poison is reported failed.
    let first = poll_once(
        &stack,
        &stack.deps,
        QueueName::Transform,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!((first.deleted, first.failed), (1, 1), "{first:?}");
    // Second delivery (maxReceiveCount 2): failed again; the next receive redrives it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = poll_once(
        &stack,
        &stack.deps,
        QueueName::Transform,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!((second.deleted, second.failed), (0, 1), "{second:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drain(&stack, &stack.deps, Duration::from_secs(60)).await;
    assert_eq!(
        contacts_numbered(&stack, id).len(),
        1,
        "the good message was unaffected"
    );

    let dlq = stack
        .deps
        .queue
        .depth(QueueName::TransformDlq)
        .await
        .expect("depth");
    assert_eq!(dlq.visible, 1, "the poison is in the dead-letter queue");
    let summary = ferry_lambda::handle_schedule(&stack.deps, Schedule::Sweep)
        .await
        .expect("sweep");
    assert_eq!(
        (summary["parked"].as_u64(), summary["unreadable"].as_u64()),
        (Some(0), Some(1)),
        "not an envelope: parked as unreadable, for support: {summary}"
    );
    let open = stack
        .deps
        .exceptions
        .list(&ExceptionQuery {
            tenant: None,
            statuses: vec![ExceptionStatus::Open],
            ..ExceptionQuery::default()
        })
        .await
        .expect("exceptions");
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].owner, Owner::Support);
    assert!(
        open[0].replay_body.contains("nonsense"),
        "the exception keeps the message for replay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_functions_refresh_the_rotating_xero_token_once_and_store_the_new_refresh_token() {
    use ferry_core::ports::Secrets;
    use std::collections::BTreeMap;
    let stack = AwsStack::start(&small_firm(), 5).await;
    // The tenant connects to Xero by OAuth: client credentials and a refresh token.
    let x = stack.sims.xero.config().clone();
    let mut values: BTreeMap<String, String> = stack
        .sims
        .secrets()
        .into_iter()
        .filter(|(k, _)| *k != "xero.access_token")
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    values.insert("xero.client_id".into(), x.client_id.clone());
    values.insert("xero.client_secret".into(), x.client_secret.clone());
    values.insert("xero.refresh_token".into(), x.refresh_token.clone());
    ferry_aws::provision::put_secret(&stack.sdk, &stack.resources, &stack.tenant, &values)
        .await
        .expect("secret");
    // Two functions, each with its own cold start (own secret cache, own lock holder).
    let a = stack.deps_with(|_| {}).await;
    let b = stack.deps_with(|_| {}).await;
    let erp = |d: &ferry_core::Deps| {
        let d = d.clone();
        let t = stack.tenant.clone();
        async move {
            d.tenants
                .context(&t)
                .await
                .expect("tenant")
                .expect("known")
                .erp
                .clone()
        }
    };
    let (ea, eb) = (erp(&a).await, erp(&b).await);

    let (ra, rb) = tokio::join!(ea.closed_through(), eb.closed_through());
    ra.expect("function a reads Xero");
    rb.expect("function b reads Xero");
    assert_eq!(
        stack.sims.xero.token_refreshes(),
        1,
        "one refresh serves both functions"
    );
    let store = ferry_aws::Adapters::new(
        &stack.sdk,
        &stack.resources,
        std::sync::Arc::new(ferry_core::ports::SystemClock),
    )
    .secrets;
    let stored = store
        .get_fresh(&stack.tenant, "xero.refresh_token")
        .await
        .expect("stored refresh token");
    assert_eq!(
        stored.expose(),
        stack.sims.xero.current_refresh_token(),
        "the rotated refresh token is what the secret holds"
    );
    assert_ne!(
        stored.expose(),
        x.refresh_token,
        "the refresh token rotated"
    );

    // Xero stops accepting the access token: both functions get a 401 at once.
    stack.sims.xero.revoke_access_tokens();
    let (ra, rb) = tokio::join!(ea.closed_through(), eb.closed_through());
    ra.expect("function a renews and reads");
    rb.expect("function b renews and reads");
    assert_eq!(
        stack.sims.xero.token_refreshes(),
        2,
        "one more refresh, not one per function"
    );
    assert_eq!(
        store
            .get_fresh(&stack.tenant, "xero.refresh_token")
            .await
            .expect("stored")
            .expose(),
        stack.sims.xero.current_refresh_token()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_webhook_key_takes_effect_without_a_cold_start() {
    use std::collections::BTreeMap;
    let stack = AwsStack::start(&small_firm(), 5).await;
    let deps = stack
        .deps_with(|env| {
            env.insert("FERRY_SECRET_TTL_SECONDS".into(), "1".into());
        })
        .await;
    let xero_event = |key: &str| {
        let body = json!({"events": [{"resourceId": "0b9f4b7e-3a55-4d0f-9d2f-6f1a9c1e2d3f",
            "eventDateUtc": format!("{}", ferry_sim::vendor_now().format("%Y-%m-%dT%H:%M:%S%.3f")),
            "eventType": "UPDATE", "eventCategory": "INVOICE", "tenantId": stack.sims.xero.config().tenant_id,
            "tenantType": "ORGANISATION"}], "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "X"})
        .to_string();
        let sig = ferry_connectors::xero::webhook::sign(key, body.as_bytes());
        let headers = axum::http::HeaderMap::from_iter([(
            axum::http::HeaderName::from_static("x-xero-signature"),
            axum::http::HeaderValue::from_str(&sig).expect("header"),
        )]);
        http_api_event(
            "POST",
            &format!("/webhooks/xero/{}", stack.tenant),
            &headers,
            body.as_bytes(),
        )
    };
    let old = stack.sims.xero.config().webhook_key.clone();
    let (status, _) = invoke_intake(&deps, xero_event(&old)).await;
    assert_eq!(status, 200, "the current key verifies");

    // The partner rotates the key in Secrets Manager.
    let mut values: BTreeMap<String, String> = stack
        .sims
        .secrets()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    values.insert("xero.webhook_key".into(), "rotated-webhook-key".into());
    ferry_aws::provision::put_secret(&stack.sdk, &stack.resources, &stack.tenant, &values)
        .await
        .expect("rotate");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, _) = invoke_intake(&deps, xero_event("rotated-webhook-key")).await;
    assert_eq!(
        status, 200,
        "the rotated key verifies in the same warm function"
    );
    let (status, _) = invoke_intake(&deps, xero_event(&old)).await;
    assert_eq!(status, 401, "the old key no longer does");
}
