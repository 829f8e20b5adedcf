//! The scenarios the product promises, end to end through the local pipeline.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::ports::{Disposition, ExceptionStatus, Owner};
use ferry_core::template::{Template, TemplateSource};
use ferry_core::usecases::retry;
use ferry_tests::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// The project's approved, billable time entries in the sim.
fn billable_entries(h: &Harness, project: i64) -> Vec<Value> {
    h.sims
        .cw
        .all(Kind::Time)
        .into_iter()
        .filter(|t| {
            t["project"]["id"] == project
                && t["status"] == "ApprovedByTierTwo"
                && t["billableOption"] == "Billable"
        })
        .collect()
}

/// Approved, billable time of one project in the sim, in hours.
fn cw_billable_hours(h: &Harness, project: i64) -> Decimal {
    billable_entries(h, project)
        .iter()
        .filter(|t| {
            t["timeStart"]
                .as_str()
                .is_some_and(|s| s.starts_with("2026-10"))
        })
        .map(|t| dec(&t["actualHours"]))
        .sum()
}

/// Hours of the project's time entries that the ledger says are in the ERP:
/// what the summary invoice must bill.
async fn posted_hours(h: &Harness, project: i64) -> Decimal {
    let mut sum = Decimal::ZERO;
    for t in h.sims.cw.all(Kind::Time) {
        if t["project"]["id"] != project {
            continue;
        }
        let id = t["id"].as_i64().expect("id");
        if matches!(
            h.disposition(ferry_canon::Domain::TimeEntries, id).await,
            Some(Disposition::Posted { .. })
        ) {
            sum += dec(&t["actualHours"]);
        }
    }
    sum
}

/// A T&M project of the small firm that has approved time.
fn tm_project(h: &Harness) -> i64 {
    h.sims
        .firm
        .projects
        .iter()
        .filter(|p| {
            p["billingMethod"] == "ActualRates"
                && p["department"].is_object()
                && p["type"]["name"] != "Internal"
        })
        .filter_map(|p| p["id"].as_i64())
        .find(|id| !cw_billable_hours(h, *id).is_zero())
        .expect("a T&M project with time")
}

