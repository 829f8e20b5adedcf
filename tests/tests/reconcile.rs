//! Reconciliation: control totals agree except where an exception explains
//! the difference, and payment status flows back to the PSA.

use ferry_core::usecases::reconcile;
use ferry_tests::*;
use rust_decimal::Decimal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_clean_apart_from_differences_held_by_exceptions_and_payments_flow_back() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    // Customers pay two PSA invoices in Xero; Xero's webhooks bring the status back.
    let psa_invoices: Vec<_> = h
        .sims
        .xero
        .invoices()
        .into_iter()
        .filter(|i| i["Status"] == "AUTHORISED")
        .take(2)
        .collect();
    assert!(!psa_invoices.is_empty());
    for inv in &psa_invoices {
        h.sims
            .xero
            .pay_invoice(
                inv["InvoiceID"].as_str().expect("id"),
                dec(&inv["Total"]),
                small_firm().month,
            )
            .await
            .expect("payment");
    }
    h.settle().await;
    for inv in &psa_invoices {
        let number = inv["Reference"]
            .as_str()
            .expect("reference")
            .trim_start_matches("FERRY-I-")
            .parse::<i64>()
            .expect("psa id");
        let cw = h.sims.cw.get(Kind::Invoice, number).expect("psa invoice");
        assert_eq!(
            dec(&cw["balance"]),
            Decimal::ZERO,
            "the PSA invoice shows paid"
        );
    }

    let month = small_firm().month;
    let end = month + chrono::Months::new(1) - chrono::Days::new(1);
    let report = reconcile::run(&h.deps, &h.tenant, month, end)
        .await
        .expect("reconcile");
    assert!(report.records_compared > 100, "{}", report.records_compared);
    assert!(report.missing.is_empty(), "missing: {:?}", report.missing);
    assert!(
        report.unaccounted.is_empty(),
        "unaccounted: {:?}",
        report.unaccounted
    );
    let unexplained: Vec<_> = report
        .rows
        .iter()
        .filter(|r| !r.mismatches.is_empty())
        .collect();
    assert!(
        unexplained.is_empty(),
        "unexplained differences: {unexplained:#?}"
    );
    assert!(report.clean);
    let held = report.total(|r| &r.held);
    assert!(
        held.hours > Decimal::ZERO,
        "seeded bad time is held back and shown"
    );
    let psa = report.total(|r| &r.psa);
    let erp = report.total(|r| &r.erp);
    assert_eq!(
        psa.hours - held.hours - report.total(|r| &r.in_flight).hours,
        erp.hours
    );
    assert!(
        erp.paid > Decimal::ZERO,
        "payments are counted on both sides"
    );
    assert_eq!(psa.paid - held.paid, erp.paid);

    // A record the pipeline never saw (say, a lost webhook) is reported, not hidden.
    let project = h
        .sims
        .firm
        .projects
        .iter()
        .find(|p| p["billingMethod"] == "ActualRates" && p["department"].is_object())
        .expect("project")
        .clone();
    h.sims.cw.seed(
        Kind::Time,
        vec![serde_json::json!({
            "id": 777_777, "company": project["company"], "chargeToType": "ProjectTicket", "chargeToId": project["id"],
            "project": {"id": project["id"]}, "member": {"id": 2, "identifier": "m1", "name": "Ben"},
            "workRole": {"id": 1, "name": "Consultant"}, "timeStart": format!("{month}T14:00:00Z"),
            "actualHours": 1.0, "billableOption": "Billable", "hourlyRate": 145.00, "status": "ApprovedByTierTwo",
        })],
    );
    let report = reconcile::run(&h.deps, &h.tenant, month, end)
        .await
        .expect("reconcile");
    assert!(!report.clean);
    assert!(
        report.missing.iter().any(|m| m.contains("777777")),
        "{:?}",
        report.missing
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_whose_webhook_never_came_is_found_by_the_if_modified_since_sweep() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    h.sims.xero.set_webhook(None); // Xero's webhook is down
    let inv = h
        .sims
        .xero
        .invoices()
        .into_iter()
        .find(|i| i["Status"] == "AUTHORISED")
        .expect("a PSA invoice in Xero");
    h.sims
        .xero
        .pay_invoice(
            inv["InvoiceID"].as_str().expect("id"),
            dec(&inv["Total"]),
            small_firm().month,
        )
        .await
        .expect("payment");
    h.settle().await;
    let psa_id: i64 = inv["Reference"]
        .as_str()
        .expect("ref")
        .trim_start_matches("FERRY-I-")
        .parse()
        .expect("id");
    assert!(
        dec(&h.sims.cw.get(Kind::Invoice, psa_id).expect("invoice")["balance"]) > Decimal::ZERO,
        "no webhook, nothing yet"
    );
    h.sync().await; // the scheduled poll includes the ERP payment sweep
    assert_eq!(
        dec(&h.sims.cw.get(Kind::Invoice, psa_id).expect("invoice")["balance"]),
        Decimal::ZERO
    );
    let sweep_request = h
        .sims
        .xero
        .exchanges()
        .into_iter()
        .filter(|x| x.method == "GET" && x.path == "Invoices")
        .count();
    assert!(sweep_request >= 2, "the sweep read Xero's invoices");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_waits_for_a_spent_erp_budget_instead_of_failing() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    // A busy sync spent the account's budget (or Xero answered 429): every ERP
    // call waits four seconds, longer than a worker waits in-process.
    let ctx = h.local.tenants.get(&h.tenant).expect("tenant");
    let until = h.deps.clock.now() + chrono::Duration::seconds(4);
    h.deps
        .budget
        .pause_until(&ctx.erp.account_key(), until)
        .await
        .expect("pause");
    assert!(h.deps.settings.budget_max_wait < std::time::Duration::from_secs(4));

    let month = small_firm().month;
    let end = month + chrono::Months::new(1) - chrono::Days::new(1);
    let report = reconcile::run(&h.deps, &h.tenant, month, end)
        .await
        .expect("reconciliation waits for the budget rather than failing");
    assert!(report.clean, "{:?}", report.rows);
    assert!(
        h.deps.clock.now() >= until,
        "it read the ERP only once the pause was over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_written_back_before_the_psa_record_is_synced_again_is_counted_once() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    // ConnectWise's callback for Ferry's own write-back does not come (or has not
    // yet): the ledger still holds the invoice as it was before the payment.
    h.sims.cw.set_faults(CwFaults {
        drop_callbacks: true,
        ..CwFaults::default()
    });
    let inv = h
        .sims
        .xero
        .invoices()
        .into_iter()
        .find(|i| {
            i["Status"] == "AUTHORISED"
                && i["Reference"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("FERRY-I-"))
        })
        .expect("a PSA invoice in Xero");
    let total = dec(&inv["Total"]);
    h.sims
        .xero
        .pay_invoice(
            inv["InvoiceID"].as_str().expect("id"),
            total,
            small_firm().month,
        )
        .await
        .expect("payment");
    h.settle().await;
    let number: i64 = inv["Reference"]
        .as_str()
        .expect("reference")
        .trim_start_matches("FERRY-I-")
        .parse()
        .expect("psa id");
    let paid_in_cw = || dec(&h.sims.cw.get(Kind::Invoice, number).expect("invoice")["payments"]);
    assert_eq!(paid_in_cw(), total, "written back once");

    let month = small_firm().month;
    let end = month + chrono::Months::new(1) - chrono::Days::new(1);
    let report = reconcile::run(&h.deps, &h.tenant, month, end)
        .await
        .expect("reconcile");
    assert_eq!(
        report.payments_written_back, 0,
        "nothing left to write back"
    );
    assert_eq!(paid_in_cw(), total, "and not written back again");
    let key = format!("invoices/connectwise:{number}");
    let row = report
        .rows
        .iter()
        .find(|r| r.documents.iter().any(|d| d.doc_key == key))
        .expect("the invoice's row");
    assert_eq!(row.psa.paid, row.erp.paid, "{row:#?}");
    assert_eq!(
        row.in_flight.paid,
        Decimal::ZERO,
        "no phantom payment in flight"
    );
    assert!(!row.in_flight_by.iter().any(|a| a.by == key), "{row:#?}");
    assert!(report.clean);
}

/// Time invoiced one entry per invoice (the default granularity) reconciles
/// like a summary does: each entry's own invoice counts towards its project
/// and month, so the report is clean and nothing "maps to no reconciliation
/// key" (which it did while line invoices' keys could not be read back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_invoiced_entry_by_entry_reconciles_against_its_project_and_month() {
    let base = base_template();
    let text = base
        .text
        .replacen("granularity = \"summary\"\n", "", 1)
        .replacen(
            "[domains.time_entries.summary]\ndocument = \"project_billing\"\ngroup_by = [\"project\", \"period\"]\ncoalesce_seconds = 5\n",
            "",
            1,
        );
    assert_ne!(
        text, base.text,
        "the base template changed shape: update this test"
    );
    let template = ferry_core::template::Template::load(
        &ferry_core::template::TemplateSource::new("per-record time", text),
        None,
    )
    .expect("a template with time invoiced per entry");
    let h = Harness::start_opts(Options {
        template,
        ..Options::default()
    })
    .await;
    h.sync().await;
    let month = small_firm().month;
    let end = month + chrono::Months::new(1) - chrono::Days::new(1);
    let per_entry = h
        .live_invoices()
        .into_iter()
        .filter(|i| {
            i["Reference"]
                .as_str()
                .is_some_and(|r| r.starts_with("FERRY-R-"))
        })
        .count();
    assert!(
        per_entry > 20,
        "time became one invoice per entry: {per_entry}"
    );
    let report = reconcile::run(&h.deps, &h.tenant, month, end)
        .await
        .expect("reconcile");
    assert!(
        report.unaccounted.is_empty(),
        "unaccounted: {:#?}",
        report.unaccounted
    );
    assert!(report.missing.is_empty(), "missing: {:#?}", report.missing);
    let psa = report.total(|r| &r.psa);
    let erp = report.total(|r| &r.erp);
    let held = report.total(|r| &r.held);
    assert!(
        erp.hours > Decimal::ZERO,
        "the entries' invoices are counted"
    );
    assert_eq!(
        psa.hours - held.hours - report.total(|r| &r.in_flight).hours,
        erp.hours
    );
    assert!(
        report.clean,
        "{:#?}",
        report
            .rows
            .iter()
            .filter(|r| !r.mismatches.is_empty())
            .collect::<Vec<_>>()
    );
}
