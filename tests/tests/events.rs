//! The sample Lambda events in `events/<function>/` are real-shaped inputs of
//! the function they sit under: each parses into what that function acts on.

use std::path::{Path, PathBuf};

use aws_lambda_events::sqs::SqsEvent;
use ferry_core::messages::Envelope;
use ferry_lambda::serve::{reconcile_input, retry_input};
use ferry_lambda::{Schedule, intake_schedule};
use lambda_http::request::LambdaRequest;
use serde_json::Value;

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn fixtures(function: &str) -> Vec<(String, Value)> {
    let dir = events_dir().join(function);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            let v = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()));
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                v,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no sample events for {function}");
    out
}

fn sqs_bodies(name: &str, v: Value) -> Vec<Envelope> {
    let event: SqsEvent =
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{name} is not an SQS event: {e}"));
    assert!(!event.records.is_empty(), "{name} has no records");
    event
        .records
        .iter()
        .filter_map(|r| {
            let body = r.body.as_deref().expect("a body");
            // Poison records (message ids ending in `dead`) must not parse; the rest must.
            if r.message_id
                .as_deref()
                .is_some_and(|id| id.ends_with("dead"))
            {
                assert!(
                    Envelope::from_body(body).is_err(),
                    "{name}: the poison record parses"
                );
                return None;
            }
            Some(Envelope::from_body(body).unwrap_or_else(|e| panic!("{name}: {e}")))
        })
        .collect()
}

#[test]
fn intake_samples_are_webhooks_or_polls() {
    for (name, v) in fixtures("intake") {
        // As lambda_http reads it: an HTTP API request, or a pass-through event.
        let read: LambdaRequest =
            serde_json::from_value(v.clone()).expect("lambda_http reads every event");
        match (name.as_str(), read) {
            (name, LambdaRequest::PassThrough(_)) => match (name, intake_schedule(v)) {
                ("scheduled.json", Ok(s)) => assert!(
                    matches!(s, Schedule::Poll { tenant: None, ref domains } if domains.is_empty()),
                    "a bare schedule polls every tenant and domain: {s:?}"
                ),
                ("poll-tenant.json", Ok(s)) => assert!(
                    matches!(s, Schedule::Poll { tenant: Some(ref t), ref domains } if t.as_str() == "demo-firm" && domains.len() == 2),
                    "{s:?}"
                ),
                ("subscribe.json", Ok(s)) => assert!(
                    matches!(s, Schedule::Subscribe { tenant: None, ref base } if base.starts_with("https://")),
                    "the renewal schedule names the stack's webhook API: {s:?}"
                ),
                (name, other) => panic!("{name}: unexpected {other:?}"),
            },
            (name, LambdaRequest::ApiGatewayV2(req)) => {
                // webhook-<vendor>-<valid|forged>.json
                let vendor = name
                    .strip_prefix("webhook-")
                    .and_then(|n| n.split('-').next())
                    .unwrap_or_else(|| {
                        panic!("{name} is an HTTP request named webhook-<vendor>-…")
                    });
                assert_eq!(
                    req.raw_path.as_deref(),
                    Some(format!("/webhooks/{vendor}/demo-firm").as_str()),
                    "{name}"
                );
                assert!(req.body.is_some(), "{name} has a body");
            }
            (name, _) => panic!("{name}: neither an HTTP API v2 request nor a schedule"),
        }
    }
}

#[test]
fn queue_samples_carry_the_messages_their_function_reads() {
    for (name, v) in fixtures("transform") {
        for env in sqs_bodies(&name, v) {
            assert!(
                matches!(env, Envelope::Change(_) | Envelope::Resync(_)),
                "{name}: transform reads change notices and resyncs, got {env:?}"
            );
        }
    }
    for (name, v) in fixtures("post") {
        for env in sqs_bodies(&name, v) {
            assert!(
                matches!(env, Envelope::Post(_) | Envelope::Flush(_)),
                "{name}: post reads post commands and flushes, got {env:?}"
            );
        }
    }
}

#[test]
fn schedule_samples_run_the_functions_default_or_their_constant_input() {
    for (name, v) in fixtures("retry") {
        let s = retry_input(v).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(matches!(s, Schedule::Sweep), "{name}: {s:?}");
    }
    for (name, v) in fixtures("reconcile") {
        let s = reconcile_input(v).unwrap_or_else(|e| panic!("{name}: {e}"));
        match name.as_str() {
            "scheduled.json" => assert!(
                matches!(
                    s,
                    Schedule::Reconcile {
                        tenant: None,
                        from: None,
                        to: None
                    }
                ),
                "a bare schedule reconciles last month for everyone: {s:?}"
            ),
            _ => assert!(
                matches!(s, Schedule::Reconcile { tenant: Some(_), from: Some(f), to: Some(t) } if f < t),
                "{name}: {s:?}"
            ),
        }
    }
    let e = reconcile_input(serde_json::json!({"action": "reconcile", "form": "2026-10-01"}))
        .expect_err("a misspelt field is refused, not ignored");
    assert!(e.to_string().contains("form"), "{e}");
}
