//! Money that tells the truth: the currency a customer is billed in, the sign
//! of a document, plausible rates, amounts and dates, unit prices the ERP can
//! hold exactly, and the firm's own calendar day.

use chrono::NaiveDate;
use ferry_canon::Domain;
use ferry_core::ports::Disposition;
use ferry_core::template::{Template, TemplateSource};
use ferry_core::usecases::reconcile;
use ferry_tests::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn october() -> NaiveDate {
    small_firm().month
}

fn month_end(first: NaiveDate) -> NaiveDate {
    first + chrono::Months::new(1) - chrono::Days::new(1)
}

/// The demo template with `extra` appended to the customer's override.
fn template_with(extra: &str) -> Template {
    let overlay = std::fs::read_to_string(repo_dir().join("tenants/demo-firm/template.toml"))
        .expect("override");
    Template::load(
        &base_template(),
        Some(&TemplateSource::new(
            "override.toml",
            format!("{overlay}\n{extra}"),
        )),
    )
    .expect("template loads")
}

fn repo_dir() -> std::path::PathBuf {
    ferry_cli::local::repo_dir()
}

/// A customer of the simulator's firm in `currency`, with a T&M project.
fn customer_with_project(h: &Harness, id: i64, currency: &str) -> Value {
    let company = json!({
        "id": id, "identifier": format!("Cust{id}"), "name": format!("Customer {id} BV"),
        "status": {"id": 1, "name": "Active"}, "taxCode": {"id": 1, "name": "Exempt"},
        "currency": {"id": 2, "currencyCode": currency}, "billingTerms": {"id": 1, "name": "Net 30"},
    });
    let project = json!({
        "id": id * 10, "name": format!("Customer {id} — rollout"),
        "company": {"id": id, "identifier": format!("Cust{id}"), "name": format!("Customer {id} BV")},
        "billingMethod": "ActualRates", "type": {"id": 1, "name": "Time & Materials"},
        "status": {"id": 1, "name": "Open"}, "closedFlag": false,
        "department": {"id": 1, "identifier": "CONS", "name": "Consulting"},
        "currency": {"id": 2, "currencyCode": currency},
    });
    h.sims.cw.seed(Kind::Company, vec![company]);
    h.sims.cw.seed(Kind::Project, vec![project.clone()]);
    project
}

fn time_on(project: &Value, id: i64, start: &str, hours: &str, rate: &str) -> Value {
    json!({
        "id": id, "company": project["company"], "chargeToType": "ProjectTicket",
        "chargeToId": project["id"], "project": {"id": project["id"], "name": project["name"]},
        "member": {"id": 2, "identifier": "m1", "name": "Ben Brown"},
        "workType": {"id": 1, "name": "Regular"}, "workRole": {"id": 1, "name": "Consultant"},
        "timeStart": start, "actualHours": ferry_sim::num(hours.parse::<Decimal>().unwrap()),
        "billableOption": "Billable", "notes": "work",
        "hourlyRate": ferry_sim::num(rate.parse::<Decimal>().unwrap()),
        "status": "ApprovedByTierTwo",
    })
}

