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

/// Harvest time entries (`updated_since` reads, `links.next` paging), a few to a page.
struct HarvestTime {
    account: ferry_tests::harvest::HarvestAccount,
    ids: Vec<String>,
    page: u32,
}

#[async_trait::async_trait]
impl ferry_testkit::contracts::PagedRead for HarvestTime {
    fn name(&self) -> String {
        "Harvest time entries".into()
    }
    fn page_size(&self) -> usize {
        self.page as usize
    }
    async fn grow_to(&mut self, n: usize) -> Vec<String> {
        let a = &self.account;
        let c = a.client("Paging Inc.", "USD");
        let p = a.project(&c, "Paging", false);
        let t = a.task(&p, 1, "Design");
        let u = a.user("Pat", "Paging");
        while self.ids.len() < n {
            let day = format!("2031-03-{:02}", 1 + self.ids.len() % 28);
            let e = a.time(&u, &p, &t, &day, "1.25", "150", true);
            self.ids.push(e["id"].to_string());
        }
        self.ids.clone()
    }
    async fn read_all(&self) -> Result<Vec<String>, String> {
        use ferry_core::ports::PsaConnector;
        let h = self.account.connect(self.page);
        let records = h
            .changes(Domain::TimeEntries, None, u32::MAX)
            .await
            .map_err(|e| e.to_string())?;
        Ok(records.into_iter().map(|r| r.id).collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harvest_reads_meet_the_paging_contract() {
    let account =
        ferry_tests::harvest::HarvestAccount::start_with(ferry_sim::harvest::HarvestSimConfig {
            limit: None,
            ..Default::default()
        })
        .await;
    ferry_testkit::contracts::paging(&mut HarvestTime {
        account,
        ids: Vec::new(),
        page: 4,
    })
    .await;
}

/// Reads every change of `domain` the way the poller does: pages of `limit`
/// from the cursor, the cursor moved to the last record of each page.
async fn drain(
    h: &ferry_connectors::harvest::Harvest,
    domain: Domain,
    cursor: &mut Option<ferry_core::ports::Cursor>,
    limit: u32,
) -> Vec<String> {
    use ferry_core::ports::{Cursor, PsaConnector};
    let mut ids = Vec::new();
    loop {
        let page = h
            .changes(domain, cursor.as_ref(), limit)
            .await
            .expect("changes");
        let Some(last) = page.last() else {
            return ids;
        };
        *cursor = Some(Cursor::new(last.version.updated_at, last.id.clone()));
        ids.extend(page.into_iter().map(|r| r.id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harvest_changes_follow_the_cursor_though_harvest_sorts_time_by_date() {
    let a =
        ferry_tests::harvest::HarvestAccount::start_with(ferry_sim::harvest::HarvestSimConfig {
            limit: None,
            ..Default::default()
        })
        .await;
    let c = a.client("Globex Inc.", "USD");
    let p = a.project(&c, "ERP rollout", false);
    let t = a.task(&p, 1, "Design");
    let u = a.user("Ava", "Adams");
    // Dates out of step with entry order: Harvest lists newest date first.
    let mut seeded = Vec::new();
    for k in 0..9 {
        let day = format!("2031-03-{:02}", 20 - 2 * k);
        seeded.push(a.time(&u, &p, &t, &day, "2", "150", true)["id"].to_string());
    }
    let h = a.connect(3);
    let mut cursor = None;
    let mut first = drain(&h, Domain::TimeEntries, &mut cursor, 2).await;
    first.sort();
    seeded.sort();
    assert_eq!(
        first, seeded,
        "every entry once, across pages of 3 and polls of 2"
    );

    // An edit a second later (the vendor stamps seconds) comes back, alone.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let edited = seeded[4].parse::<i64>().expect("id");
    a.sim
        .update("time_entries", edited, serde_json::json!({ "hours": 3.5 }))
        .expect("edited");
    let again = drain(&h, Domain::TimeEntries, &mut cursor, 2).await;
    assert_eq!(
        again,
        vec![edited.to_string()],
        "only the edited entry is new"
    );
    assert!(
        drain(&h, Domain::TimeEntries, &mut cursor, 2)
            .await
            .is_empty(),
        "nothing after it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harvest_answers_that_cannot_be_read_are_errors_of_their_class_never_an_empty_read() {
    use ferry_core::ConnectorError;
    use ferry_core::ports::PsaConnector;
    use ferry_sim::harvest::HarvestFaults;
    let a =
        ferry_tests::harvest::HarvestAccount::start_with(ferry_sim::harvest::HarvestSimConfig {
            limit: None,
            ..Default::default()
        })
        .await;
    let c = a.client("Initech LLC", "USD");
    let p = a.project(&c, "Data platform", false);
    let t = a.task(&p, 1, "Programming");
    let u = a.user("Ben", "Baker");
    for k in 0..7 {
        a.time(
            &u,
            &p,
            &t,
            &format!("2031-04-{:02}", k + 1),
            "1",
            "150",
            true,
        );
    }
    let h = a.connect(3);
    let read = || h.changes(Domain::TimeEntries, None, u32::MAX);
    let class = |r: Result<Vec<ferry_core::ports::SourceRecord>, ConnectorError>| match r {
        Ok(v) => format!("ok {}", v.len()),
        Err(ConnectorError::Protocol { .. }) => "protocol".into(),
        Err(ConnectorError::Transient { .. }) => "transient".into(),
        Err(ConnectorError::Throttled { .. }) => "throttled".into(),
        Err(e) => format!("other {e}"),
    };
    for (fault, expect) in [
        (
            HarvestFaults {
                garbage_next: 1,
                ..Default::default()
            },
            "protocol",
        ),
        (
            HarvestFaults {
                fail_next: 1,
                ..Default::default()
            },
            "transient",
        ),
        (
            HarvestFaults {
                throttle_next: 1,
                ..Default::default()
            },
            "throttled",
        ),
        (
            HarvestFaults {
                foreign_next_link: true,
                ..Default::default()
            },
            "protocol",
        ),
        // Someone logs time while Ferry pages: the read starts again and loses nothing.
        (
            HarvestFaults {
                grow_after_first_page: 1,
                ..Default::default()
            },
            "ok 8",
        ),
    ] {
        a.sim.set_faults(fault.clone());
        assert_eq!(class(read().await), expect, "{fault:?}");
        a.sim.set_faults(HarvestFaults::default());
    }
    assert_eq!(class(read().await), "ok 8", "faults gone, everything reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harvest_rate_limit_answers_429_with_the_wait_and_ferry_reports_it() {
    use ferry_core::ConnectorError;
    use ferry_core::ports::PsaConnector;
    let a =
        ferry_tests::harvest::HarvestAccount::start_with(ferry_sim::harvest::HarvestSimConfig {
            limit: Some((3, std::time::Duration::from_secs(15))),
            ..Default::default()
        })
        .await;
    a.client("Umbrella Corp.", "USD");
    let h = a.connect(100);
    for _ in 0..3 {
        h.changes(Domain::Customers, None, 10)
            .await
            .expect("within the limit");
    }
    match h.changes(Domain::Customers, None, 10).await {
        Err(ConnectorError::Throttled { retry_after, .. }) => {
            let wait = retry_after.expect("Retry-After read");
            assert!(
                (1..=16).contains(&wait.as_secs()),
                "the window's rest: {wait:?}"
            );
        }
        other => panic!("the fourth call in 15 s is throttled: {other:?}"),
    }
}
