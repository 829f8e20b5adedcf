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

/// The conformance suite (`ferry_tests::conformance`) on every pair of the
/// simulators' stage (`shared/sim/src/stage.rs`): an answer a connector cannot
/// use is an error of its retry class, never an empty read or a panic. Redmine
/// and Tryton meet the same suite through a fault proxy in `real.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulated_connector_reads_an_answer_it_cannot_use_as_an_error_of_its_class() {
    use ferry_cli::demo::stage::pairs;
    let month = small_firm().month;
    let (from, to) = (month, month + chrono::Months::new(1));
    assert!(pairs().len() >= 2, "the stage has pairs: {:?}", pairs());
    for (psa, erp) in pairs() {
        let ferry_tests::wired::Wired {
            pair,
            local,
            tenant,
            ..
        } = ferry_tests::wired::Wired::start(psa, erp, "conformance").await;
        let ctx = local.tenants.get(&tenant).expect("tenant");
        let (customers, docs) = ferry_tests::conformance::reads_under_faults(
            &ctx,
            &|f| pair.psa.inject(f),
            &|f| pair.erp.inject(f),
            from,
            to,
        )
        .await;
        assert!(
            customers >= 3,
            "{psa} reads its customers again: {customers}"
        );
        assert_eq!(docs, 0, "{erp} reads again: nothing posted yet");
    }
}

/// NetSuite writes are asynchronous batch upserts on Ferry's external id, under
/// an idempotency key: the same batch again is the same job (one document), a
/// new attempt updates the document it made, and a job that never answers
/// leaves documents the next attempt finds by reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netsuite_writes_upsert_on_ferrys_reference_and_a_repeated_batch_is_the_same_job() {
    use ferry_core::ConnectorError;
    use ferry_core::ports::ItemResult;
    use ferry_core::posting::DocKind;
    use ferry_sim::netsuite::NetSuiteFaults;
    use ferry_tests::netsuite::{NetSuiteAccount, customer, invoice};

    let a = NetSuiteAccount::netsuite().await;
    let ok = |r: &ItemResult| match r {
        ItemResult::Ok { erp_id, .. } => erp_id.clone(),
        other => panic!("written: {other:?}"),
    };
    let c = a
        .erp
        .upsert(
            DocKind::Contact,
            &[customer("FERRY-C-1", "Globex Inc.")],
            "attempt-1",
        )
        .await
        .expect("written");
    let id = ok(&c[0]);
    let again = a
        .erp
        .upsert(
            DocKind::Contact,
            &[customer("FERRY-C-1", "Globex Inc.")],
            "attempt-1",
        )
        .await
        .expect("the same batch again");
    assert_eq!(ok(&again[0]), id, "the same job's document");
    let renamed = a
        .erp
        .upsert(
            DocKind::Contact,
            &[customer("FERRY-C-1", "Globex Corporation")],
            "attempt-2",
        )
        .await
        .expect("a new attempt");
    assert_eq!(
        ok(&renamed[0]),
        id,
        "an upsert updates the document it made"
    );
    assert_eq!(
        a.sim().customers().len(),
        1,
        "one customer, whatever the attempts"
    );
    assert_eq!(a.sim().customers()[0]["companyName"], "Globex Corporation");

    // A batch of three where NetSuite refuses one: the others are written, the
    // refusal is in NetSuite's words, results in input order.
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 20).expect("date");
    let mut bad = invoice("FERRY-S-2", &id, day, 3);
    if let ferry_core::posting::DocBody::Invoice(i) = &mut bad.doc.body {
        i.lines[0].item_code = Some("NO-SUCH-ITEM".into());
    }
    let results = a
        .erp
        .upsert(
            DocKind::Invoice,
            &[
                invoice("FERRY-S-1", &id, day, 2),
                bad,
                invoice("FERRY-S-3", &id, day, 5),
            ],
            "attempt-3",
        )
        .await
        .expect("batch");
    assert!(matches!(results[0], ItemResult::Ok { .. }));
    match &results[1] {
        ItemResult::Rejected { messages, .. } => {
            assert!(
                messages.iter().any(|m| m.contains("NO-SUCH-ITEM")),
                "{messages:?}"
            )
        }
        other => panic!("refused: {other:?}"),
    }
    assert!(matches!(results[2], ItemResult::Ok { .. }));
    assert_eq!(a.sim().transactions("invoice").len(), 2);

    // A job that never finishes: the outcome is unknown, the document exists,
    // and the next attempt finds it by reference instead of writing another.
    a.sim().set_faults(NetSuiteFaults {
        jobs_hang: true,
        ..NetSuiteFaults::default()
    });
    let hung = a
        .erp
        .upsert(
            DocKind::Invoice,
            &[invoice("FERRY-S-4", &id, day, 1)],
            "attempt-4",
        )
        .await;
    assert!(
        matches!(hung, Err(ConnectorError::Unanswered { .. })),
        "{hung:?}"
    );
    let found = a
        .erp
        .find_by_reference(&invoice("FERRY-S-4", &id, day, 1).doc)
        .await
        .expect("lookup")
        .expect("the document the unanswered job wrote");
    a.sim().set_faults(NetSuiteFaults::default());
    assert_eq!(a.sim().transactions("invoice").len(), 3);
    let doc = a
        .erp
        .fetch_document(DocKind::Invoice, &found.erp_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(doc.subtotal, rust_decimal::Decimal::from(150));
    assert_eq!(
        doc.lines[0].quantity,
        rust_decimal::Decimal::ONE,
        "lines read as the document shows them"
    );
    assert_eq!(
        doc.state,
        ferry_core::ports::ErpState::Submitted,
        "a draft is pending approval"
    );
}