async fn exception_reason(h: &Harness, domain: Domain, id: i64) -> Option<String> {
    match h.disposition(domain, id).await {
        Some(Disposition::Exception { .. }) => h
            .open_exceptions()
            .await
            .into_iter()
            .find(|e| e.source_key == format!("{domain}/connectwise:{id}"))
            .map(|e| e.reason.to_string()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_billed_in_euros_gets_its_time_invoiced_in_euros_and_reconciled_in_euros() {
    let h = Harness::start(small_firm()).await;
    let project = customer_with_project(&h, 4_100, "EUR");
    h.sims.cw.seed(
        Kind::Time,
        vec![
            time_on(&project, 880_001, "2026-10-05T09:00:00Z", "2", "150"),
            time_on(&project, 880_002, "2026-10-06T09:00:00Z", "3", "150"),
        ],
    );
    h.sync().await;

    let inv = h.summary_invoice(41_000, october());
    assert_eq!(inv.len(), 1, "one summary for the euro project");
    assert_eq!(
        inv[0]["CurrencyCode"], "EUR",
        "billed in the customer's currency"
    );
    assert_eq!(dec(&inv[0]["SubTotal"]), Decimal::from(750));

    let report = reconcile::run(&h.deps, &h.tenant, october(), month_end(october()))
        .await
        .expect("reconcile");
    let row = report
        .rows
        .iter()
        .find(|r| r.key.project == "connectwise:41000")
        .expect("a row for the euro project");
    assert_eq!(row.key.currency, "EUR");
    assert_eq!(row.psa.billable, Decimal::from(750));
    assert_eq!(row.erp.billable, Decimal::from(750));
    assert!(
        !report
            .rows
            .iter()
            .any(|r| r.key.project == "connectwise:41000" && r.key.currency == "USD"),
        "no dollars anywhere for it"
    );
    assert!(
        report.clean,
        "{:?}",
        report
            .rows
            .iter()
            .filter(|r| !r.mismatches.is_empty())
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_rate_in_another_currency_than_the_customers_is_refused_not_relabelled() {
    let h = Harness::start_opts(Options {
        template: template_with("[defaults]\nbilling_currency = \"record\"\n"),
        ..Options::default()
    })
    .await;
    let project = customer_with_project(&h, 4_200, "EUR");
    // The PSA says nothing of currency on the entry, so it is the home currency (USD).
    h.sims.cw.seed(
        Kind::Time,
        vec![time_on(
            &project,
            880_101,
            "2026-10-05T09:00:00Z",
            "2",
            "150",
        )],
    );
    h.sync().await;
    assert_eq!(
        exception_reason(&h, Domain::TimeEntries, 880_101)
            .await
            .as_deref(),
        Some("validation.currency_mismatch")
    );
    assert!(h.summary_invoice(42_000, october()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_invoice_below_zero_is_refused_for_finance_and_never_posted_positive() {
    let h = Harness::start(small_firm()).await;
    let company = &h.sims.firm.companies[0];
    let inv = json!({
        "id": 990_001, "invoiceNumber": "CW-NEG", "type": "Standard",
        "status": {"id": 1, "name": "Sent", "isClosed": false},
        "company": {"id": company["id"], "identifier": company["identifier"], "name": company["name"]},
        "date": "2026-10-20T00:00:00Z", "dueDate": "2026-11-19T00:00:00Z",
        "currency": {"id": 1, "currencyCode": "USD"}, "taxCode": {"id": 1, "name": "Taxable"},
        "serviceTotal": -50.00, "expenseTotal": 0, "productTotal": 0, "agreementAmount": 0,
        "subtotal": -50.00, "salesTax": -4.44, "total": -54.44,
        "payments": 0, "credits": 0, "balance": -54.44,
    });
    h.sims.cw.seed(Kind::Invoice, vec![inv]);
    h.sync().await;
    let ex = h
        .open_exceptions()
        .await
        .into_iter()
        .find(|e| e.source_key == "invoices/connectwise:990001")
        .expect("an exception for the negative invoice");
    assert_eq!(ex.reason, "validation.negative_amount");
    assert_eq!(ex.owner, ferry_core::ports::Owner::Finance);
    assert!(ex.message.contains("-54.44"), "{}", ex.message);
    assert!(h.invoices_with_reference("FERRY-I-990001").is_empty());

    let report = reconcile::run(&h.deps, &h.tenant, october(), month_end(october()))
        .await
        .expect("reconcile");
    let held: Decimal = report.rows.iter().map(|r| r.held.invoiced).sum();
    assert!(
        held <= Decimal::new(-5000, 2),
        "the −50 is held back with its sign: {held}"
    );
    assert!(report.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implausible_rates_and_dates_are_exceptions_that_name_the_bound() {
    let h = Harness::start(small_firm()).await;
    let project = customer_with_project(&h, 4_300, "USD");
    h.sims.cw.seed(
        Kind::Time,
        vec![
            time_on(&project, 880_201, "2026-10-05T09:00:00Z", "7", "-175"),
            time_on(&project, 880_202, "2026-10-05T09:00:00Z", "1", "100000"),
            time_on(
                &project,
                880_205,
                "2026-10-05T09:00:00Z",
                "1",
                "10000000000000000000000000",
            ),
            time_on(&project, 880_203, "9999-12-31T09:00:00Z", "1", "150"),
            time_on(&project, 880_204, "2026-10-06T09:00:00Z", "1", "150"),
        ],
    );
    h.sync().await;
    assert_eq!(
        exception_reason(&h, Domain::TimeEntries, 880_201)
            .await
            .as_deref(),
        Some("validation.rate_out_of_range")
    );
    assert_eq!(
        exception_reason(&h, Domain::TimeEntries, 880_202)
            .await
            .as_deref(),
        Some("validation.rate_out_of_range")
    );
    assert_eq!(
        exception_reason(&h, Domain::TimeEntries, 880_203)
            .await
            .as_deref(),
        Some("validation.date_out_of_range")
    );
    // 1e25 does not even read as a rate: an exception all the same, never a line.
    assert!(
        exception_reason(&h, Domain::TimeEntries, 880_205)
            .await
            .is_some()
    );
    let inv = h.summary_invoice(43_000, october());
    assert_eq!(inv.len(), 1);
    assert_eq!(
        dec(&inv[0]["SubTotal"]),
        Decimal::from(150),
        "only the plausible entry"
    );
    assert!(
        h.invoices_with_reference("FERRY-S-project_billing-43000-999912")
            .is_empty(),
        "no invoice for December 9999"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_four_place_unit_price_reaches_xero_exactly_and_a_five_place_one_is_refused() {
    let h = Harness::start(small_firm()).await;
    let project = customer_with_project(&h, 4_400, "USD");
    h.sims.cw.seed(
        Kind::Time,
        vec![
            time_on(&project, 880_301, "2026-10-05T09:00:00Z", "3", "12.3456"),
            time_on(&project, 880_302, "2026-10-06T09:00:00Z", "1", "12.34567"),
        ],
    );
    h.sync().await;
    let inv = h.summary_invoice(44_000, october());
    assert_eq!(inv.len(), 1);
    let line = &inv[0]["LineItems"][0];
    assert_eq!(
        dec(&line["UnitAmount"]),
        "12.3456".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        dec(&line["LineAmount"]),
        "37.04".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        exception_reason(&h, Domain::TimeEntries, 880_302)
            .await
            .as_deref(),
        Some("validation.unit_price_precision")
    );
}

/// Time worked early on 1 November in Auckland and late on 31 October in Los
/// Angeles, both near midnight UTC, with October closed in the ERP.
async fn local_day_case(zone: &str, start: &str) -> (Harness, i64) {
    let h = Harness::start_opts(Options {
        template: template_with(&format!(
            "[defaults]\ntime_zone = \"{zone}\"\n[periods]\nclosed_through = 2026-10-31\n"
        )),
        spec: ferry_sim::demo::DemoSpec {
            month: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            ..small_firm()
        },
        ..Options::default()
    })
    .await;
    let project = customer_with_project(&h, 4_500, "USD");
    h.sims.cw.seed(
        Kind::Time,
        vec![time_on(&project, 880_401, start, "2", "150")],
    );
    h.sync().await;
    (h, 45_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_belongs_to_the_firms_own_calendar_day() {
    // 08:00 on 1 November in Auckland is 19:00 on 31 October UTC: November's
    // invoice, and no closed-period exception for October.
    let (h, project) = local_day_case("Pacific/Auckland", "2026-10-31T19:00:00Z").await;
    let november = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    assert_eq!(
        exception_reason(&h, Domain::TimeEntries, 880_401).await,
        None
    );
    assert_eq!(h.summary_invoice(project, november).len(), 1);
    let report = reconcile::run(&h.deps, &h.tenant, november, month_end(november))
        .await
        .expect("reconcile");
    let row = report
        .rows
        .iter()
        .find(|r| r.key.project == "connectwise:45000")
        .expect("reconciled in November");
    assert_eq!(row.psa.hours, Decimal::from(2));
    assert_eq!(row.erp.hours, Decimal::from(2));

    // 18:00 on 31 October in Los Angeles is 01:00 on 1 November UTC: October's,
    // which is closed: an exception, not November's invoice.
    let (h, project) = local_day_case("America/Los_Angeles", "2026-11-01T01:00:00Z").await;
    assert_eq!(
        exception_reason(&h, Domain::TimeEntries, 880_401)
            .await
            .as_deref(),
        Some("validation.closed_period")
    );
    assert!(h.summary_invoice(project, november).is_empty());
}