fn month() -> chrono::NaiveDate {
    small_firm().month
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_webhooks_create_one_erp_document() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    h.sims.cw.set_faults(CwFaults {
        duplicate_callbacks: true,
        ..CwFaults::default()
    });
    let company = h
        .sims
        .cw
        .create(Kind::Company, json!({
            "identifier": "Nimbus", "name": "Nimbus Analytics Ltd", "status": {"id": 1, "name": "Active"},
            "taxCode": {"id": 1, "name": "Taxable"}, "currency": {"id": 1, "currencyCode": "USD"},
        }))
        .await;
    let project = tm_project(&h);
    let p = h.sims.cw.get(Kind::Project, project).expect("project");
    h.sims
        .cw
        .create(Kind::Time, json!({
            "company": p["company"], "chargeToType": "ProjectTicket", "chargeToId": project,
            "project": {"id": project}, "member": {"id": 2, "identifier": "m1", "name": "Ben"},
            "workRole": {"id": 1, "name": "Consultant"}, "timeStart": "2026-10-30T14:00:00Z",
            "actualHours": 3.25, "billableOption": "Billable", "hourlyRate": 145.00, "status": "ApprovedByTierTwo",
        }))
        .await;
    h.settle().await;
    assert!(
        h.sims.cw.stats().callbacks_sent >= 4,
        "each callback was delivered twice"
    );
    let id = company["id"].as_i64().expect("id");
    let matching: Vec<Value> = h
        .sims
        .xero
        .contacts()
        .into_iter()
        .filter(|c| c["ContactNumber"] == format!("FERRY-C-{id}"))
        .collect();
    assert_eq!(matching.len(), 1, "one contact despite two deliveries");
    let invoices = h.summary_invoice(project, month());
    assert_eq!(
        invoices.len(),
        1,
        "one summary invoice for the project and month"
    );
    assert_eq!(
        invoiced_hours(&invoices),
        posted_hours(&h, project).await,
        "the new hours are billed once"
    );
    assert!(posted_hours(&h, project).await > Decimal::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_lost_after_the_erp_committed_does_not_create_a_second_document() {
    let h = Harness::start(small_firm()).await;
    // The first write commits in Xero but the answer never arrives.
    h.sims.xero.set_faults(XeroFaults {
        lose_next_responses: 1,
        ..XeroFaults::default()
    });
    h.sync().await;
    assert_each_once(&h);
    assert!(h.sims.xero.stats().calls > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_erp_commit_and_bookkeeping_adopts_the_document_instead_of_posting_twice()
 {
    fn crash(mut d: ferry_core::Deps) -> ferry_core::Deps {
        d.idmap = Arc::new(LostCommits::first(d.idmap.clone()));
        d
    }
    let h = Harness::start_opts(Options {
        wrap: crash,
        ..Options::default()
    })
    .await;
    h.sync().await;
    let numbers: Vec<String> = h
        .sims
        .xero
        .contacts()
        .iter()
        .map(|c| c["ContactNumber"].as_str().unwrap_or("").to_string())
        .collect();
    let mut unique = numbers.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        numbers.len(),
        "every customer exists once in Xero"
    );
    let audit = h
        .deps
        .audit
        .list(&h.tenant, None, 10_000)
        .await
        .expect("audit");
    assert!(
        audit.iter().any(|a| a.action == "adopt"),
        "the retry found the committed document and adopted it: {:?}",
        audit.iter().map(|a| a.action.as_str()).collect::<Vec<_>>()
    );
}

static BOOKKEEPING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Polls until `done` holds, for at most 30 s.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_created_before_a_crash_and_edited_before_the_restart_are_adopted_and_updated() {
    use std::sync::atomic::Ordering::SeqCst;
    fn crash(mut d: ferry_core::Deps) -> ferry_core::Deps {
        d.idmap = Arc::new(LostCommits::while_set(d.idmap.clone(), &BOOKKEEPING_DOWN));
        d
    }
    let h = Harness::start_opts(Options {
        wrap: crash,
        ..Options::default()
    })
    .await;
    h.sync().await;
    // From here Xero's answers are lost: a new customer and a new PSA invoice
    // are created in Xero and Ferry does not learn their ids.
    BOOKKEEPING_DOWN.store(true, SeqCst);
    let mut company = h.sims.cw.get(Kind::Company, 100).expect("company");
    company["id"] = json!(180);
    company["identifier"] = json!("Initech");
    company["name"] = json!("Initech Inc.");
    h.sims.cw.create(Kind::Company, company).await;
    until("the customer's create reaches Xero", || {
        h.sims
            .xero
            .contacts()
            .iter()
            .any(|c| c["ContactNumber"] == "FERRY-C-180")
    })
    .await;
    let mut invoice = h.sims.firm.invoices[0].clone();
    invoice["id"] = json!(990_001);
    invoice["invoiceNumber"] = json!("CW-CRASH-1");
    invoice["dueDate"] = json!("2026-12-15T00:00:00Z");
    h.sims.cw.create(Kind::Invoice, invoice).await;
    let reference = "FERRY-I-990001";
    until("the invoice's create reaches Xero", || {
        !h.invoices_with_reference(reference).is_empty()
    })
    .await;
    // Both change at the source before Ferry comes back.
    h.sims
        .cw
        .update(Kind::Company, 180, |c| {
            c["name"] = json!("Initech Global Inc.")
        })
        .await;
    h.sims
        .cw
        .update(Kind::Invoice, 990_001, |r| {
            r["dueDate"] = json!("2026-12-31T00:00:00Z")
        })
        .await;
    BOOKKEEPING_DOWN.store(false, SeqCst);
    h.settle().await;
    h.sync().await;

    let contacts: Vec<_> = h
        .sims
        .xero
        .contacts()
        .into_iter()
        .filter(|c| c["ContactNumber"] == "FERRY-C-180")
        .collect();
    assert_eq!(contacts.len(), 1, "one contact: {contacts:#?}");
    assert_eq!(contacts[0]["Name"], "Initech Global Inc.", "with the edit");
    let copies = h.invoices_with_reference(reference);
    assert_eq!(copies.len(), 1, "one invoice: {copies:#?}");
    assert_eq!(
        copies[0]["DueDateString"]
            .as_str()
            .and_then(|d| d.get(..10)),
        Some("2026-12-31"),
        "with the edit"
    );
    for (key, erp_id) in [
        (
            "customers/connectwise:180",
            contacts[0]["ContactID"].as_str(),
        ),
        (
            "invoices/connectwise:990001",
            copies[0]["InvoiceID"].as_str(),
        ),
    ] {
        let entry = h.deps.idmap.get(&h.tenant, key).await.expect("id map");
        assert_eq!(
            entry.and_then(|e| e.erp_id).as_deref(),
            erp_id,
            "the id map names the adopted document for {key}"
        );
    }
    assert_each_once(&h);
    assert_eq!(h.unexpected_exceptions().await, vec![]);
}

/// Values that occur more than once.
fn repeated(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for v in values {
        *seen.entry(v).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(v, _)| v)
        .collect()
}

/// Every Ferry reference is in Xero at most once: contacts and live invoices.
fn assert_each_once(h: &Harness) {
    let text = |v: &Value, field: &str| v[field].as_str().unwrap_or("").to_string();
    let contacts = h.sims.xero.contacts();
    let twice = repeated(contacts.iter().map(|c| text(c, "ContactNumber")));
    assert_eq!(twice, Vec::<String>::new(), "customers created twice");
    let twice = repeated(h.live_invoices().iter().map(|i| text(i, "Reference")));
    assert_eq!(twice, Vec::<String>::new(), "invoices created twice");
}

/// A billable, approved time entry of `project` at `start`, created in the sim.
async fn log_time(h: &Harness, project: i64, start: &str, hours: f64) -> i64 {
    let p = h.sims.cw.get(Kind::Project, project).expect("project");
    h.sims
        .cw
        .create(
            Kind::Time,
            json!({
                "company": p["company"], "chargeToType": "ProjectTicket", "chargeToId": project,
                "project": {"id": project}, "member": {"id": 2, "identifier": "m1", "name": "Ben"},
                "workRole": {"id": 1, "name": "Consultant"}, "timeStart": start,
                "actualHours": hours, "billableOption": "Billable", "hourlyRate": 145.00,
                "status": "ApprovedByTierTwo",
            }),
        )
        .await["id"]
        .as_i64()
        .expect("id")
}

/// Waits until Xero has received the slow write it was told to expect.
async fn until_slow_write_arrives(h: &Harness) {
    for _ in 0..600 {
        if h.sims.xero.faults().slow_next == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no write reached Xero within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_xero_commits_after_the_client_gave_up_and_an_edit_in_between_leave_one_invoice() {
    // Ferry gives up on Xero after 1 s; Xero commits the create 6 s after it
    // arrived. Meanwhile a second entry gives the summary a new version (a new
    // idempotency key), whose post must neither create a second invoice nor look
    // the first one up before Xero has committed it.
    let h = Harness::start_opts(Options {
        xero_timeout_seconds: Some(1),
        settings: ferry_core::Settings {
            unknown_outcome_hold: Duration::from_secs(9),
            ..ferry_cli::local::local_settings()
        },
        ..Options::default()
    })
    .await;
    h.sync().await;
    let project = tm_project(&h);
    let november = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    assert!(h.summary_invoice(project, november).is_empty());
    h.sims.xero.set_faults(XeroFaults {
        slow_next: 1,
        slow_for: Duration::from_secs(6),
        commit_late: true,
        ..XeroFaults::default()
    });
    let first = log_time(&h, project, "2026-11-03T09:00:00Z", 2.5).await;
    until_slow_write_arrives(&h).await;
    // The create is in Xero's hands; Ferry's client gives up after 1 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        h.summary_invoice(project, november).is_empty(),
        "Xero has not committed yet"
    );
    let second = log_time(&h, project, "2026-11-04T09:00:00Z", 1.75).await;
    h.settle().await;
    let invoices = h.summary_invoice(project, november);
    assert_eq!(
        invoices.len(),
        1,
        "one November invoice for the project: {invoices:#?}"
    );
    assert_eq!(
        invoiced_hours(&invoices),
        Decimal::new(425, 2),
        "both entries are billed on it"
    );
    for id in [first, second] {
        assert!(matches!(
            h.disposition(ferry_canon::Domain::TimeEntries, id).await,
            Some(Disposition::Posted { .. })
        ));
    }
    assert_eq!(h.unexpected_exceptions().await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_created_by_a_lost_answer_and_then_emptied_leaves_the_erp() {
    // The create of a new summary reaches Xero but its answer is lost, so Ferry
    // has no id for it; then its only entry is deleted. The emptied group must
    // still go to post, which finds the invoice by reference and removes it.
    let h = Harness::start_opts(Options {
        settings: ferry_core::Settings {
            unknown_outcome_hold: Duration::from_secs(2),
            ..ferry_cli::local::local_settings()
        },
        ..Options::default()
    })
    .await;
    h.sync().await;
    let project = tm_project(&h);
    let november = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    h.sims.xero.set_faults(XeroFaults {
        lose_next_responses: 1,
        ..XeroFaults::default()
    });
    let entry = log_time(&h, project, "2026-11-05T09:00:00Z", 3.0).await;
    until("the create reaches Xero", || {
        !h.summary_invoice(project, november).is_empty()
    })
    .await;
    assert!(h.sims.cw.delete(Kind::Time, entry).await);
    h.settle().await;
    let live: Vec<_> = h
        .summary_invoice(project, november)
        .into_iter()
        .filter(|i| i["Status"] != "DELETED" && i["Status"] != "VOIDED")
        .collect();
    assert_eq!(
        live,
        Vec::<Value>::new(),
        "the invoice of a group with no entries left is removed"
    );
    assert_eq!(h.unexpected_exceptions().await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_unreadable_fields_keeps_the_created_documents_and_their_batch() {
    // Xero commits a batch and answers with fields of unexpected types: every
    // document of it is recorded as posted under its own id, none is refused,
    // and none is created again.
    let h = Harness::start(small_firm()).await;
    h.sims.xero.set_faults(XeroFaults {
        malformed_next: 3,
        ..XeroFaults::default()
    });
    h.sync().await;
    assert_each_once(&h);
    let refused: Vec<_> = h
        .open_exceptions()
        .await
        .into_iter()
        .filter(|e| e.reason.as_str().starts_with("erp."))
        .map(|e| (e.source_key, e.reason, e.message))
        .collect();
    assert_eq!(
        refused,
        vec![],
        "nothing Xero accepted is recorded as refused"
    );
    let posted = h
        .deps
        .idmap
        .list(&h.tenant, "customers/")
        .await
        .expect("idmap");
    assert!(
        posted.len() >= 4 && posted.iter().all(|e| e.erp_id.is_some()),
        "every customer has its Xero id: {posted:#?}"
    );
    assert_eq!(h.unexpected_exceptions().await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_updates_leave_the_newest_version_in_the_erp() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    h.sims.cw.set_faults(CwFaults {
        reorder_callbacks: true,
        ..CwFaults::default()
    });
    let company = 100;
    h.sims
        .cw
        .update(Kind::Company, company, |c| {
            c["name"] = json!("Globex Holdings Inc.")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // a later lastUpdated second
    h.sims
        .cw
        .update(Kind::Company, company, |c| {
            c["name"] = json!("Globex Worldwide Inc.")
        })
        .await;
    h.settle().await;
    let c = h.contact("FERRY-C-100").expect("contact");
    assert_eq!(
        c["Name"], "Globex Worldwide Inc.",
        "the newer name wins although it arrived first"
    );

    // Two changes within one second share a version; delivered out of order, the
    // older one must not win either.
    h.sims
        .cw
        .update(Kind::Company, company, |c| {
            c["name"] = json!("Globex Alpha Inc.")
        })
        .await;
    h.sims
        .cw
        .update(Kind::Company, company, |c| {
            c["name"] = json!("Globex Omega Inc.")
        })
        .await;
    h.sims.cw.flush_held().await;
    h.settle().await;
    let c = h.contact("FERRY-C-100").expect("contact");
    assert_eq!(
        c["Name"], "Globex Omega Inc.",
        "the source's current state wins a tie"
    );
    let held = h
        .deps
        .ledger
        .get(&h.tenant, "customers/connectwise:100")
        .await
        .expect("ledger")
        .expect("entry");
    assert!(
        held.canonical
            .expect("canonical")
            .contains("Globex Omega Inc."),
        "and the ledger holds the current state, not the late-arriving older one"
    );

    // The same for a time entry inside a summary invoice.
    let project = tm_project(&h);
    let entry = billable_entries(&h, project)
        .into_iter()
        .next()
        .expect("an approved entry");
    let id = entry["id"].as_i64().expect("id");
    h.sims
        .cw
        .update(Kind::Time, id, |t| t["actualHours"] = json!(5.5))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.sims
        .cw
        .update(Kind::Time, id, |t| t["actualHours"] = json!(7.25))
        .await;
    h.settle().await;
    assert!(matches!(
        h.disposition(ferry_canon::Domain::TimeEntries, id).await,
        Some(Disposition::Posted { .. })
    ));
    assert_eq!(
        invoiced_hours(&h.summary_invoice(project, month())),
        posted_hours(&h, project).await
    );
    let staged = h
        .deps
        .ledger
        .get(&h.tenant, &format!("time_entries/connectwise:{id}"))
        .await
        .expect("ledger")
        .expect("entry");
    assert!(
        staged
            .canonical
            .expect("canonical")
            .contains("\"hours\":\"7.25\""),
        "the ledger holds the newest version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_two_edits_within_one_second_reaches_the_erp_in_order() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    // ConnectWise dates changes to the whole second: from here on every change
    // carries the same `lastUpdated`, and each arrives after the one before it
    // has been posted.
    let stamp = h.now();
    h.sims.cw.set_clock(Arc::new(move || stamp));
    let company = 100;
    for name in ["Globex One Inc.", "Globex Two Inc.", "Globex Three Inc."] {
        h.sims
            .cw
            .update(Kind::Company, company, |c| c["name"] = json!(name))
            .await;
        h.settle().await;
        let c = h.contact("FERRY-C-100").expect("contact");
        assert_eq!(c["Name"], name, "each edit of the customer reaches Xero");
    }
    let invoice = h.sims.firm.invoices[0]["id"].as_i64().expect("id");
    let reference = format!("FERRY-I-{invoice}");
    for due in ["2026-12-20", "2026-12-27", "2027-01-03"] {
        h.sims
            .cw
            .update(Kind::Invoice, invoice, |r| {
                r["dueDate"] = json!(format!("{due}T00:00:00Z"))
            })
            .await;
        h.settle().await;
        let copies = h.invoices_with_reference(&reference);
        assert_eq!(copies.len(), 1, "one Xero invoice for {reference}");
        assert_eq!(
            copies[0]["DueDateString"]
                .as_str()
                .and_then(|d| d.get(..10)),
            Some(due),
            "each edit of the PSA invoice reaches Xero: {:#}",
            copies[0]
        );
    }
    let project = tm_project(&h);
    let id = billable_entries(&h, project)[0]["id"].as_i64().expect("id");
    for hours in [3.5, 4.25] {
        h.sims
            .cw
            .update(Kind::Time, id, |t| t["actualHours"] = json!(hours))
            .await;
        h.settle().await;
        assert_eq!(
            invoiced_hours(&h.summary_invoice(project, month())),
            posted_hours(&h, project).await,
            "each edit of the time entry reaches its summary invoice"
        );
    }
    assert_eq!(h.unexpected_exceptions().await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unapproved_entry_is_skipped_with_its_reason_and_posts_once_approved() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let pending = h
        .sims
        .cw
        .all(Kind::Time)
        .into_iter()
        .find(|t| t["status"] == "PendingApproval" && t["billableOption"] == "Billable")
        .expect("an entry awaiting approval");
    let id = pending["id"].as_i64().expect("id");
    assert_eq!(
        h.disposition(ferry_canon::Domain::TimeEntries, id).await,
        Some(Disposition::Skipped {
            reason: "not approved (status submitted)".into()
        })
    );
    h.sims
        .cw
        .update(Kind::Time, id, |t| t["status"] = json!("ApprovedByTierTwo"))
        .await;
    h.settle().await;
    match h.disposition(ferry_canon::Domain::TimeEntries, id).await {
        Some(Disposition::Posted { .. }) => {}
        Some(Disposition::Skipped { reason }) if reason.contains("billed by PSA invoice") => {}
        other => panic!("approved entry should post, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_429s_delays_posting_but_everything_posts_within_the_limits() {
    let h = Harness::start(small_firm()).await;
    h.sims.xero.set_faults(XeroFaults {
        throttle_next: 4,
        retry_after_secs: 2,
        ..XeroFaults::default()
    });
    h.sync().await;
    let stats = h.sims.xero.stats();
    assert_eq!(stats.throttled_injected, 4, "the burst happened");
    assert_eq!(
        stats.throttled_by_limits, 0,
        "Ferry never exceeded a Xero limit"
    );
    assert!(
        stats.max_in_minute <= 60 && stats.max_concurrent <= 5,
        "{stats:?}"
    );
    let unexpected = h.unexpected_exceptions().await;
    assert!(
        unexpected.is_empty(),
        "only seeded bad records are exceptions, not {unexpected:#?}"
    );
    assert!(h.live_invoices().len() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_throttling_for_longer_than_the_receive_limit_delays_posting_and_loses_nothing() {
    // One document meets more 429s in a row than a message may be received (6
    // here): waiting on a busy ERP must not use up its receives and end as
    // retry.exhausted.
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    h.sims.xero.set_faults(XeroFaults {
        throttle_next: 9,
        retry_after_secs: 1,
        ..XeroFaults::default()
    });
    h.sims
        .cw
        .update(Kind::Company, 100, |c| {
            c["name"] = json!("Globex Patient Inc.")
        })
        .await;
    h.settle().await;
    assert_eq!(
        h.sims.xero.stats().throttled_injected,
        9,
        "the run of 429s happened"
    );
    let c = h.contact("FERRY-C-100").expect("contact");
    assert_eq!(c["Name"], "Globex Patient Inc.", "the edit reached Xero");
    assert_eq!(h.unexpected_exceptions().await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_record_fixed_at_the_source_replays_to_posted_and_its_exception_resolves() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let bad = h
        .sims
        .firm
        .bad
        .iter()
        .find(|b| b.expect_reason == "validation.hours_out_of_range")
        .expect("seeded");
    let exc = h
        .open_exceptions()
        .await
        .into_iter()
        .find(|e| e.source_key == format!("time_entries/connectwise:{}", bad.id))
        .expect("exception");
    assert_eq!(exc.owner, Owner::ProjectOperations);
    assert_eq!(exc.field.as_deref(), Some("hours"));
    // Fixed in the PSA without a callback (say, callbacks were down), then replayed by support.
    let mut fixed = h.sims.cw.get(Kind::Time, bad.id).expect("entry");
    fixed["actualHours"] = json!(2.5);
    h.sims.cw.seed(Kind::Time, vec![fixed]);
    retry::replay(&h.deps, &h.tenant, &exc.id)
        .await
        .expect("replay");
    h.settle().await;
    assert!(matches!(
        h.disposition(ferry_canon::Domain::TimeEntries, bad.id)
            .await,
        Some(Disposition::Posted { .. })
    ));
    let after = h
        .deps
        .exceptions
        .get(&h.tenant, &exc.id)
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(
        after.status,
        ExceptionStatus::Resolved,
        "a later success resolves the exception"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_gap_fixed_in_the_template_replays_to_posted() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let unmapped: Vec<_> = h
        .open_exceptions()
        .await
        .into_iter()
        .filter(|e| e.message.contains("Quantum Architect"))
        .collect();
    assert_eq!(unmapped.len(), 2);
    assert!(unmapped.iter().all(
        |e| e.owner == Owner::Finance && e.rule.as_deref() == Some("value_maps.work_role_item")
    ));
    let base = base_template();
    let fixed = TemplateSource::new(
        "fix.toml",
        "[template]\nversion = \"2\"\ncustomer = \"test\"\n[value_maps.expense_type_account]\n\"Ground Transport\" = \"260\"\n[value_maps.work_role_item]\n\"Quantum Architect\" = \"CONS-PRN\"\n",
    );
    let t = Template::load(&base, Some(&fixed)).expect("fixed template");
    assert!(h.local.tenants.set_template(&h.tenant, t).expect("fits"));
    let n = retry::replay_all(
        &h.deps,
        &h.tenant,
        Some(Owner::Finance),
        Some(ferry_canon::Domain::TimeEntries),
    )
    .await
    .expect("replay");
    assert!(
        n >= 2,
        "the unmapped entries were replayed (with finance's other open time exceptions)"
    );
    h.settle().await;
    for e in &unmapped {
        let id: i64 = e
            .source_key
            .rsplit(':')
            .next()
            .and_then(|x| x.parse().ok())
            .expect("id");
        assert!(
            matches!(
                h.disposition(ferry_canon::Domain::TimeEntries, id).await,
                Some(Disposition::Posted { .. })
            ),
            "{id} posted after the template fix"
        );
    }
    let closed = h
        .open_exceptions()
        .await
        .into_iter()
        .filter(|e| e.reason == "validation.closed_period")
        .count();
    assert_eq!(
        closed, 3,
        "replaying cannot open a closed period: those stay exceptions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_deleted_while_no_callback_reached_ferry_leaves_its_invoice_at_the_next_sync() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let project = tm_project(&h);
    let entry = billable_entries(&h, project)
        .into_iter()
        .next()
        .expect("entry");
    let id = entry["id"].as_i64().expect("id");
    let before = invoiced_hours(&h.summary_invoice(project, month()));
    h.sims.cw.set_faults(CwFaults {
        drop_callbacks: true,
        ..CwFaults::default()
    });
    assert!(h.sims.cw.delete(Kind::Time, id).await);
    h.settle().await;
    assert_eq!(
        invoiced_hours(&h.summary_invoice(project, month())),
        before,
        "no callback: Ferry has not heard of the deletion yet"
    );
    h.sync().await;
    let after = invoiced_hours(&h.summary_invoice(project, month()));
    assert_eq!(
        after,
        before - dec(&entry["actualHours"]),
        "the sweep found the deletion and the hours left the invoice"
    );
    assert_eq!(after, posted_hours(&h, project).await);
    assert!(
        !matches!(
            h.disposition(ferry_canon::Domain::TimeEntries, id).await,
            Some(Disposition::Posted { .. })
        ),
        "the deleted entry is no longer billed"
    );
    assert_eq!(h.unexpected_exceptions().await, vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_finance_approved_is_not_put_back_to_draft_and_the_edit_is_an_exception() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let project = tm_project(&h);
    let invoice = h
        .summary_invoice(project, month())
        .into_iter()
        .next()
        .expect("the project's summary invoice");
    assert_eq!(invoice["Status"], "DRAFT");
    let id = invoice["InvoiceID"].as_str().expect("id").to_string();
    let before = invoiced_hours(&h.summary_invoice(project, month()));
    // Finance approves it in Xero; then more October time arrives in the PSA.
    h.sims.xero.authorise(&id).await.expect("approved");
    log_time(&h, project, "2026-10-29T09:00:00Z", 1.5).await;
    h.settle().await;
    let after = h.summary_invoice(project, month());
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[0]["Status"], "AUTHORISED",
        "finance's approval stands"
    );
    assert_eq!(
        invoiced_hours(&after),
        before,
        "the approved invoice is not changed behind finance's back"
    );
    let held: Vec<_> = h
        .open_exceptions()
        .await
        .into_iter()
        .filter(|e| e.stage == "post" && e.source_key.starts_with("summary/"))
        .collect();
    assert!(
        held.iter().any(|e| e.owner == Owner::Finance
            && e.erp_message
                .as_deref()
                .is_some_and(|m| m.contains("not of valid status"))),
        "the refused edit is an exception for finance, in Xero's words: {held:#?}"
    );
    // Reconciliation explains the difference by that exception: the hours the
    // approved copy lacks are held, not counted twice (all of the group's
    // hours held while Xero holds most of them).
    let m = month();
    let end = m + chrono::Months::new(1) - chrono::Days::new(1);
    let report = ferry_core::usecases::reconcile::run(&h.deps, &h.tenant, m, end)
        .await
        .expect("reconcile");
    let row = report
        .rows
        .iter()
        .find(|r| r.key.project == format!("connectwise:{project}"))
        .expect("the project's row");
    assert_eq!(
        row.mismatches,
        vec![],
        "every difference is explained: {row:#?}"
    );
    assert!(
        row.exceptions()
            .into_iter()
            .any(|x| held.iter().any(|e| e.id == x)),
        "by the refused edit's exception: {row:#?}"
    );
}

/// Finance moves a project's summary on in Xero (`paid`: approves and pays it
/// in full, else only approves it), then an entry already on it gains an hour
/// in the PSA: the edit is refused, and reconciliation holds back that hour
/// and its amount — the difference, not the entry's whole new value.
async fn edit_refused_after_finance(paid: bool) {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let project = tm_project(&h);
    let invoice = h
        .summary_invoice(project, month())
        .into_iter()
        .next()
        .expect("the project's summary invoice");
    let id = invoice["InvoiceID"].as_str().expect("id").to_string();
    h.sims.xero.authorise(&id).await.expect("approved");
    if paid {
        let total = dec(&h.summary_invoice(project, month())[0]["Total"]);
        h.sims
            .xero
            .pay_invoice(&id, total, month())
            .await
            .expect("paid");
    }
    h.settle().await;
    let m = month();
    let end = m + chrono::Months::new(1) - chrono::Days::new(1);
    let row_of = |report: ferry_core::usecases::reconcile::Report| {
        report
            .rows
            .into_iter()
            .find(|r| r.key.project == format!("connectwise:{project}"))
            .expect("the project's row")
    };
    let before = row_of(
        ferry_core::usecases::reconcile::run(&h.deps, &h.tenant, m, end)
            .await
            .expect("reconcile"),
    );
    let entry = billable_entries(&h, project)
        .into_iter()
        .next()
        .expect("an entry on the invoice");
    let entry_id = entry["id"].as_i64().expect("id");
    let rate = dec(&entry["hourlyRate"]);
    h.sims
        .cw
        .update(Kind::Time, entry_id, |t| {
            t["actualHours"] = ferry_sim::num(dec(&t["actualHours"]) + Decimal::ONE)
        })
        .await;
    h.settle().await;
    let report = ferry_core::usecases::reconcile::run(&h.deps, &h.tenant, m, end)
        .await
        .expect("reconcile");
    assert!(report.clean, "paid {paid}");
    let row = row_of(report);
    assert_eq!(row.mismatches, vec![], "paid {paid}: {row:#?}");
    assert_eq!(
        row.held.hours - before.held.hours,
        Decimal::ONE,
        "paid {paid}: only the added hour is held besides what was held before: {row:#?}"
    );
    assert_eq!(
        row.held.billable - before.held.billable,
        rate,
        "paid {paid}: and its amount: {row:#?}"
    );
    assert_eq!(
        row.erp, before.erp,
        "paid {paid}: the ERP's copy is unchanged"
    );
    // And the hour is attributed to the refused edit's exception, by amount.
    let new: Vec<_> = row
        .held_by
        .iter()
        .filter(|a| !before.held_by.iter().any(|b| b.by == a.by))
        .collect();
    assert_eq!(new.len(), 1, "paid {paid}: {row:#?}");
    assert_eq!(
        (new[0].totals.hours, new[0].totals.billable),
        (Decimal::ONE, rate),
        "paid {paid}: {row:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_refused_by_an_approved_invoice_holds_back_only_the_difference() {
    edit_refused_after_finance(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_refused_by_a_paid_invoice_holds_back_only_the_difference() {
    edit_refused_after_finance(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_entry_leaves_its_summary_invoice() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let project = tm_project(&h);
    let entry = billable_entries(&h, project)
        .into_iter()
        .next()
        .expect("entry");
    let before = invoiced_hours(&h.summary_invoice(project, month()));
    assert!(
        h.sims
            .cw
            .delete(Kind::Time, entry["id"].as_i64().expect("id"))
            .await
    );
    h.settle().await;
    let after = invoiced_hours(&h.summary_invoice(project, month()));
    assert_eq!(
        after,
        before - dec(&entry["actualHours"]),
        "the deleted hours left the invoice"
    );
    assert_eq!(after, posted_hours(&h, project).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_outage_beyond_the_retry_limit_is_parked_then_replayed_to_posted() {
    let mut settings = ferry_cli::local::local_settings();
    settings.backoff_base = Duration::from_millis(100);
    settings.backoff_cap = Duration::from_millis(400);
    let h = Harness::start_opts(Options {
        settings,
        ..Options::default()
    })
    .await;
    // Xero answers every request with 500 for a long while.
    h.sims.xero.set_faults(XeroFaults {
        fail_next: 10_000,
        ..XeroFaults::default()
    });
    h.sync().await;
    let parked: Vec<_> = h
        .open_exceptions()
        .await
        .into_iter()
        .filter(|e| {
            e.stage == "post"
                || e.reason.as_str().starts_with("erp.")
                || e.reason.as_str().starts_with("retry.")
        })
        .collect();
    assert!(
        !parked.is_empty(),
        "documents that could not be written were parked"
    );
    assert!(
        parked
            .iter()
            .all(|e| e.owner == Owner::Support || e.owner == Owner::Finance),
        "{parked:#?}"
    );
    assert!(
        h.sims.xero.contacts().is_empty(),
        "nothing reached Xero during the outage"
    );

    // Xero recovers; support replays everything that was parked.
    h.sims.xero.set_faults(XeroFaults::default());
    h.local.deps.periods.clear();
    retry::replay_all(&h.deps, &h.tenant, None, None)
        .await
        .expect("replay");
    h.settle().await;
    assert!(
        h.sims.xero.contacts().len() >= 4,
        "customers posted after the replay"
    );
    assert!(
        !h.live_invoices().is_empty(),
        "invoices posted after the replay"
    );
    let unexpected = h.unexpected_exceptions().await;
    assert!(
        unexpected.is_empty(),
        "after the replay only seeded bad records remain: {unexpected:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_rate_budget_is_never_exceeded_even_when_the_work_needs_more_calls() {
    // A tight budget (10 calls a minute) and one document per call: the work needs
    // more calls than fit in a minute, so Ferry must spread them.
    let h = Harness::start_opts(Options {
        xero_batch: 1,
        xero_headroom: 50,
        ..Options::default()
    })
    .await;
    h.sync().await;
    let stats = h.sims.xero.stats();
    assert!(
        stats.calls > 10,
        "the work needed more than one minute's budget: {stats:?}"
    );
    assert!(
        stats.max_in_minute <= 10,
        "never more than the budget in any rolling minute: {stats:?}"
    );
    assert_eq!(stats.throttled_by_limits, 0);
    assert!(h.live_invoices().len() >= 4, "and everything still posted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_time_for_a_summary_emptied_in_xero_goes_on_a_new_invoice_not_the_deleted_one() {
    let h = Harness::start(small_firm()).await;
    // A project of its own with two entries, so that emptying it is quick.
    let company = h.sims.firm.companies[0].clone();
    let project = 7_700;
    h.sims.cw.seed(
        Kind::Project,
        vec![json!({
            "id": project, "name": "Short engagement",
            "company": {"id": company["id"], "identifier": company["identifier"], "name": company["name"]},
            "billingMethod": "ActualRates", "type": {"id": 1, "name": "Time & Materials"},
            "status": {"id": 1, "name": "Open"}, "closedFlag": false,
            "department": {"id": 1, "identifier": "CONS", "name": "Consulting"},
            "currency": {"id": 1, "currencyCode": "USD"},
        })],
    );
    h.sync().await;
    let a = log_time(&h, project, "2026-10-12T09:00:00Z", 2.0).await;
    let b = log_time(&h, project, "2026-10-13T09:00:00Z", 1.0).await;
    h.settle().await;
    assert_eq!(h.summary_invoice(project, month()).len(), 1);

    // Both entries go: the summary is emptied, and Xero keeps it as DELETED.
    h.sims.cw.delete(Kind::Time, a).await;
    h.sims.cw.delete(Kind::Time, b).await;
    h.settle().await;
    let emptied = h.summary_invoice(project, month());
    assert_eq!(emptied.len(), 1);
    assert_eq!(emptied[0]["Status"], "DELETED");

    // New time for that project and month: a new invoice with the same
    // reference, not a write to the deleted one (which Xero refuses).
    log_time(&h, project, "2026-10-20T09:00:00Z", 1.5).await;
    h.settle().await;
    let all = h.summary_invoice(project, month());
    let live: Vec<_> = all.iter().filter(|i| i["Status"] != "DELETED").collect();
    assert_eq!(
        live.len(),
        1,
        "one live invoice for the reference: {all:#?}"
    );
    assert_eq!(invoiced_hours(&[live[0].clone()]), Decimal::new(15, 1));
    assert_ne!(live[0]["InvoiceID"], emptied[0]["InvoiceID"]);
    assert_eq!(h.unexpected_exceptions().await, vec![]);

    // And it is the one Ferry's id map names.
    let entry = h
        .deps
        .idmap
        .get(
            &h.tenant,
            &format!("summary/project_billing/connectwise:{project}/2026-10"),
        )
        .await
        .expect("id map")
        .expect("entry");
    assert_eq!(entry.erp_id.as_deref(), live[0]["InvoiceID"].as_str());
}
