//! Every request Ferry sent to a vendor, and every answer it read, validates
//! against the vendor's OpenAPI: Xero's official one
//! (`specs/xero/xero_accounting.yaml`, MIT) and Harvest's
//! (`specs/harvest/harvest-openapi.yaml`, MIT). The exchanges come from runs
//! that exercise every call Ferry makes: for Xero batch writes, lookups after a
//! lost response, the organisation, a payment read back and reconciliation's
//! paged reads; for Harvest every read, the deletion sweep's dated reads and
//! the payment write-back.

use std::collections::BTreeMap;

use ferry_core::usecases::reconcile;
use ferry_tests::openapi::{Call, Spec, errors};
use ferry_tests::*;
use serde_json::json;

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

    let spec = Spec::load("xero/xero_accounting.yaml");
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for x in h.sims.xero.exchanges() {
        let (name, problems) = spec.check(&Call {
            method: &x.method,
            path: &x.path,
            query: None,
            request: x.request.as_ref(),
            status: x.status,
            response: &x.response,
        });
        failures.extend(problems);
        if let Some(name) = name {
            *checked.entry(name).or_default() += 1;
        }
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
    let spec = Spec::load("xero/xero_accounting.yaml");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_harvest_request_and_response_matches_its_openapi_and_payments_write_back_once() {
    use ferry_canon::{Currency, Domain, Money};
    use ferry_core::ConnectorError;
    use ferry_core::ports::{Cursor, PaymentUpdate, PsaConnector};
    use ferry_tests::harvest::HarvestAccount;
    use rust_decimal::Decimal;

    let a = HarvestAccount::start().await;
    let c = a.client("Hooli Inc.", "USD");
    let p = a.project(&c, "Cloud migration", false);
    let t = a.task(&p, 7, "Programming");
    let u = a.user("Chloe", "Costa");
    let e = a.time(&u, &p, &t, "2031-05-04", "7.5", "187.5", true);
    a.expense(&u, &p, "2031-05-05", "212.40");
    let inv = a.invoice(&c, &p, "2031-05-31", "1000.00");
    let h = a.connect(2);
    let domains = h.pollable();
    for d in &domains {
        let all = h.changes(*d, None, 100).await.expect("changes");
        assert!(!all.is_empty(), "{d} has records");
        let last = all.last().expect("a record");
        h.changes(*d, Some(&Cursor::new(last.version.updated_at, "")), 100)
            .await
            .expect("changes since");
        let one = h.fetch(*d, &last.id).await.expect("fetch").expect("exists");
        h.to_canonical(&ferry_canon::TenantId::parse("t").expect("t"), &one)
            .unwrap_or_else(|err| panic!("{d} {} maps: {err}", one.id));
    }
    assert!(
        h.fetch(Domain::TimeEntries, "999999999")
            .await
            .expect("404 read")
            .is_none()
    );
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(2031, 5, 1).expect("date"),
        chrono::NaiveDate::from_ymd_opt(2031, 5, 31).expect("date"),
    );
    for d in h.swept() {
        assert_eq!(
            h.list_period(d, from, to).await.expect("period").len(),
            1,
            "{d}"
        );
    }
    a.sim.delete("time_entries", e["id"].as_i64().expect("id"));
    assert!(
        h.list_period(Domain::TimeEntries, from, to)
            .await
            .expect("period")
            .is_empty(),
        "a deleted entry is gone from the sweep's read"
    );

    // Payment write-back: the difference, once, whatever the retries.
    let id = inv["id"].to_string();
    let usd = Currency::parse("USD").expect("usd");
    let update = |paid: &str| PaymentUpdate {
        amount_paid: Money::new(paid.parse::<Decimal>().expect("amount"), usd),
        amount_due: Money::new(Decimal::ZERO, usd),
        paid_on: Some(to),
        erp_reference: "INV-0042".into(),
    };
    h.apply_payment(&id, &update("400.00"))
        .await
        .expect("partial payment");
    h.apply_payment(&id, &update("400.00"))
        .await
        .expect("a repeat is a no-op");
    h.apply_payment(&id, &update("1100.00"))
        .await
        .expect("the rest");
    let paid: Vec<Decimal> = a
        .sim
        .payments(inv["id"].as_i64().expect("id"))
        .iter()
        .map(|p| dec(&p["amount"]))
        .collect();
    assert_eq!(paid, vec![Decimal::new(400, 0), Decimal::new(700, 0)]);
    assert_eq!(
        a.sim
            .get("invoices", inv["id"].as_i64().expect("id"))
            .expect("invoice")["state"],
        "paid"
    );
    assert!(
        matches!(
            h.apply_payment(&id, &update("100.00")).await,
            Err(ConnectorError::Rejected { status: 409, .. })
        ),
        "a smaller amount (a reversal) needs a person"
    );

    let spec = Spec::load("harvest/harvest-openapi.yaml");
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for x in a.sim.exchanges() {
        let (name, problems) = spec.check(&Call {
            method: &x.method,
            path: &x.path,
            query: Some(&x.query),
            request: x.request.as_ref(),
            status: x.status,
            response: &x.response,
        });
        failures.extend(problems);
        if let Some(name) = name {
            *checked.entry(name).or_default() += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "spec violations:\n{}",
        failures.join("\n")
    );
    for op in [
        "GET /clients",
        "GET /projects",
        "GET /task_assignments",
        "GET /projects/{projectId}/task_assignments",
        "GET /users",
        "GET /time_entries",
        "GET /time_entries/{timeEntryId}",
        "GET /expenses",
        "GET /invoices",
        "GET /invoices/{invoiceId}/payments",
        "POST /invoices/{invoiceId}/payments",
    ] {
        assert!(
            checked.contains_key(op),
            "the run exercised {op}: {checked:?}"
        );
    }
}

#[test]
fn the_harvest_validator_catches_what_harvest_would_not_send() {
    let spec = Spec::load("harvest/harvest-openapi.yaml");
    let page = json!({ "time_entries": [], "per_page": 100, "total_pages": 1, "total_entries": 0,
        "next_page": null, "previous_page": null, "page": 1,
        "links": { "first": "https://api.harvestapp.com/v2/time_entries?page=1", "next": null,
                   "previous": null, "last": "https://api.harvestapp.com/v2/time_entries?page=1" } });
    let call = |q: &BTreeMap<String, String>, response: &serde_json::Value| {
        spec.check(&Call {
            method: "GET",
            path: "time_entries",
            query: Some(q),
            request: None,
            status: 200,
            response,
        })
        .1
    };
    let mut q = BTreeMap::new();
    q.insert(
        "updated_since".to_string(),
        "2031-01-01T00:00:00Z".to_string(),
    );
    assert!(call(&q, &page).is_empty(), "{:?}", call(&q, &page));
    q.insert("modified_after".to_string(), "x".to_string());
    assert!(
        !call(&q, &page).is_empty(),
        "an unknown query parameter is caught"
    );
    q.remove("modified_after");
    let mut bad = page.clone();
    bad["total_entries"] = json!("0");
    assert!(!call(&q, &bad).is_empty(), "a count sent as text is caught");
    let mut bad = page;
    bad["time_entries"] = json!([{ "id": 1, "hours": "2.5" }]);
    assert!(!call(&q, &bad).is_empty(), "hours sent as text are caught");
}

/// The conformance suite every simulated connector meets, whatever its vendor:
/// an answer it cannot use (a body that is not JSON, a 500, a 429) is an error
/// of its retry class, never an empty read or a panic; once the vendor answers
/// again, the same read returns the records. Runs on every pair of the
/// simulators' stage (`shared/sim/src/stage.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulated_connector_reads_an_answer_it_cannot_use_as_an_error_of_its_class() {
    use ferry_cli::demo::stage::{Pair, pairs, template};
    use ferry_cli::local::{Local, LocalOptions};
    use ferry_core::ConnectorError;
    use ferry_core::posting::DocKind;
    use ferry_sim::stage::Fault;

    fn class<T>(r: &Result<Vec<T>, ConnectorError>) -> String {
        match r {
            Ok(v) => format!("ok {}", v.len()),
            Err(ConnectorError::Protocol { .. }) => "protocol".into(),
            Err(ConnectorError::Transient { .. }) => "transient".into(),
            Err(ConnectorError::Throttled { .. }) => "throttled".into(),
            Err(e) => format!("other: {e}"),
        }
    }
    let expect = |f: Fault| match f {
        Fault::NotJson => "protocol",
        Fault::ServerError => "transient",
        Fault::Throttled => "throttled",
    };
    let spec = small_firm();
    let (from, to) = (spec.month, spec.month + chrono::Months::new(1));
    assert!(pairs().len() >= 2, "the stage has pairs: {:?}", pairs());
    for (psa, erp) in pairs() {
        let pair = Pair::start(psa, erp, &spec)
            .await
            .expect("simulators start");
        let local = Local::open(&LocalOptions::default()).expect("store");
        let tenant = ferry_canon::TenantId::parse("conformance").expect("tenant");
        local
            .add_tenant(
                &pair.tenant_config(&tenant).expect("tenant config"),
                template(psa, erp).expect("template"),
                &pair.secrets(),
            )
            .await
            .expect("tenant wires");
        let ctx = local.tenants.get(&tenant).expect("tenant");
        for fault in Fault::ALL {
            pair.psa.inject(fault);
            let read = ctx
                .psa
                .changes(ferry_canon::Domain::Customers, None, 100)
                .await;
            assert_eq!(class(&read), expect(fault), "{psa} after {fault:?}");
            pair.erp.inject(fault);
            let read = ctx.erp.list_documents(DocKind::Invoice, from, to).await;
            assert_eq!(class(&read), expect(fault), "{erp} after {fault:?}");
        }
        let customers = ctx
            .psa
            .changes(ferry_canon::Domain::Customers, None, 100)
            .await;
        assert!(
            matches!(&customers, Ok(v) if v.len() >= 3),
            "{psa} reads again: {}",
            class(&customers)
        );
        let docs = ctx.erp.list_documents(DocKind::Invoice, from, to).await;
        assert_eq!(class(&docs), "ok 0", "{erp} reads again");
    }
}