/// An ERP's invoices dated in one day, read back in the ERP's pages: the
/// paging contract's subject for an ERP Ferry writes to itself.
struct InvoicesInPeriod {
    name: &'static str,
    page: usize,
    erp: std::sync::Arc<dyn ferry_core::ports::ErpConnector>,
    contact: String,
    refs: Vec<String>,
    /// The ERP's tax code and department dimension for the invoices' lines.
    tax: &'static str,
    department: &'static str,
}

impl InvoicesInPeriod {
    fn day() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2031, 3, 15).expect("date")
    }

    /// Writes a customer to the ERP and starts with no invoices.
    async fn new(
        name: &'static str,
        page: usize,
        erp: std::sync::Arc<dyn ferry_core::ports::ErpConnector>,
        tax: &'static str,
        department: &'static str,
    ) -> Self {
        let c = erp
            .upsert(
                ferry_core::posting::DocKind::Contact,
                &[ferry_tests::netsuite::customer("PG-C", "Paging Ltd")],
                "paging-contact",
            )
            .await
            .expect("contact");
        let contact = match &c[0] {
            ferry_core::ports::ItemResult::Ok { erp_id, .. } => erp_id.clone(),
            other => panic!("{other:?}"),
        };
        InvoicesInPeriod {
            name,
            page,
            erp,
            contact,
            refs: Vec::new(),
            tax,
            department,
        }
    }
}

