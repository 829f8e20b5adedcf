//! End to end against real software: Redmine 5.0 (the PSA) into Tryton 8.2 (the
//! ERP), both running on loopback (`make test` starts them through
//! `scripts/with-real-systems.sh`). Every scenario starts from the snapshot
//! databases, enters time in Redmine through its REST API, runs Ferry, and reads
//! Tryton back.

use std::sync::Arc;

use ferry_canon::Domain;
use ferry_core::ports::{Disposition, ErpState, Owner};
use ferry_core::usecases::{reconcile, retry};
use ferry_tests::LostCommits;
use ferry_tests::real::{Real, SERIAL, dec, line_ids, lines, october, template, timesheets};
use rust_decimal::Decimal;
use std::str::FromStr;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

fn row(code: &str, qty: &str, price: &str, amount: &str) -> (String, String, String, String) {
    (code.into(), qty.into(), price.into(), amount.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_billable_time_reaches_tryton_once_with_exact_hours_rates_and_amounts() {
    let _one = SERIAL.lock().await;
    let r = Real::start(template(None), |d| d).await;
    r.sync().await;

    // Customers: one party per top-level Redmine project, Ferry's reference in `code`.
    let mut parties: Vec<(String, String)> = r
        .tryton
        .parties()
        .await
        .expect("parties")
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    parties.sort();
    assert_eq!(
        parties,
        vec![
            (format!("FERRY-C-{}", r.firm.acme), "Acme Corp".to_string()),
            (format!("FERRY-C-{}", r.firm.globex), "Globex".to_string()),
        ]
    );

    // Projects: one Tryton project per Redmine project, under its customer's
    // party; the top-level project (the customer) is one too, for time logged on it.
    let projects = r.tryton.projects().await.expect("projects");
    let mut seen: Vec<(String, String)> = projects
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["party"]["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let (acme, globex) = (
        format!("FERRY-C-{}", r.firm.acme),
        format!("FERRY-C-{}", r.firm.globex),
    );
    assert_eq!(
        seen,
        vec![
            ("Acme Corp".to_string(), acme.clone()),
            ("Acme Mobile App".to_string(), acme.clone()),
            ("Acme Website".to_string(), acme.clone()),
            ("Globex".to_string(), globex.clone()),
            ("Globex ERP Rollout".to_string(), globex.clone()),
        ],
        "rollout: {:?}; exceptions: {:#?}",
        r.disposition(Domain::Projects, r.firm.rollout).await,
        r.open_exceptions().await
    );
    assert!(matches!(
        r.disposition(Domain::Projects, r.firm.acme).await,
        Some(Disposition::Posted { .. })
    ));

    // Time: each approved, billable entry is a timesheet line on its project (on the
    // task, for time spent on a Redmine issue), on the employee of that name (Raj
    // has none in Tryton, so the stand-in employee).
    let e = &r.firm.entries;
    let sheet: Vec<(i64, String, String, String)> = timesheets(&r)
        .await
        .into_iter()
        .map(|(id, project, who, hours, _)| (id, project, who, hours))
        .collect();
    let line = |i: usize, project: &str, who: &str, hours: &str| {
        (
            e[i],
            project.to_string(),
            who.to_string(),
            hours.to_string(),
        )
    };
    assert_eq!(
        sheet,
        vec![
            line(0, "Acme Website", "Jane Doe", "2.5"),
            line(1, "Acme Website", "Integration Bot", "4"),
            line(2, "Acme Website\\Homepage redesign", "Jane Doe", "1.25"),
            line(5, "Acme Mobile App", "Integration Bot", "6.75"),
            line(6, "Globex ERP Rollout", "Jane Doe", "0.33"),
            line(7, "Globex ERP Rollout", "Integration Bot", "7.5"),
        ]
    );

    // One draft invoice per project and month, one line per activity, priced by the rate card.
    let web = r.invoice_of(r.firm.web).await;
    assert_eq!(
        web["party"]["code"],
        format!("FERRY-C-{}", r.firm.acme).as_str()
    );
    assert_eq!(web["state"], "draft");
    assert_eq!(
        lines(&web),
        vec![
            row("CONSULT", "5.25", "150", "787.50"),
            row("DESIGN", "2.5", "120", "300.00")
        ],
        "unapproved (2 h) and non-billable (3 h) time is not billed"
    );
    assert_eq!(dec(&web["total_amount"]), d("1087.50"));
    let app = r.invoice_of(r.firm.app).await;
    assert_eq!(lines(&app), vec![row("CONSULT", "6.75", "150", "1012.50")]);
    let rollout = r.invoice_of(r.firm.rollout).await;
    assert_eq!(
        rollout["party"]["code"],
        format!("FERRY-C-{}", r.firm.globex).as_str()
    );
    assert_eq!(
        lines(&rollout),
        vec![
            row("CONSULT", "0.33", "150", "49.50"),
            row("DESIGN", "7.5", "120", "900.00")
        ]
    );
    assert_eq!(r.invoices().await.len(), 3);

    // Every input ended in one state, with reasons for what was not posted.
    assert!(matches!(
        r.disposition(Domain::TimeEntries, r.firm.entries[3]).await,
        Some(Disposition::Skipped { reason }) if reason == "not billable"
    ));
    assert!(matches!(
        r.disposition(Domain::TimeEntries, r.firm.entries[4]).await,
        Some(Disposition::Skipped { reason }) if reason.starts_with("not approved")
    ));
    assert!(
        r.open_exceptions().await.is_empty(),
        "{:#?}",
        r.open_exceptions().await
    );

    // Running the sync again creates nothing and changes nothing.
    let before = r.invoices().await;
    r.sync().await;
    r.sync().await;
    let after = r.invoices().await;
    assert_eq!(after.len(), 3);
    assert_eq!(
        after.iter().map(line_ids).collect::<Vec<_>>(),
        before.iter().map(line_ids).collect::<Vec<_>>(),
        "no line was rewritten"
    );
    assert_eq!(r.tryton.parties().await.expect("parties").len(), 2);
    assert_eq!(r.tryton.projects().await.expect("projects").len(), 5);
    assert_eq!(timesheets(&r).await.len(), 6);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletions_in_redmine_update_the_tryton_invoice_in_place() {
    let _one = SERIAL.lock().await;
    let r = Real::start(template(None), |d| d).await;
    r.sync().await;
    let web = r.invoice_of(r.firm.web).await;
    let ids = line_ids(&web);
    let sheet = timesheets(&r).await;
    let line_of = |sheet: &[(i64, String, String, String, i64)], entry: i64| {
        sheet
            .iter()
            .find(|l| l.0 == entry)
            .map(|l| (l.3.clone(), l.4))
    };
    let (_, edited_line) = line_of(&sheet, r.firm.entries[2]).expect("a timesheet line");

    // Edit: 1.25 h becomes 2 h; the Development line changes, no line is added.
    r.redmine
        .set_hours(r.firm.entries[2], "2")
        .await
        .expect("edit");
    r.sync().await;
    let edited = r.invoice_of(r.firm.web).await;
    assert_eq!(line_ids(&edited), ids, "the same lines, rewritten");
    assert_eq!(
        line_of(&timesheets(&r).await, r.firm.entries[2]),
        Some(("2".to_string(), edited_line)),
        "the same timesheet line, with the new hours"
    );
    assert_eq!(
        lines(&edited),
        vec![
            row("CONSULT", "6", "150", "900.00"),
            row("DESIGN", "2.5", "120", "300.00")
        ]
    );

    // Delete: Redmine sends nothing; the sweep finds the entry gone and its line goes.
    r.redmine
        .delete_time(r.firm.entries[0])
        .await
        .expect("delete");
    r.sync().await;
    let deleted = r.invoice_of(r.firm.web).await;
    assert_eq!(lines(&deleted), vec![row("CONSULT", "6", "150", "900.00")]);
    assert_eq!(dec(&deleted["total_amount"]), d("900.00"));
    assert_eq!(
        line_of(&timesheets(&r).await, r.firm.entries[0]),
        None,
        "its timesheet line is gone too"
    );
    assert!(matches!(
        r.disposition(Domain::TimeEntries, r.firm.entries[0]).await,
        Some(Disposition::Skipped { reason }) if reason == "deleted in the source"
    ));

    // Approval: the entry a manager approves now joins the invoice.
    r.redmine
        .set_approved(r.firm.entries[4], true, true)
        .await
        .expect("approve");
    r.sync().await;
    let approved = r.invoice_of(r.firm.web).await;
    assert_eq!(
        lines(&approved),
        vec![
            row("CONSULT", "6", "150", "900.00"),
            row("DESIGN", "2", "120", "240.00")
        ]
    );
    assert_eq!(
        r.invoices().await.len(),
        3,
        "still one invoice per project and month"
    );
    assert_eq!(
        line_of(&timesheets(&r).await, r.firm.entries[4]).map(|l| l.0),
        Some("2".to_string()),
        "approved time gets its timesheet line"
    );
    assert_eq!(
        timesheets(&r).await.len(),
        6,
        "5 of the first 6, and the approved one"
    );

    // A new issue in Redmine is a new version of its project: the task appears in
    // Tryton. (The rename moves the projects' cursor past the app project first.)
    r.redmine
        .rename_project(r.firm.rollout, "Globex ERP Rollout")
        .await
        .expect("touch");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    r.sync().await;
    r.redmine
        .issue(r.firm.app, "Push notifications")
        .await
        .expect("issue");
    r.sync().await;
    let mut tasks: Vec<(String, String)> = r
        .tryton
        .tasks()
        .await
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["parent"]["name"].as_str().unwrap_or_default().to_string(),
                t["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    tasks.sort();
    assert_eq!(
        tasks,
        vec![
            (
                "Acme Mobile App".to_string(),
                "Push notifications".to_string()
            ),
            ("Acme Website".to_string(), "Homepage redesign".to_string()),
        ]
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_posted_and_paid_in_tryton_reconciles_clean_and_shows_paid() {
    let _one = SERIAL.lock().await;
    // Ferry posts the invoices itself under this template.
    let r = Real::start(
        template(Some(
            "[template]\nversion = \"1\"\ncustomer = \"real-firm\"\n[domains.time_entries]\ninvoice_status = \"authorised\"\n",
        )),
        |d| d,
    )
    .await;
    r.sync().await;
    let web = r.invoice_of(r.firm.web).await;
    assert_eq!(web["state"], "posted", "Ferry posted it: {web:#}");
    assert!(web["number"].is_string(), "Tryton numbered it");
    let paid = r
        .tryton
        .pay_in_full(web["id"].as_i64().expect("id"), october(31))
        .await
        .expect("pay");
    assert_eq!(paid, d("1087.50"));
    assert_eq!(r.invoice_of(r.firm.web).await["state"], "paid");

    let report = reconcile::run(&r.deps, &r.tenant, october(1), october(31))
        .await
        .expect("reconcile");
    assert!(report.clean, "{report:#?}");
    let total = report.total(|row| &row.erp);
    assert_eq!(
        total.hours,
        d("22.33"),
        "approved billable hours in Tryton: {total:?}"
    );
    let docs: Vec<_> = report.rows.iter().flat_map(|row| &row.documents).collect();
    assert_eq!(docs.len(), 3);
    let web_doc = docs
        .iter()
        .find(|doc| doc.erp_id == format!("account.invoice,{}", web["id"]))
        .expect("the web invoice is reconciled");
    assert_eq!(web_doc.state, ErpState::Paid);
    assert_eq!(
        (web_doc.amount_paid, web_doc.amount_due),
        (d("1087.50"), d("0"))
    );
    assert!(
        docs.iter()
            .filter(|doc| doc.erp_id != web_doc.erp_id)
            .all(|doc| doc.state == ErpState::Posted),
        "{docs:#?}"
    );
    // Timesheet lines are reconciled too: every approved billable hour is on one.
    let psa = report.total(|row| &row.psa);
    assert_eq!(psa.timesheet_hours, psa.hours);
    assert_eq!(total.timesheet_hours, total.hours);

    // A line removed in Tryton by hand is a difference nothing explains.
    let (_, _, _, hours, line) = timesheets(&r).await.into_iter().next().expect("a line");
    r.tryton
        .delete_timesheet_line(line)
        .await
        .expect("deleted in Tryton");
    let report = reconcile::run(&r.deps, &r.tenant, october(1), october(31))
        .await
        .expect("reconcile");
    assert!(!report.clean);
    let missing: Decimal = report
        .rows
        .iter()
        .flat_map(|row| &row.mismatches)
        .filter(|m| m.measure == "timesheet_hours")
        .map(|m| m.unexplained)
        .sum();
    assert_eq!(missing, d(&hours), "{report:#?}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_to_an_invoice_finance_posted_in_tryton_leaves_it_and_says_why() {
    let _one = SERIAL.lock().await;
    // The default template drafts invoices; finance posts this one in Tryton.
    let r = Real::start(template(None), |d| d).await;
    r.sync().await;
    let web = r.invoice_of(r.firm.web).await;
    assert_eq!(web["state"], "draft");
    r.tryton
        .post(web["id"].as_i64().expect("id"))
        .await
        .expect("finance posts it");
    let posted = r.invoice_of(r.firm.web).await;
    assert_eq!(posted["state"], "posted");
    r.redmine
        .set_hours(r.firm.entries[2], "2")
        .await
        .expect("edit");
    r.sync().await;
    let after = r.invoice_of(r.firm.web).await;
    assert_eq!(after["state"], "posted", "finance's posting stands");
    assert_eq!(lines(&after), lines(&posted), "its lines are unchanged");
    let open = r.open_exceptions().await;
    let held: Vec<_> = open
        .iter()
        .filter(|e| e.stage == "post" && e.owner == Owner::Finance)
        .collect();
    assert!(
        held.iter().any(|e| e
            .erp_message
            .as_deref()
            .is_some_and(|m| { m.contains("is posted in Tryton and cannot be changed") })),
        "the refused edit is an exception for finance that says why: {open:#?}"
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tryton_validation_error_is_an_exception_in_trytons_words_and_replays_after_the_fix() {
    let _one = SERIAL.lock().await;
    // Development is mapped to a product with no revenue account: Tryton refuses the lines.
    let broken = template(Some(
        "[template]\nversion = \"1\"\ncustomer = \"real-firm\"\n[value_maps.activity_product]\n\"Development\" = \"NOACCT\"\n",
    ));
    let r = Real::start(broken, |d| d).await;
    r.sync().await;
    let open = r.open_exceptions().await;
    assert_eq!(
        open.len(),
        3,
        "one per project invoice with Development time: {open:#?}"
    );
    for e in &open {
        assert_eq!(e.reason, "erp.validation");
        assert_eq!(e.owner, Owner::Finance);
        let words = e.erp_message.as_deref().unwrap_or_default();
        assert!(
            words.contains("A value is required for field \"Account\""),
            "Tryton's own message: {words}"
        );
    }
    assert!(
        r.invoices().await.is_empty(),
        "nothing half-written in Tryton"
    );

    assert!(
        r.local
            .tenants
            .set_template(&r.tenant, template(None))
            .expect("fits")
    );
    let n = retry::replay_all(&r.deps, &r.tenant, Some(Owner::Finance), None)
        .await
        .expect("replay");
    assert_eq!(n, 3);
    r.settle().await;
    assert!(
        r.open_exceptions().await.is_empty(),
        "{:#?}",
        r.open_exceptions().await
    );
    assert_eq!(r.invoices().await.len(), 3);
    assert_eq!(
        dec(&r.invoice_of(r.firm.web).await["total_amount"]),
        d("1087.50")
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_trytons_commit_and_bookkeeping_finds_the_document_instead_of_writing_twice()
 {
    let _one = SERIAL.lock().await;
    fn crash(mut d: ferry_core::Deps) -> ferry_core::Deps {
        d.idmap = Arc::new(LostCommits::first(d.idmap.clone()));
        d
    }
    let r = Real::start(template(None), crash).await;
    r.sync().await;
    assert_eq!(
        r.tryton.parties().await.expect("parties").len(),
        2,
        "each customer once"
    );
    assert_eq!(
        r.invoices().await.len(),
        3,
        "each invoice once; exceptions: {:#?}; ledger: {:#?}",
        r.open_exceptions().await,
        r.deps.ledger.counts(&r.tenant).await
    );
    let audit = r
        .deps
        .audit
        .list(&r.tenant, None, 1000)
        .await
        .expect("audit");
    assert!(
        audit.iter().any(|a| a.action == "adopt"),
        "the retry found what Tryton committed: {:?}",
        audit.iter().map(|a| a.action.as_str()).collect::<Vec<_>>()
    );
    r.stop().await;
}

/// Admits every call: the paging test measures Tryton, not the budget.
struct Open;

#[async_trait::async_trait]
impl ferry_core::ports::CallGate for Open {
    async fn admit(&self) -> Result<(), ferry_core::ConnectorError> {
        Ok(())
    }
    async fn throttled(&self, _: std::time::Duration) {}
}

/// Tryton's search (every search Ferry makes: lookups, reconciliation, the
/// payment sweeps) on parties, at a page size of 4.
struct TrytonPartySearch {
    client: ferry_connectors::tryton::Client,
    page: usize,
    created: Vec<String>,
}

#[async_trait::async_trait]
impl ferry_testkit::contracts::PagedRead for TrytonPartySearch {
    fn name(&self) -> String {
        "Tryton party search".into()
    }
    fn page_size(&self) -> usize {
        self.page
    }
    async fn grow_to(&mut self, n: usize) -> Vec<String> {
        while self.created.len() < n {
            let k = self.created.len();
            let id = self
                .client
                .create(
                    "party.party",
                    &serde_json::json!({ "name": format!("Paging {k}"), "code": format!("PAGING-{k:03}") }),
                )
                .await
                .expect("call")
                .expect("Tryton creates the party");
            self.created.push(id.to_string());
        }
        self.created.clone()
    }
    async fn read_all(&self) -> Result<Vec<String>, String> {
        let domain = serde_json::json!([["code", "like", "PAGING-%"]]);
        let found = self
            .client
            .search("party.party", &domain, &["id", "code"])
            .await
            .map_err(|e| e.to_string())?;
        let ids: Vec<String> = found.iter().map(|v| v["id"].to_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort_by_key(|i| i.parse::<i64>().unwrap_or(0));
        if sorted != ids {
            return Err(format!("not in id order: {ids:?}"));
        }
        Ok(ids)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tryton_search_reads_every_record_whatever_the_count_against_the_page_size() {
    let _one = SERIAL.lock().await;
    let systems = ferry_cli::real::RealSystems::from_env().expect("real systems");
    systems.restore().expect("restore snapshots");
    let tenant = ferry_canon::TenantId::parse("paging").expect("valid");
    let cfg = systems.tenant_config(
        &tenant,
        &ferry_cli::local::repo_dir().join("templates/redmine-tryton.toml"),
    );
    let mut cfg: ferry_connectors::tryton::TrytonConfig = cfg
        .erp
        .typed()
        .expect("the real systems' tenant posts to Tryton");
    const PAGE: usize = 4;
    cfg.page_size = PAGE;
    let client = ferry_connectors::tryton::Client::new(
        cfg,
        ferry_connectors::credential::Credential::Fixed(ferry_core::ports::Secret::new(
            systems.tryton_key.clone(),
        )),
        Arc::new(Open),
    );
    ferry_testkit::contracts::paging(&mut TrytonPartySearch {
        client,
        page: PAGE,
        created: Vec::new(),
    })
    .await;
}

/// The conformance suite on the real systems: Redmine and Tryton behind fault
/// proxies that answer, when told, with a body that is not JSON, a 500 or a
/// 429; every read is an error of its class, then reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redmine_and_tryton_read_an_answer_they_cannot_use_as_an_error_of_its_class() {
    use ferry_connectors::redmine::config::RedmineConfig;
    use ferry_connectors::registry::{ErpConnection, PsaConnection};
    use ferry_connectors::tryton::TrytonConfig;
    use ferry_sim::fault_proxy::FaultProxy;
    let _one = SERIAL.lock().await;
    let systems = ferry_cli::real::RealSystems::from_env().expect("real systems");
    systems.restore().expect("restore snapshots");
    let admin = ferry_cli::real::RedmineAdmin::connect(&systems)
        .await
        .expect("redmine reachable");
    ferry_tests::real::seed(&admin).await.expect("seed redmine");
    let redmine = FaultProxy::start(&systems.redmine_url)
        .await
        .expect("proxy");
    let tryton = FaultProxy::start(&systems.tryton_url).await.expect("proxy");
    let tenant = ferry_canon::TenantId::parse("conformance").expect("valid");
    let mut cfg = systems.tenant_config(
        &tenant,
        &ferry_cli::local::repo_dir().join("templates/redmine-tryton.toml"),
    );
    let mut psa: RedmineConfig = cfg.psa.typed().expect("Redmine");
    psa.base_url = redmine.origin();
    cfg.psa = PsaConnection::of(&psa);
    let mut erp: TrytonConfig = cfg.erp.typed().expect("Tryton");
    erp.base_url = tryton.origin();
    cfg.erp = ErpConnection::of(&erp);
    let local =
        ferry_cli::local::Local::open(&ferry_cli::local::LocalOptions::default()).expect("store");
    let secrets = systems.secrets();
    let secrets: Vec<(&str, String)> = secrets.iter().map(|(k, v)| (*k, v.clone())).collect();
    local
        .add_tenant(&cfg, template(None), &secrets)
        .await
        .expect("tenant wires");
    let ctx = local.tenants.get(&tenant).expect("tenant");
    let (customers, docs) = ferry_tests::conformance::reads_under_faults(
        &ctx,
        &|f| redmine.inject(f),
        &|f| tryton.inject(f),
        october(1),
        october(31),
    )
    .await;
    assert_eq!(customers, 2, "Redmine's two top-level projects");
    assert_eq!(docs, 0, "nothing posted to Tryton yet");
}

/// Redmine's time entries updated since a day (the read every poll makes), on
/// one project, all logged on one day by one person (so Redmine's sort has
/// ties to break), at a page size of 4.
struct RedmineTimeUpdatedSince {
    admin: ferry_cli::real::RedmineAdmin,
    client: ferry_connectors::redmine::client::Client,
    page: usize,
    project: i64,
    user: i64,
    created: Vec<String>,
}

#[async_trait::async_trait]
impl ferry_testkit::contracts::PagedRead for RedmineTimeUpdatedSince {
    fn name(&self) -> String {
        "Redmine time entries updated since".into()
    }
    fn page_size(&self) -> usize {
        self.page
    }
    async fn grow_to(&mut self, n: usize) -> Vec<String> {
        while self.created.len() < n {
            let id = self
                .admin
                .log(&ferry_cli::real::Time {
                    project: self.project,
                    user: self.user,
                    day: october(5),
                    hours: "1.25",
                    activity: "Development",
                    comments: "paging",
                    billable: true,
                    approved: true,
                    issue: None,
                })
                .await
                .expect("Redmine logs the time");
            self.created.push(id.to_string());
        }
        self.created.clone()
    }
    async fn read_all(&self) -> Result<Vec<String>, String> {
        let found = self
            .client
            .time_entries_updated_since(october(1))
            .await
            .map_err(|e| e.to_string())?;
        Ok(found
            .iter()
            .filter(|v| v["project"]["id"].as_i64() == Some(self.project))
            .map(|v| v["id"].to_string())
            .collect())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redmine_read_gets_every_time_entry_whatever_the_count_against_the_page_size() {
    let _one = SERIAL.lock().await;
    let systems = ferry_cli::real::RealSystems::from_env().expect("real systems");
    systems.restore().expect("restore snapshots");
    let admin = ferry_cli::real::RedmineAdmin::connect(&systems)
        .await
        .expect("redmine reachable");
    let project = admin
        .project("Paging Ltd", "paging", None)
        .await
        .expect("project");
    let user = admin.user("pager", "Page", "Turner").await.expect("user");
    admin.member(project, user).await.expect("member");
    let tenant = ferry_canon::TenantId::parse("paging").expect("valid");
    let cfg = systems.tenant_config(
        &tenant,
        &ferry_cli::local::repo_dir().join("templates/redmine-tryton.toml"),
    );
    let mut cfg: ferry_connectors::redmine::config::RedmineConfig = cfg
        .psa
        .typed()
        .expect("the real systems' tenant reads Redmine");
    const PAGE: usize = 4;
    cfg.page_size = PAGE;
    let client = ferry_connectors::redmine::client::Client::new(
        cfg,
        ferry_connectors::credential::Credential::Fixed(ferry_core::ports::Secret::new(
            systems.redmine_key.clone(),
        )),
    );
    ferry_testkit::contracts::paging(&mut RedmineTimeUpdatedSince {
        admin,
        client,
        page: PAGE,
        project,
        user,
        created: Vec::new(),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulation_crashes_lost_answers_and_edits_leave_one_tryton_document_each_and_agree() {
    let _one = SERIAL.lock().await;
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let first = env("FERRY_REAL_SIM_SEED").unwrap_or(1);
    let seeds = env("FERRY_REAL_SIM_SEEDS").unwrap_or(2);
    let steps = env("FERRY_REAL_SIM_STEPS").unwrap_or(30) as usize;
    let mut failed = Vec::new();
    for seed in first..first + seeds {
        let report = ferry_tests::real_simulation::run(seed, steps).await;
        eprintln!(
            "real seed {seed}: {} records, faults {:?}, {} violations",
            report.records,
            report.faults,
            report.violations.len()
        );
        for v in &report.violations {
            eprintln!("  seed {seed}: {v}");
        }
        if !report.violations.is_empty() {
            failed.push(report);
        }
    }
    if let Some(r) = failed.first() {
        panic!(
            "{} of {seeds} real-systems seeds broke an invariant; the first:\n{}",
            failed.len(),
            r.explain()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_logged_on_the_customers_own_project_gets_its_timesheet_line_and_invoice_line() {
    let _one = SERIAL.lock().await;
    let r = Real::start(template(None), |d| d).await;
    r.redmine
        .member(r.firm.acme, r.firm.jane)
        .await
        .expect("jane may log time on Acme itself");
    let entry = r
        .redmine
        .log(&ferry_cli::real::Time {
            project: r.firm.acme,
            user: r.firm.jane,
            day: october(12),
            hours: "1.5",
            activity: "Design",
            comments: "workshop for the whole account",
            billable: true,
            approved: true,
            issue: None,
        })
        .await
        .expect("logged");
    r.sync().await;
    assert!(
        matches!(
            r.disposition(Domain::TimeEntries, entry).await,
            Some(Disposition::Posted { .. })
        ),
        "{:?}; exceptions: {:#?}",
        r.disposition(Domain::TimeEntries, entry).await,
        r.open_exceptions().await
    );
    let lines = timesheets(&r).await;
    let line = lines
        .iter()
        .find(|l| l.0 == entry)
        .expect("a timesheet line for time on the top-level project");
    assert_eq!((line.1.as_str(), line.3.as_str()), ("Acme Corp", "1.5"));
    let invoice = r.invoice_of(r.firm.acme).await;
    assert!(
        lines_of_amount(&invoice, "180.00"),
        "and its invoice line: {invoice:#}"
    );
    r.stop().await;
}

fn lines_of_amount(invoice: &serde_json::Value, amount: &str) -> bool {
    lines(invoice).iter().any(|l| l.3 == amount)
}
