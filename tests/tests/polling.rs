//! Polling and paging: the compound (timestamp, id) cursor loses nothing across
//! pages of records sharing one timestamp, and advances only after the enqueue;
//! every simulated connector's paged read meets the shared paging contract
//! (`ferry_testkit::contracts::paging`; real Tryton's in `real.rs`).

use ferry_canon::Domain;
use ferry_core::ports::QueueName;
use ferry_core::usecases::intake;
use ferry_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_timestamps_across_pages_lose_no_records_and_the_cursor_only_moves_forward() {
    let mut settings = ferry_cli::local::local_settings();
    settings.poll_page_size = 7; // seeded records share one lastUpdated second
    let h = Harness::start_opts(Options {
        host: false,
        settings,
        ..Options::default()
    })
    .await;
    let report = intake::poll(&h.deps, &h.tenant, Domain::TimeEntries, &|_| {})
        .await
        .expect("poll");
    let total = h.sims.cw.all(Kind::Time).len();
    assert_eq!(
        report.enqueued, total,
        "every entry was enqueued exactly once"
    );
    assert!(report.pages > 10);
    assert_eq!(
        h.deps
            .queue
            .depth(QueueName::Transform)
            .await
            .expect("depth")
            .total() as usize,
        total
    );
    let cursor = report.cursor.expect("cursor");
    let stored = h
        .deps
        .cursors
        .get(&h.tenant, "connectwise/time_entries")
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored, cursor);

    // A second poll re-reads only the overlap window; the cursor does not move back.
    let again = intake::poll(&h.deps, &h.tenant, Domain::TimeEntries, &|_| {})
        .await
        .expect("poll");
    let after = h
        .deps
        .cursors
        .get(&h.tenant, "connectwise/time_entries")
        .await
        .expect("get")
        .expect("stored");
    assert!(after >= stored);
    assert!(
        again.enqueued <= total,
        "overlap re-reads are bounded by the window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_enqueue_leaves_the_cursor_where_it_was() {
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    h.sims.cw.set_faults(CwFaults {
        fail_next: 1,
        ..CwFaults::default()
    });
    let err = intake::poll(&h.deps, &h.tenant, Domain::TimeEntries, &|_| {}).await;
    assert!(err.is_err(), "a PSA failure stops the poll");
    assert!(
        h.deps
            .cursors
            .get(&h.tenant, "connectwise/time_entries")
            .await
            .expect("get")
            .is_none()
    );
    intake::poll(&h.deps, &h.tenant, Domain::TimeEntries, &|_| {})
        .await
        .expect("retry succeeds");
    assert!(
        h.deps
            .cursors
            .get(&h.tenant, "connectwise/time_entries")
            .await
            .expect("get")
            .is_some()
    );
}

/// A period no firm has data in, so the subjects' records are all it holds.
fn far_period() -> (chrono::NaiveDate, chrono::NaiveDate) {
    let d = |day| chrono::NaiveDate::from_ymd_opt(2031, 3, day).expect("date");
    (d(1), d(31))
}

/// ConnectWise time in a period (reconciliation's and the deletion sweeps'
/// read), paged at ConnectWise's largest page; the entries share one
/// `lastUpdated` second.
struct CwTimeInPeriod<'a> {
    h: &'a Harness,
    ids: Vec<String>,
}

