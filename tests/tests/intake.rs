//! Webhook intake through the HTTP edge: what is refused, with which status,
//! that nothing is enqueued twice, and that a signed callback is never refused
//! for its age (its body is trusted only when recent).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ferry_core::ports::QueueName;
use ferry_core::usecases::intake::{self, WebhookRequest};
use ferry_tests::*;
use serde_json::{Value, json};

fn callback(
    h: &Harness,
    message_id: &str,
    updated: chrono::DateTime<Utc>,
    key_url: &str,
) -> Vec<u8> {
    callback_with(
        h,
        message_id,
        "added",
        &updated.to_rfc3339_opts(SecondsFormat::Secs, true),
        "Callback Co",
        key_url,
    )
}

fn callback_with(
    h: &Harness,
    message_id: &str,
    action: &str,
    last_updated: &str,
    name: &str,
    key_url: &str,
) -> Vec<u8> {
    let entity = json!({
        "id": 424242, "name": name, "identifier": "CallbackCo",
        "status": {"id": 1, "name": "Active"}, "taxCode": {"id": 1, "name": "Taxable"},
        "currency": {"id": 1, "currencyCode": "USD"},
        "_info": { "lastUpdated": last_updated },
    });
    json!({
        "MessageId": message_id, "Action": action, "Type": "company", "ID": 424242,
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

    let good = callback(&h, "msg-1", h.now(), &key_url);
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

    let other = callback(&h, "msg-2", h.now(), &key_url);
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

    let evil = callback(&h, "msg-5", h.now(), "http://203.0.113.9/key");
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

    // A body that cannot be read cannot be verified either: refused as
    // unauthenticated, with nothing about why (no parser detail for strangers).
    for junk in [b"{not json".to_vec(), vec![0xff, 0xfe, b'{', 0x80, b'}']] {
        let (status, body) = post(&url, junk.clone(), sign(&junk)).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body, json!({"error": "signature does not match"}));
    }

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

/// Sends a signed callback to intake as the pipeline sees it at `now`; returns
/// the HTTP status and the notices it enqueued.
async fn deliver_at(
    h: &Harness,
    now: DateTime<Utc>,
    body: Vec<u8>,
) -> (u16, Vec<ferry_core::messages::ChangeNotice>) {
    let sig = ferry_sim::connectwise::sign(&h.sims.cw.config().signing_key, &body);
    let resp = intake::handle_webhook(
        &h.deps_at(now),
        WebhookRequest {
            route: "connectwise".into(),
            tenant: h.tenant.to_string(),
            headers: vec![("x-content-signature".into(), sig)],
            query: Vec::new(),
            body,
        },
    )
    .await;
    (resp.status, h.take_notices().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_callback_is_never_refused_for_its_age_and_its_body_is_trusted_only_when_recent() {
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    let key_url = h.sims.cw.key_url();
    // One second before a new year, with a 24 h trust window and 5 minutes of skew.
    let now = DateTime::parse_from_rfc3339("2027-12-31T23:59:59Z")
        .expect("valid")
        .with_timezone(&Utc);
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let cases = [
        (stamp(now), true, "updated now"),
        (
            stamp(now - Duration::hours(24)),
            true,
            "exactly 24 hours ago",
        ),
        (
            stamp(now - Duration::hours(24) - Duration::seconds(1)),
            false,
            "a second older",
        ),
        (
            stamp(now - Duration::days(400)),
            false,
            "400 days ago (a late retry)",
        ),
        (
            stamp(now + Duration::minutes(5)),
            true,
            "5 minutes ahead (clock skew)",
        ),
        (
            stamp(now + Duration::minutes(5) + Duration::seconds(1)),
            false,
            "a second further ahead",
        ),
        (stamp(now + Duration::days(1)), false, "next year"),
        ("not a date".to_string(), false, "an unreadable lastUpdated"),
    ];
    for (i, (last_updated, fat, what)) in cases.iter().enumerate() {
        let body = callback_with(
            &h,
            &format!("age-{i}"),
            "updated",
            last_updated,
            "Callback Co",
            &key_url,
        );
        let (status, notices) = deliver_at(&h, now, body).await;
        assert_eq!(status, 200, "{what}: a signed callback is accepted");
        assert_eq!(notices.len(), 1, "{what}: one notice");
        let n = &notices[0];
        assert_eq!(
            (n.record.is_some(), n.version.is_some()),
            (*fat, *fat),
            "{what}: body trusted = {fat}"
        );
        if *fat {
            assert_eq!(
                n.version.as_ref().map(|v| stamp(v.updated_at)).as_deref(),
                Some(last_updated.as_str())
            );
        }
    }
    // A deletion carries no body either way; the same delivery again is a duplicate.
    let gone = callback_with(
        &h,
        "age-del",
        "deleted",
        &stamp(now - Duration::days(9)),
        "x",
        &key_url,
    );
    let (status, notices) = deliver_at(&h, now, gone.clone()).await;
    assert_eq!((status, notices.len()), (200, 1));
    assert!(notices[0].record.is_none() && notices[0].version.is_none());
    let (status, notices) = deliver_at(&h, now + Duration::days(2), gone).await;
    assert_eq!((status, notices.len()), (200, 0), "a redelivery is deduped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_or_early_callback_posts_the_record_as_connectwise_has_it_now() {
    let h = Harness::start(small_firm()).await;
    let key_url = h.sims.cw.key_url();
    // Created while Ferry was not listening: no callback, no poll yet.
    h.sims.cw.seed(
        Kind::Company,
        vec![
            json!({"id": 424242, "identifier": "CallbackCo", "name": "Callback Co (renamed)",
            "status": {"id": 1, "name": "Active"}, "taxCode": {"id": 1, "name": "Taxable"},
            "currency": {"id": 1, "currencyCode": "USD"}}),
        ],
    );
    let named = |name: &str| {
        h.sims
            .xero
            .contacts()
            .into_iter()
            .filter(|c| c["Name"] == name)
            .count()
    };
    // ConnectWise's retry of the original "added" arrives three days late, with the old name.
    let now = h.now();
    let late = callback_with(
        &h,
        "late-1",
        "added",
        &(now - Duration::days(3)).to_rfc3339_opts(SecondsFormat::Secs, true),
        "Callback Co",
        &key_url,
    );
    let sig = ferry_sim::connectwise::sign(&h.sims.cw.config().signing_key, &late);
    let url = h.edge.url("connectwise", h.tenant.as_str());
    let (status, body) = post(&url, late, Some(sig)).await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    h.settle().await;
    assert_eq!(
        named("Callback Co (renamed)"),
        1,
        "the current record was posted"
    );
    assert_eq!(named("Callback Co"), 0, "not the late body");

    // A body stamped a day ahead of Ferry's clock is not trusted either, so it
    // cannot hold back the real change that follows it.
    let early = callback_with(
        &h,
        "early-1",
        "updated",
        &(now + Duration::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
        "Callback Co (from tomorrow)",
        &key_url,
    );
    let sig = ferry_sim::connectwise::sign(&h.sims.cw.config().signing_key, &early);
    let (status, _) = post(&url, early, Some(sig)).await;
    assert_eq!(status, 200);
    h.settle().await;
    assert_eq!(named("Callback Co (from tomorrow)"), 0);
    h.sims
        .cw
        .update(Kind::Company, 424242, |c| {
            c["name"] = json!("Callback Co 3")
        })
        .await
        .expect("company exists");
    h.settle().await;
    assert_eq!(named("Callback Co 3"), 1, "the real change posts");
    assert_eq!(
        h.sims
            .xero
            .contacts()
            .iter()
            .filter(|c| c["Name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Callback Co")))
            .count(),
        1,
        "one contact"
    );
}

/// Xero documents that are neither voided nor deleted.
fn live(docs: Vec<Value>) -> Vec<Value> {
    docs.into_iter()
        .filter(|d| d["Status"] != "VOIDED" && d["Status"] != "DELETED")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credit_memo_deleted_in_connectwise_leaves_xero_though_its_deletion_names_no_type() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let cm = h
        .sims
        .cw
        .all(Kind::Invoice)
        .into_iter()
        .find(|i| i["type"] == "CreditMemo")
        .expect("the firm has a credit memo");
    let id = cm["id"].as_i64().expect("id");
    let before = live(h.sims.xero.credit_notes()).len();
    assert!(before >= 1, "the credit memo became a Xero credit note");
    // ConnectWise's "deleted" callback says Type "invoice" and carries no entity type.
    assert!(h.sims.cw.delete(Kind::Invoice, id).await);
    h.settle().await;
    assert_eq!(
        live(h.sims.xero.credit_notes()).len(),
        before - 1,
        "the credit note was voided"
    );
    assert!(
        h.disposition(ferry_canon::Domain::CreditMemos, id)
            .await
            .is_some(),
        "kept under the credit memo's own key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_arrives_after_its_records_deletion_does_not_bring_it_back() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let invoice = h
        .sims
        .cw
        .all(Kind::Invoice)
        .into_iter()
        .find(|i| i["type"] == "Standard")
        .expect("a standard invoice");
    let id = invoice["id"].as_i64().expect("id");
    let number = invoice["invoiceNumber"]
        .as_str()
        .expect("number")
        .to_string();
    let in_xero = || {
        h.sims
            .xero
            .invoices()
            .into_iter()
            .filter(|i| i["InvoiceNumber"] == number.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(live(in_xero()).len(), 1, "posted: {:?}", in_xero());
    assert!(h.sims.cw.delete(Kind::Invoice, id).await);
    h.settle().await;
    assert!(live(in_xero()).is_empty(), "voided after the deletion");
    // An update sent before the deletion arrives after it, stamped by a
    // ConnectWise clock running four minutes fast (within the trusted skew).
    let mut entity = invoice.clone();
    entity["_info"]["lastUpdated"] =
        json!((h.now() + Duration::minutes(4)).to_rfc3339_opts(SecondsFormat::Secs, true));
    let body = json!({
        "MessageId": "late-update", "Action": "updated", "Type": "invoice", "ID": id,
        "Entity": entity.to_string(), "Metadata": { "key_url": h.sims.cw.key_url() },
    })
    .to_string()
    .into_bytes();
    let sig = ferry_sim::connectwise::sign(&h.sims.cw.config().signing_key, &body);
    let (status, _) = post(
        &h.edge.url("connectwise", h.tenant.as_str()),
        body,
        Some(sig),
    )
    .await;
    assert_eq!(status, 200);
    h.settle().await;
    assert!(live(in_xero()).is_empty(), "still voided: {:?}", in_xero());
    let key = format!("invoices/connectwise:{id}");
    assert!(
        !h.open_exceptions()
            .await
            .iter()
            .any(|e| e.source_key == key),
        "and nobody is asked to act on a record that no longer exists"
    );
}

/// A raw HTTP/1.1 exchange with the edge: what it answers, or `None` when it
/// closes the connection without an answer.
async fn raw_exchange(origin: &str, request: &[u8]) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = origin.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tcp.read_to_end(&mut out),
    )
    .await
    .expect("the edge ends a stalled request well within 20 s");
    let _ = read;
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_callbacks_cannot_grow_memory_or_make_ferry_fetch_keys_without_bound() {
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    let url = h.edge.url("connectwise", "test-firm");
    let key = h.sims.cw.config().signing_key.clone();
    let key_url = h.sims.cw.key_url();
    let good = callback(&h, "msg-good-1", h.now(), &key_url);
    let sig = ferry_sim::connectwise::sign(&key, &good);
    assert_eq!(post(&url, good, Some(sig)).await.0, 200);
    let before = h.sims.cw.stats().key_fetches;
    assert_eq!(before, 1, "the key was fetched once");

    // 300 forgeries, each naming its own key URL at the allowed origin (some
    // just under the URL length limit, some over), and 50 more naming the real one.
    for i in 0..300 {
        let pad = "p".repeat(if i % 2 == 0 { 300 } else { 600 });
        let forged_url = format!("{key_url}&n={i}&pad={pad}");
        let body = callback(&h, &format!("forged-{i}"), h.now(), &forged_url);
        let sig = ferry_sim::connectwise::sign("not the key", &body);
        let (status, answer) = post(&url, body, Some(sig)).await;
        assert_eq!(
            (status, answer),
            (401, json!({"error": "signature does not match"})),
            "forgery {i}: unsigned, it learns nothing about its key URL"
        );
    }
    // Nor does one naming an allowed origin's key URL that cannot be read.
    let origin = key_url
        .split("/v4_6_release")
        .next()
        .expect("origin")
        .to_string();
    let body = callback(&h, "forged-nope", h.now(), &format!("{origin}/nope"));
    let sig = ferry_sim::connectwise::sign("not the key", &body);
    assert_eq!(
        post(&url, body, Some(sig)).await,
        (401, json!({"error": "signature does not match"}))
    );
    for i in 0..50 {
        let body = callback(&h, &format!("forged-real-{i}"), h.now(), &key_url);
        let sig = ferry_sim::connectwise::sign("not the key", &body);
        assert_eq!(post(&url, body, Some(sig)).await.0, 401);
    }
    let fetched = h.sims.cw.stats().key_fetches - before;
    assert!(
        fetched <= ferry_connectors::connectwise::webhook::FETCHES_PER_MINUTE as u64,
        "350 forgeries made {fetched} key fetches"
    );

    // The real key is still cached (forged keys are never kept, so none pushed
    // it out): ConnectWise's own deliveries pass without another fetch.
    let fetches = h.sims.cw.stats().key_fetches;
    let good = callback(&h, "msg-good-2", h.now(), &key_url);
    let sig = ferry_sim::connectwise::sign(&key, &good);
    assert_eq!(post(&url, good, Some(sig)).await.0, 200);
    assert_eq!(h.sims.cw.stats().key_fetches, fetches);
    assert_eq!(
        enqueued(&h).await,
        2,
        "only the two real callbacks were queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_of_the_edge_is_json_and_a_stalled_client_is_let_go() {
    let h = Harness::start_opts(Options {
        host: false,
        settings: ferry_core::Settings {
            edge_read_timeout: std::time::Duration::from_secs(1),
            ..Options::default().settings
        },
        ..Options::default()
    })
    .await;
    let url = h.edge.url("connectwise", "test-firm");
    let limit = h.deps.settings.max_webhook_body;
    // Just over the limit, and far over it: the same answer.
    for size in [limit + 1, limit * 3] {
        let (status, body) = post(&url, vec![b' '; size], None).await;
        assert_eq!(status, 413, "{size} bytes");
        assert_eq!(
            body,
            json!({"error": format!("body exceeds the {limit} byte limit")}),
            "{size} bytes"
        );
    }
    let http = reqwest::Client::new();
    let nowhere = http
        .get(format!("{}/no/such/path", h.edge.origin()))
        .send()
        .await
        .expect("answer");
    assert_eq!(nowhere.status().as_u16(), 404);
    assert_eq!(
        nowhere.json::<Value>().await.expect("json"),
        json!({"error": "not found"})
    );
    // A path that is not UTF-8 is not found, in JSON like the rest.
    let answer = raw_exchange(
        &h.edge.origin(),
        b"POST /webhooks/%FF/test-firm HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.ends_with(r#"{"error":"not found"}"#), "{answer}");
    // A body announced larger than the limit is refused before it is sent.
    let started = std::time::Instant::now();
    let answer = raw_exchange(
        &h.edge.origin(),
        b"POST /webhooks/connectwise/test-firm HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let wrong_method = http.get(&url).send().await.expect("answer");
    assert_eq!(wrong_method.status().as_u16(), 405);
    assert_eq!(
        wrong_method.json::<Value>().await.expect("json"),
        json!({"error": "method not allowed"})
    );

    // Headers never finished: the connection is closed.
    let started = std::time::Instant::now();
    let answer = raw_exchange(
        &h.edge.origin(),
        b"POST /webhooks/connectwise/test-firm HTTP/1.1\r\nHost: x\r\nContent-Le",
    )
    .await;
    assert!(
        answer
            .as_deref()
            .is_none_or(|a| a.starts_with("HTTP/1.1 408")),
        "{answer:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // Headers sent, body promised but never sent: a JSON 408.
    let answer = raw_exchange(
        &h.edge.origin(),
        b"POST /webhooks/connectwise/test-firm HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{",
    )
    .await
    .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.ends_with(r#"{"error":"the body did not arrive in time"}"#),
        "{answer}"
    );
}
