//! Every request Ferry sent to Xero, and every answer it read, validates against
//! Xero's official OpenAPI (`specs/xero/xero_accounting.yaml`, MIT). The
//! exchanges come from a run that exercises every call Ferry makes: batch writes,
//! lookups after a lost response, the organisation, a payment read back, and
//! reconciliation's paged reads.

use std::collections::BTreeMap;

use ferry_cli::local::repo_dir;
use ferry_core::usecases::reconcile;
use ferry_tests::*;
use serde_json::{Value, json};

struct Spec {
    root: Value,
}

impl Spec {
    fn load() -> Spec {
        let text = std::fs::read_to_string(repo_dir().join("specs/xero/xero_accounting.yaml"))
            .expect("spec readable");
        let root: Value = serde_norway::from_str(&text).expect("spec is YAML");
        Spec { root }
    }

    /// The spec path template matching a request path like `Invoices/abc`.
    fn path(&self, actual: &str) -> Option<(String, &Value)> {
        let segs: Vec<&str> = actual.split('/').collect();
        self.root["paths"]
            .as_object()?
            .iter()
            .find_map(|(template, item)| {
                let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
                let fits = t.len() == segs.len()
                    && t.iter()
                        .zip(&segs)
                        .all(|(a, b)| a.starts_with('{') || a == b);
                fits.then(|| (template.clone(), item))
            })
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with("#/components/responses/") => self.resolve(
                &self.root["components"]["responses"][&r["#/components/responses/".len()..]],
            ),
            _ => v,
        }
    }

    /// A validator for a schema (inline or `$ref`) with the spec's components in reach.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        root["components"] = self.root["components"].clone();
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(&root)
            .expect("schema compiles")
    }

    fn request_schema(&self, op: &Value) -> Option<Value> {
        op.pointer("/requestBody/content/application~1json/schema")
            .cloned()
    }

    fn response_schema(&self, op: &Value, status: u16) -> Option<Value> {
        let r = self.resolve(&op["responses"][status.to_string()]);
        r.pointer("/content/application~1json/schema").cloned()
    }
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_xero_request_and_response_matches_the_official_spec() {
    let h = Harness::start(small_firm()).await;
    h.sims.xero.set_faults(XeroFaults {
        lose_next_responses: 1,
        ..XeroFaults::default()
    });
    h.sync().await;
    let invoice = h
        .sims
        .xero
        .invoices()
        .into_iter()
        .find(|i| i["Status"] == "AUTHORISED")
        .expect("a PSA invoice posted as authorised");
    h.sims
        .xero
        .pay_invoice(
            invoice["InvoiceID"].as_str().expect("id"),
            dec(&invoice["Total"]),
            small_firm().month,
        )
        .await
        .expect("payment");
    h.settle().await;
    let end = small_firm().month + chrono::Months::new(1) - chrono::Days::new(1);
    reconcile::run(&h.deps, &h.tenant, small_firm().month, end)
        .await
        .expect("reconcile");

    let spec = Spec::load();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for x in h.sims.xero.exchanges() {
        let Some((template, item)) = spec.path(&x.path) else {
            failures.push(format!("{} {} is not in the spec", x.method, x.path));
            continue;
        };
        let op = &item[x.method.to_lowercase()];
        assert!(
            op.is_object(),
            "{} {template} is not an operation of the spec",
            x.method
        );
        if let (Some(body), Some(schema)) = (&x.request, spec.request_schema(op)) {
            for e in errors(&spec.validator(&schema), body) {
                failures.push(format!("request {} {template}: {e}", x.method));
            }
        }
        match spec.response_schema(op, x.status) {
            Some(schema) => {
                for e in errors(&spec.validator(&schema), &x.response) {
                    failures.push(format!(
                        "response {} {template} {}: {e}",
                        x.method, x.status
                    ));
                }
            }
            None => failures.push(format!(
                "{} {template} answered {}, which the spec does not describe",
                x.method, x.status
            )),
        }
        *checked
            .entry(format!("{} {template}", x.method))
            .or_default() += 1;
    }
    assert!(
        failures.is_empty(),
        "spec violations:\n{}",
        failures.join("\n")
    );
    for op in [
        "POST /Contacts",
        "POST /Invoices",
        "POST /CreditNotes",
        "GET /Organisation",
        "GET /Invoices",
        "GET /Invoices/{InvoiceID}",
        "GET /Payments",
    ] {
        assert!(
            checked.contains_key(op),
            "the run exercised {op}: {checked:?}"
        );
    }
}

#[test]
fn the_validator_rejects_a_request_xero_would_not_accept() {
    let spec = Spec::load();
    let (_, item) = spec.path("Invoices").expect("path");
    let schema = spec.request_schema(&item["post"]).expect("request schema");
    let v = spec.validator(&schema);
    let good = json!({ "Invoices": [{ "Type": "ACCREC", "Contact": { "ContactID": "00000000-0000-0000-0000-000000000001" },
        "LineItems": [{ "Description": "x", "Quantity": 1.5, "UnitAmount": 10 }] }] });
    assert!(errors(&v, &good).is_empty(), "{:?}", errors(&v, &good));
    let mut bad = good.clone();
    bad["Invoices"][0]["LineItems"][0]["Quantity"] = json!("1.5");
    assert!(
        !errors(&v, &bad).is_empty(),
        "a quantity sent as text is caught"
    );
    let mut bad = good;
    bad["Invoices"][0]["Status"] = json!("FINAL");
    assert!(!errors(&v, &bad).is_empty(), "an unknown status is caught");
}