#[async_trait::async_trait]
impl ferry_testkit::contracts::PagedRead for CwTimeInPeriod<'_> {
    fn name(&self) -> String {
        "ConnectWise time entries in a period".into()
    }
    fn page_size(&self) -> usize {
        ferry_connectors::connectwise::client::MAX_PAGE_SIZE as usize
    }
    async fn grow_to(&mut self, n: usize) -> Vec<String> {
        let start = self.ids.len();
        let records: Vec<_> = (start..n)
            .map(|k| {
                let id = 7_000_000 + k as i64;
                self.ids.push(id.to_string());
                serde_json::json!({
                    "id": id, "company": {"id": 100}, "chargeToType": "ProjectTicket",
                    "chargeToId": 1000, "project": {"id": 1000},
                    "member": {"id": 2, "identifier": "m1", "name": "Ben"},
                    "workRole": {"id": 1, "name": "Consultant"},
                    "timeStart": format!("2031-03-{:02}T09:00:00Z", 1 + k % 28),
                    "actualHours": 1.0, "billableOption": "Billable", "hourlyRate": 100.0,
                    "status": "ApprovedByTierTwo",
                })
            })
            .collect();
        self.h.sims.cw.seed(Kind::Time, records);
        self.ids.clone()
    }
    async fn read_all(&self) -> Result<Vec<String>, String> {
        let ctx = self.h.local.tenants.get(&self.h.tenant).expect("tenant");
        let (from, to) = far_period();
        let records = ctx
            .psa
            .list_period(Domain::TimeEntries, from, to)
            .await
            .map_err(|e| e.to_string())?;
        Ok(records.into_iter().map(|r| r.id).collect())
    }
}

/// Xero invoices dated in a period (reconciliation's read), 100 to a page.
struct XeroInvoicesInPeriod<'a> {
    h: &'a Harness,
    contact: String,
    refs: Vec<String>,
}

#[async_trait::async_trait]
impl ferry_testkit::contracts::PagedRead for XeroInvoicesInPeriod<'_> {
    fn name(&self) -> String {
        "Xero invoices in a period".into()
    }
    fn page_size(&self) -> usize {
        100
    }
    async fn grow_to(&mut self, n: usize) -> Vec<String> {
        let start = self.refs.len();
        let invoices: Vec<_> = (start..n)
            .map(|k| {
                let reference = format!("PAGING-{k:04}");
                self.refs.push(reference.clone());
                serde_json::json!({
                    "Type": "ACCREC", "Contact": {"ContactID": self.contact},
                    "Date": "2031-03-15", "DueDate": "2031-04-15", "Reference": reference,
                    "Status": "DRAFT", "CurrencyCode": "USD",
                    "LineItems": [{"Description": "paging", "Quantity": "1", "UnitAmount": "10.00", "AccountCode": "200"}],
                })
            })
            .collect();
        for chunk in invoices.chunks(50) {
            let (status, answer) = self
                .h
                .sims
                .xero
                .post_direct("Invoices", &serde_json::json!({ "Invoices": chunk }));
            assert_eq!(status, 200, "seeded: {answer:#}");
            assert!(
                answer["Invoices"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|i| i["HasErrors"] != true)),
                "seeded: {answer:#}"
            );
        }
        self.refs.clone()
    }
    async fn read_all(&self) -> Result<Vec<String>, String> {
        let ctx = self.h.local.tenants.get(&self.h.tenant).expect("tenant");
        let (from, to) = far_period();
        let docs = ctx
            .erp
            .list_documents(ferry_core::posting::DocKind::Invoice, from, to)
            .await
            .map_err(|e| e.to_string())?;
        Ok(docs
            .into_iter()
            .map(|d| d.reference.unwrap_or(d.erp_id))
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulated_paged_read_returns_each_record_once_whatever_the_count() {
    let h = Harness::start_opts(Options {
        host: false,
        ..Options::default()
    })
    .await;
    ferry_testkit::contracts::paging(&mut CwTimeInPeriod {
        h: &h,
        ids: Vec::new(),
    })
    .await;
    let (status, answer) = h.sims.xero.post_direct(
        "Contacts",
        &serde_json::json!({ "Contacts": [{ "Name": "Paging Ltd", "ContactNumber": "PAGING-C" }] }),
    );
    assert_eq!(status, 200, "{answer:#}");
    let contact = answer["Contacts"][0]["ContactID"]
        .as_str()
        .expect("contact id")
        .to_string();
    ferry_testkit::contracts::paging(&mut XeroInvoicesInPeriod {
        h: &h,
        contact,
        refs: Vec::new(),
    })
    .await;
}