#[async_trait::async_trait]
impl ferry_testkit::contracts::PagedRead for InvoicesInPeriod {
    fn name(&self) -> String {
        self.name.into()
    }
    fn page_size(&self) -> usize {
        self.page
    }
    async fn grow_to(&mut self, n: usize) -> Vec<String> {
        let items: Vec<_> = (self.refs.len()..n)
            .map(|k| {
                ferry_tests::netsuite::invoice_with(
                    &format!("PG-{k:05}"),
                    &self.contact,
                    Self::day(),
                    1,
                    self.tax,
                    self.department,
                )
            })
            .collect();
        for (b, chunk) in items.chunks(100).enumerate() {
            let r = self
                .erp
                .upsert(
                    ferry_core::posting::DocKind::Invoice,
                    chunk,
                    &format!("grow-{}-{b}", self.refs.len()),
                )
                .await
                .expect("seeded");
            assert!(
                r.iter()
                    .all(|x| matches!(x, ferry_core::ports::ItemResult::Ok { .. })),
                "{r:?}"
            );
        }
        self.refs
            .extend(items.iter().map(|i| i.doc.reference.clone()));
        self.refs.clone()
    }
    async fn read_all(&self) -> Result<Vec<String>, String> {
        let docs = self
            .erp
            .list_documents(
                ferry_core::posting::DocKind::Invoice,
                Self::day(),
                Self::day(),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(docs
            .into_iter()
            .map(|d| d.reference.unwrap_or(d.erp_id))
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netsuite_suiteql_reads_meet_the_paging_contract() {
    let a = ferry_tests::netsuite::NetSuiteAccount::netsuite().await;
    let mut subject = InvoicesInPeriod::new(
        "NetSuite invoices in a period (SuiteQL)",
        ferry_connectors::netsuite::client::SUITEQL_PAGE,
        a.erp.clone(),
        "TAX",
        "department",
    )
    .await;
    ferry_testkit::contracts::paging(&mut subject).await;
}

/// Business Central's webhooks: Ferry subscribes itself (the simulator
/// validates the endpoint by calling it with a token Ferry must echo), renews
/// before the three days run out, and takes a notification only with the
/// subscription's clientState.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_central_subscriptions_are_validated_renewed_and_need_the_client_state() {
    use ferry_sim::businesscentral::stage::OnStage;

    let wired = ferry_tests::wired::Wired::start("connectwise", "businesscentral", "bc-test").await;
    let (edge, done) = wired.listen().await;
    let ferry_tests::wired::Wired {
        pair,
        local,
        tenant,
        ..
    } = wired;
    let bc = &(pair.erp.as_any() as &dyn std::any::Any)
        .downcast_ref::<OnStage>()
        .expect("the Business Central stage")
        .bc;
    let url = edge.url("businesscentral", tenant.as_str());

    assert_eq!(done.len(), 1, "{done:?}");
    let subs = bc.subscriptions();
    assert_eq!(subs.len(), 1, "validated by the echo, then created");
    assert_eq!(subs[0]["notificationUrl"], url.as_str());
    let first_expiry = subs[0]["expirationDateTime"]
        .as_str()
        .expect("expiry")
        .to_string();

    // A day later nothing needs doing; two days later the subscription is renewed.
    let ctx = local.tenants.get(&tenant).expect("tenant");
    let hook = ctx
        .webhooks
        .get("businesscentral")
        .expect("a webhook route");
    let now = local.deps.clock.now();
    let held = hook
        .subscribe(&url, now + chrono::Duration::days(1))
        .await
        .expect("checked");
    assert!(held.is_some_and(|w| w.contains("holds")), "no renewal yet");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let renewed = hook
        .subscribe(&url, now + chrono::Duration::days(2))
        .await
        .expect("renewed");
    assert!(renewed.is_some_and(|w| w.contains("renewed")));
    assert!(
        bc.subscriptions()[0]["expirationDateTime"]
            .as_str()
            .expect("expiry")
            > first_expiry.as_str(),
        "the renewal moved the expiry"
    );
    assert_eq!(bc.subscriptions().len(), 1, "renewed, not duplicated");

    // The handshake is answered as Business Central expects; a notification
    // without the clientState is refused, one with it accepted.
    let http = reqwest::Client::new();
    let hs = http
        .post(format!("{url}?validationToken=tok%20123"))
        .send()
        .await
        .expect("handshake");
    assert_eq!(hs.status(), 200);
    assert_eq!(hs.headers()["content-type"], "text/plain");
    assert_eq!(hs.text().await.expect("body"), "tok 123");
    let note = |state: &str| {
        json!({ "value": [{ "subscriptionId": "s", "clientState": state,
            "resource": "api/v2.0/companies(c0ffee00-0000-4000-8000-000000000001)/salesInvoices(5d115c9c-44e3-ea11-bb43-000d3a2feca1)",
            "changeType": "updated", "lastModifiedDateTime": "2026-11-30T10:00:00Z" }] })
    };
    let forged = http
        .post(&url)
        .json(&note("guessed"))
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), 401);
    let genuine = http
        .post(&url)
        .json(&note("ferry-bc-client-state-demo"))
        .send()
        .await
        .expect("sent");
    assert_eq!(genuine.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_central_reads_meet_the_paging_contract() {
    // Business Central's server paging: `@odata.nextLink`, 100 a page in the simulator.
    let w = ferry_tests::wired::Wired::start("connectwise", "businesscentral", "bc-paging").await;
    let mut subject = InvoicesInPeriod::new(
        "Business Central sales invoices in a period",
        100,
        w.erp.clone(),
        "TAXABLE",
        "DEPARTMENT",
    )
    .await;
    ferry_testkit::contracts::paging(&mut subject).await;
}

/// More changes than Business Central announces one by one arrive as one
/// `collection` notification naming a `lastModifiedDateTime` filter: Ferry
/// reads the invoices it names and queues each as a notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_central_collection_notification_is_read_as_the_invoices_it_names() {
    use ferry_core::ports::{ItemResult, QueueName};
    use ferry_core::posting::{DocBody, DocKind, DocStatus};
    use ferry_sim::businesscentral::BcFaults;
    use ferry_sim::businesscentral::stage::OnStage;

    let wired =
        ferry_tests::wired::Wired::start("connectwise", "businesscentral", "bc-collection").await;
    let (_edge, _) = wired.listen().await;
    let ferry_tests::wired::Wired {
        pair, local, erp, ..
    } = wired;
    let bc = &(pair.erp.as_any() as &dyn std::any::Any)
        .downcast_ref::<OnStage>()
        .expect("the Business Central stage")
        .bc;
    let c = erp
        .upsert(
            DocKind::Contact,
            &[ferry_tests::netsuite::customer(
                "FERRY-C-9",
                "Collection Ltd",
            )],
            "k1",
        )
        .await
        .expect("customer");
    let ItemResult::Ok {
        erp_id: contact, ..
    } = &c[0]
    else {
        panic!("{c:?}")
    };
    let day = chrono::NaiveDate::from_ymd_opt(2031, 3, 15).expect("date");
    let mut inv =
        ferry_tests::netsuite::invoice_with("FERRY-I-9", contact, day, 2, "TAXABLE", "DEPARTMENT");
    if let DocBody::Invoice(i) = &mut inv.doc.body {
        i.status = DocStatus::Authorised;
    }
    let r = erp
        .upsert(DocKind::Invoice, &[inv], "k2")
        .await
        .expect("invoice");
    let ItemResult::Ok {
        erp_id: invoice, ..
    } = &r[0]
    else {
        panic!("{r:?}")
    };
    assert_eq!(
        bc.documents("salesInvoices")[0]["status"],
        "Open",
        "posted by Ferry"
    );

    let before = local
        .deps
        .queue
        .depth(QueueName::Transform)
        .await
        .expect("depth")
        .total();
    bc.set_faults(BcFaults {
        collection_next: 1,
        ..BcFaults::default()
    });
    bc.pay(invoice, rust_decimal::Decimal::from(100), day)
        .await
        .expect("paid");
    assert_eq!(
        bc.notifications_sent(),
        1,
        "the collection notification was accepted"
    );
    let after = local
        .deps
        .queue
        .depth(QueueName::Transform)
        .await
        .expect("depth")
        .total();
    assert_eq!(
        after - before,
        1,
        "the paid invoice the filter names is queued"
    );
}
