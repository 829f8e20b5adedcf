//! End to end through the local pipeline: ConnectWise simulator → intake →
//! transform → post → Xero simulator.

use ferry_canon::Domain;
use ferry_tests::{Harness, small_firm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_posts_customers_and_summary_invoices_and_explains_every_other_record() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let contacts = h.sims.xero.contacts();
    assert!(
        contacts.len() >= 4,
        "customers became Xero contacts: {}",
        contacts.len()
    );
    let invoices = h.live_invoices();
    assert!(!invoices.is_empty(), "T&M time became invoices");
    for d in [Domain::TimeEntries, Domain::Expenses, Domain::Customers] {
        let pending = h.count(d, "pending").await + h.count(d, "queued").await;
        assert_eq!(pending, 0, "every {d} record reached a final state");
    }
    let posted = h.count(Domain::TimeEntries, "posted").await;
    assert!(posted > 50, "time posted: {posted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seeded_bad_record_is_an_exception_with_its_reason_and_nothing_else_is() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    h.sims.firm.add_late(&h.sims.cw).await;
    h.settle().await;
    let open = h.open_exceptions().await;
    for bad in &h.sims.firm.bad {
        let found = open.iter().find(|e| e.source_key == bad.record_key());
        let e = found.unwrap_or_else(|| panic!("no exception for {} ({})", bad.id, bad.what));
        assert_eq!(e.reason, bad.expect_reason, "{}: {}", bad.what, e.message);
        assert!(!e.message.is_empty());
    }
    assert_eq!(
        open.len(),
        h.sims.firm.bad.len(),
        "only the seeded bad records are exceptions: {:#?}",
        open.iter()
            .map(|e| (&e.source_key, &e.reason))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_different_types_with_the_same_id_do_not_collide() {
    use ferry_canon::Domain;
    use ferry_core::ports::Disposition;
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    // ConnectWise ids are unique per record type: a time entry may share an invoice's id.
    let invoice = h.sims.firm.invoices[0]["id"].as_i64().expect("id");
    assert!(matches!(
        h.disposition(Domain::Invoices, invoice).await,
        Some(Disposition::Posted { .. })
    ));
    let project = h
        .sims
        .firm
        .projects
        .iter()
        .find(|p| p["billingMethod"] == "ActualRates" && p["department"].is_object())
        .expect("project")
        .clone();
    h.sims
        .cw
        .create(
            ferry_tests::Kind::Time,
            serde_json::json!({
                "id": invoice, "company": project["company"], "chargeToType": "ProjectTicket",
                "chargeToId": project["id"], "project": {"id": project["id"]},
                "member": {"id": 2, "identifier": "m1", "name": "Ben"}, "workRole": {"id": 1, "name": "Consultant"},
                "timeStart": format!("{}T14:00:00Z", small_firm().month), "actualHours": 2.0,
                "billableOption": "Billable", "hourlyRate": 145.00, "status": "ApprovedByTierTwo",
            }),
        )
        .await;
    h.settle().await;
    assert!(matches!(
        h.disposition(Domain::TimeEntries, invoice).await,
        Some(Disposition::Posted { .. })
    ));
    assert!(
        matches!(
            h.disposition(Domain::Invoices, invoice).await,
            Some(Disposition::Posted { .. })
        ),
        "the invoice's ledger entry is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_on_a_project_the_psa_does_not_have_is_an_exception_for_project_operations() {
    use ferry_core::ports::Disposition;
    use ferry_core::ports::Owner;
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let company = h.sims.firm.projects[0]["company"].clone();
    h.sims
        .cw
        .create(
            ferry_tests::Kind::Time,
            serde_json::json!({
                "id": 777001, "company": company, "chargeToType": "ProjectTicket",
                "chargeToId": 999999, "project": {"id": 999999},
                "member": {"id": 2, "identifier": "m1", "name": "Ben"}, "workRole": {"id": 1, "name": "Consultant"},
                "timeStart": format!("{}T14:00:00Z", small_firm().month), "actualHours": 2.0,
                "billableOption": "Billable", "hourlyRate": 145.00, "status": "ApprovedByTierTwo",
            }),
        )
        .await;
    h.settle().await;
    match h.disposition(Domain::TimeEntries, 777001).await {
        Some(Disposition::Exception { reason, owner, .. }) => {
            assert_eq!(reason, "validation.unknown_reference");
            assert_eq!(owner, Owner::ProjectOperations);
        }
        other => panic!("expected an exception, got {other:?}"),
    }
    let open = h.open_exceptions().await;
    let e = open
        .iter()
        .find(|e| e.source_key == "time_entries/connectwise:777001")
        .expect("the exception is listed");
    assert!(
        e.message
            .contains("project connectwise:999999 does not exist in the PSA"),
        "{}",
        e.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_xero_access_token_is_refreshed_from_one_minute_before_it_expires() {
    use std::sync::Arc;
    use std::time::Duration;

    use ferry_connectors::xero::OAuthTokens;
    use ferry_testkit::ManualClock;

    let xero = ferry_sim::xero::XeroSim::start(ferry_sim::xero::XeroSimConfig::default())
        .await
        .expect("Xero simulator");
    xero.set_access_token_ttl(Duration::from_secs(1800));
    // New Year's Eve, 23:40: the token's last usable minute starts just after midnight.
    let t0 = chrono::DateTime::parse_from_rfc3339("2027-12-31T23:40:00Z")
        .expect("valid")
        .with_timezone(&chrono::Utc);
    let clock = Arc::new(ManualClock::at(t0));
    let store = ferry_embedded::Store::memory(clock.clone(), 3).expect("store");
    let tenant = ferry_canon::TenantId::parse("acme").expect("slug");
    let cfg = xero.config();
    for (name, value) in [
        ("xero.client_id", &cfg.client_id),
        ("xero.client_secret", &cfg.client_secret),
        ("xero.refresh_token", &cfg.refresh_token),
    ] {
        store.secrets.set(&tenant, name, value).expect("secret");
    }
    let function = || {
        OAuthTokens::new(
            tenant.clone(),
            store.secrets.clone(),
            store.locks.clone(),
            clock.clone(),
            xero.token_url(),
            Duration::from_secs(5),
        )
    };
    let (a, b) = (function(), function());
    let first = a.access_token().await.expect("first token");
    assert_eq!(xero.token_refreshes(), 1);
    // Valid until t0 + 30 min; refreshed once less than a minute of it is left.
    let last_minute = t0 + chrono::Duration::seconds(1800 - 60);
    clock.set(last_minute - chrono::Duration::milliseconds(1));
    assert_eq!(
        a.access_token().await.expect("cached").expose(),
        first.expose()
    );
    assert_eq!(
        b.access_token().await.expect("stored").expose(),
        first.expose(),
        "another function uses the stored token until its last minute"
    );
    assert_eq!(
        xero.token_refreshes(),
        1,
        "no refresh before the last minute"
    );
    clock.set(last_minute);
    let second = b.access_token().await.expect("refreshed");
    assert_ne!(
        second.expose(),
        first.expose(),
        "in its last minute it is refreshed"
    );
    assert_eq!(
        a.access_token().await.expect("stored").expose(),
        second.expose(),
        "and the other function takes the stored new token without refreshing"
    );
    assert_eq!(xero.token_refreshes(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_for_a_tenant_this_process_does_not_serve_stays_queued_with_an_exception() {
    use ferry_core::messages::{ChangeNotice, Envelope, FlushGroup, Origin};
    use ferry_core::ports::{
        ChangeAction, ExceptionStatus, OutboundMessage, QueueName, ReceivedMessage,
    };
    use ferry_core::usecases::{outcome::Outcome, post, transform};
    let h = ferry_tests::Harness::start_opts(ferry_tests::Options {
        host: false,
        ..ferry_tests::Options::default()
    })
    .await;
    let other = ferry_canon::TenantId::parse("another-firm").expect("valid");
    let notice = Envelope::Change(ChangeNotice {
        tenant: other.clone(),
        system: ferry_canon::SystemId::parse("connectwise").expect("valid"),
        domain: Domain::TimeEntries,
        id: "77".into(),
        action: ChangeAction::Upsert,
        version: None,
        record: None,
        origin: Origin::Poll,
        received_at: h.now(),
        correlation_id: "c-1".into(),
    });
    let flush = Envelope::Flush(FlushGroup {
        tenant: other.clone(),
        domain: Domain::TimeEntries,
        group: "summary/project_billing/connectwise:1/2026-10".into(),
        created_at: h.now(),
        correlation_id: "c-2".into(),
    });
    let received = |body: String| ReceivedMessage {
        id: "m".into(),
        receipt: "r".into(),
        body,
        receive_count: 1,
        sent_at: h.now(),
    };
    let outcomes = transform::handle_batch(&h.deps, &[received(notice.to_body())]).await;
    assert!(
        matches!(&outcomes[..], [Outcome::Retry { reason, .. }] if reason.contains("another-firm")),
        "a notice of an unserved tenant is retried, not deleted: {outcomes:?}"
    );
    let outcomes = post::handle_batch(
        &h.deps,
        ferry_core::Invocation::UNBOUNDED,
        &[received(flush.to_body())],
    )
    .await;
    assert!(
        matches!(&outcomes[..], [Outcome::Retry { .. }]),
        "a summary flush of an unserved tenant is retried, not deleted: {outcomes:?}"
    );
    let query = |status| ferry_core::ports::ExceptionQuery {
        tenant: Some(other.clone()),
        statuses: vec![status],
        ..Default::default()
    };
    let raised = h
        .deps
        .exceptions
        .list(&query(ExceptionStatus::Retrying))
        .await
        .expect("exceptions");
    let mut seen: Vec<(String, String)> = raised
        .iter()
        .map(|e| (e.stage.clone(), e.reason.to_string()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("post".to_string(), "tenant.not_served".to_string()),
            ("transform".to_string(), "tenant.not_served".to_string())
        ],
        "each is visible as an exception for support"
    );
    // Dead-lettered after the receive limit, the message is parked with that reason.
    h.deps
        .queue
        .send(
            QueueName::TransformDlq,
            vec![OutboundMessage::now(notice.to_body())],
        )
        .await
        .expect("send");
    ferry_core::usecases::retry::drain_dead_letters(&h.deps, QueueName::TransformDlq, 10)
        .await
        .expect("drain");
    let parked = h
        .deps
        .exceptions
        .list(&query(ExceptionStatus::Open))
        .await
        .expect("exceptions");
    assert!(
        parked
            .iter()
            .any(|e| e.reason == "tenant.not_served" && !e.replay_body.is_empty()),
        "parked with its reason and its message: {parked:#?}"
    );
}

/// A change notice that ran out of deliveries (throttled six times, say) after
/// a later notice of the same record was fetched and posted must not put that
/// record back into `exception`: the record's newest state is decided. A notice
/// nothing has superseded is still parked as an exception.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_that_a_newer_version_superseded_is_dropped_and_the_record_stays_posted() {
    use ferry_canon::{SourceVersion, SystemId};
    use ferry_core::messages::{ChangeNotice, Envelope, Origin};
    use ferry_core::ports::{ChangeAction, Disposition, OutboundMessage, QueueName};
    use ferry_core::usecases::retry::drain_dead_letters;
    let mut h = Harness::start(small_firm()).await;
    h.sync().await;
    // The drains below are this test's own: the host's sweeper stops first.
    h.host.take().expect("host").shutdown().await;
    let id = h.sims.firm.time[0]["id"].as_i64().expect("id");
    let key = format!("time_entries/connectwise:{id}");
    let entry = h
        .deps
        .ledger
        .get(&h.tenant, &key)
        .await
        .expect("ledger")
        .expect("the record is in the ledger");
    assert!(matches!(entry.disposition, Disposition::Posted { .. }));
    let notice = |version: Option<SourceVersion>, received_at| {
        Envelope::Change(ChangeNotice {
            tenant: h.tenant.clone(),
            system: SystemId::parse("connectwise").expect("valid"),
            domain: Domain::TimeEntries,
            id: id.to_string(),
            action: ChangeAction::Upsert,
            version,
            record: None,
            origin: Origin::Poll,
            received_at,
            correlation_id: "c-stale".into(),
        })
        .to_body()
    };
    let earlier = entry.received_at - chrono::Duration::minutes(5);
    let newer = SourceVersion::at(entry.version.updated_at + chrono::Duration::seconds(1));
    let drain = async |bodies: Vec<String>| {
        h.deps
            .queue
            .send(
                QueueName::TransformDlq,
                bodies.into_iter().map(OutboundMessage::now).collect(),
            )
            .await
            .expect("send");
        drain_dead_letters(&h.deps, QueueName::TransformDlq, 10)
            .await
            .expect("drain")
    };
    // Older than what was posted, by version and by arrival: superseded.
    let r = drain(vec![
        notice(Some(entry.version.clone()), earlier),
        notice(None, earlier),
    ])
    .await;
    assert_eq!((r.superseded, r.parked), (2, 0), "{r:?}");
    let open = h.open_exceptions().await;
    assert!(
        !open.iter().any(|e| e.source_key == key),
        "a superseded notice raises nothing: {open:#?}"
    );
    let after = h.deps.ledger.get(&h.tenant, &key).await.expect("ledger");
    assert_eq!(after.map(|e| e.disposition), Some(entry.disposition));
    // A notice of a version the ledger has not seen is parked with an owner.
    let r = drain(vec![notice(Some(newer), earlier)]).await;
    assert_eq!((r.superseded, r.parked), (0, 1), "{r:?}");
    let open = h.open_exceptions().await;
    assert!(
        open.iter().any(|e| e.source_key == key),
        "the unsuperseded notice is an exception: {open:#?}"
    );
}

/// Whoever decides a record resolves its open exceptions — but never the one
/// its ledger row is still held by (a post of an older version finishing while
/// a newer version is held, say): a held record always names an open exception.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exception_that_still_holds_its_record_is_not_resolved_by_a_write_of_another_version() {
    use ferry_core::ReasonCode;
    use ferry_core::ports::{Disposition, ExceptionRecord, ExceptionStatus, Owner, QueueName};
    use ferry_core::usecases::exceptions::{exception_id, raise, resolve_moved_on};
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let id = h.sims.firm.time[0]["id"].as_i64().expect("id");
    let key = format!("time_entries/connectwise:{id}");
    let entry = h
        .deps
        .ledger
        .get(&h.tenant, &key)
        .await
        .expect("ledger")
        .expect("in the ledger");
    let posted = entry.disposition.clone();
    let now = h.now();
    let exception = |stage: &str, reason: ReasonCode| ExceptionRecord {
        id: exception_id(&h.tenant, stage, &key),
        tenant: h.tenant.clone(),
        stage: stage.into(),
        domain: Domain::TimeEntries,
        source_key: key.clone(),
        reason,
        message: format!("{reason} (test)"),
        field: None,
        rule: None,
        erp_message: None,
        owner: Owner::Support,
        status: ExceptionStatus::Open,
        attempts: 1,
        first_seen: now,
        last_seen: now,
        amount: None,
        hours: None,
        doc_key: None,
        blocked_by: None,
        replay_queue: QueueName::Transform,
        replay_body: String::new(),
    };
    let holder = raise(
        &h.deps,
        exception("transform", ReasonCode::DependencyBlocked),
    )
    .await
    .expect("raised");
    let other = raise(&h.deps, exception("post", ReasonCode::ErpUnavailable))
        .await
        .expect("raised");
    let held = Disposition::Exception {
        exception_id: holder.id.clone(),
        reason: holder.reason,
        owner: holder.owner,
    };
    assert!(
        h.deps
            .ledger
            .settle(&h.tenant, &key, &entry.version, &held)
            .await
            .expect("settle")
    );
    let n = resolve_moved_on(&h.deps, &h.tenant, &key, now)
        .await
        .expect("resolve");
    let open: Vec<String> = h
        .open_exceptions()
        .await
        .into_iter()
        .filter(|e| e.source_key == key)
        .map(|e| e.id)
        .collect();
    assert_eq!((n, open), (1, vec![holder.id.clone()]), "{}", other.id);
    // Once the row moves on, the holder goes too.
    h.deps
        .ledger
        .settle(&h.tenant, &key, &entry.version, &posted)
        .await
        .expect("settle");
    assert_eq!(
        resolve_moved_on(&h.deps, &h.tenant, &key, now)
            .await
            .expect("resolve"),
        1
    );
    assert!(
        !h.open_exceptions()
            .await
            .iter()
            .any(|e| e.source_key == key)
    );
}

/// `ferry run --psa X --erp Y` on every pair of the simulators' stage but the
/// default one (which every other test here runs on): a small firm, the whole
/// story (backfill, people's changes, finance, payments, reconciliation), and
/// nothing unexplained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_explained_on_every_other_pair_of_simulators() {
    use ferry_cli::demo::{DEFAULT_ERP, DEFAULT_PSA, DemoOptions, run, stage::pairs};
    let others: Vec<_> = pairs()
        .into_iter()
        .filter(|p| *p != (DEFAULT_PSA, DEFAULT_ERP))
        .collect();
    assert!(!others.is_empty(), "Harvest → Xero at least");
    let dir = tempfile::tempdir().expect("dir");
    for (n, (psa, erp)) in others.into_iter().enumerate() {
        // The console's demo state once: it does not depend on the pair.
        let console_state = n == 0;
        let db = dir.path().join(format!("{psa}-{erp}.db"));
        let outcome = run(&DemoOptions {
            members: 12,
            seed: 7,
            db: db.clone(),
            month: Some(small_firm().month),
            progress: false,
            psa: psa.into(),
            erp: erp.into(),
            console_state,
        })
        .await
        .unwrap_or_else(|e| panic!("{psa} → {erp}: {e:#}"));
        assert!(
            outcome.unexplained.is_empty(),
            "{psa} → {erp}: {:#?}",
            outcome.unexplained
        );
        assert!(
            outcome.expected_bad_records >= 8,
            "{psa} → {erp}: the firm's bad records were carried: {}",
            outcome.expected_bad_records
        );
        assert!(
            outcome.summary.total().posted > 0,
            "{psa} → {erp}: something posted"
        );
        if console_state {
            console_state_is_left(&db, &outcome).await;
        }
    }
}

/// What `make run` leaves for `ferry console`: the firm and two more
/// customers with data, under two partners' brands, and one user per role.
async fn console_state_is_left(db: &std::path::Path, outcome: &ferry_cli::demo::DemoOutcome) {
    use ferry_console::{ConsoleStore, SqliteConsoleStore};
    let store = SqliteConsoleStore::open(db).expect("console tables");
    let northwind: Vec<String> = store
        .customers("northwind")
        .await
        .expect("directory")
        .into_iter()
        .map(|c| c.tenant.to_string())
        .collect();
    let bluefin: Vec<String> = store
        .customers("bluefin")
        .await
        .expect("directory")
        .into_iter()
        .map(|c| c.tenant.to_string())
        .collect();
    assert!(
        northwind.contains(&"demo-firm".to_string()) && northwind.contains(&"acme".to_string())
    );
    assert!(bluefin.contains(&"globex".to_string()));
    let local = ferry_cli::local::Local::open(&ferry_cli::local::LocalOptions {
        db: Some(db.to_path_buf()),
        ..Default::default()
    })
    .expect("demo db");
    for t in ["demo-firm", "acme", "globex"] {
        let tenant = ferry_canon::TenantId::parse(t).expect("slug");
        let h = ferry_core::usecases::health::snapshot(&local.deps, &tenant)
            .await
            .expect("health");
        assert!(!h.last_posted.is_empty(), "{t} has posted something");
        assert_eq!(
            local
                .deps
                .reports
                .list(&tenant, 5)
                .await
                .expect("reports")
                .len(),
            1,
            "{t}'s month is reconciled and kept"
        );
    }
    let roles: std::collections::BTreeSet<_> =
        outcome.console_users.iter().map(|u| u.role).collect();
    assert_eq!(roles.len(), 4, "a user for every role");
    for u in &outcome.console_users {
        let stored = store.user(u.name).await.expect("read").expect("stored");
        assert!(ferry_console::auth::verify_password(
            ferry_cli::demo::console::DEMO_PASSWORD,
            &stored.password_hash
        ));
    }
}

/// The demo takes the months from the first the template's date bounds
/// accept whole to the current one, on any date of the month, and refuses the
/// others before anything starts, naming the months it takes.
#[test]
fn the_demo_refuses_a_month_it_could_not_explain_up_front() {
    use ferry_cli::demo::{check_month, demo_months, stage::template};
    use ferry_testkit::ManualClock;
    let month = |y, m| chrono::NaiveDate::from_ymd_opt(y, m, 1).expect("valid");
    let at = |s: &str| {
        ManualClock::at(
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("valid")
                .with_timezone(&chrono::Utc),
        )
    };
    let template = template("connectwise", "xero").expect("template");
    assert_eq!(template.bounds.max_days_back, 3 * 366, "the default bound");
    let last_minute_of_december = at("2027-12-31T23:59:00Z");
    let first_of_december = at("2027-12-01T00:00:00Z");
    // 1,098 days before 2027-12-01 is 2024-11-28, and
    // before 2027-12-31 it is 2024-12-28: the first whole months after them.
    for (clock, first) in [
        (&first_of_december, month(2024, 12)),
        (&last_minute_of_december, month(2025, 1)),
    ] {
        assert_eq!(demo_months(&template, clock), (first, month(2027, 12)));
        assert!(
            check_month(None, &template, clock).is_ok(),
            "the default month"
        );
        assert!(check_month(Some(month(2027, 12)), &template, clock).is_ok());
        assert!(
            check_month(Some(first), &template, clock).is_ok(),
            "{first}"
        );
        let before = first - chrono::Months::new(1);
        for (m, why) in [
            (month(2028, 1), "after the current month"),
            (month(2030, 6), "after the current month"),
            (before, "older than the template accepts"),
            (month(1, 1), "older than the template accepts"),
        ] {
            let e = check_month(Some(m), &template, clock).expect_err("refused");
            let text = e.to_string();
            assert!(
                text.contains(why) && text.contains(&first.format("%Y-%m").to_string()),
                "{m}: says why and names the months taken: {text}"
            );
        }
    }
}
