//! End to end through the local pipeline: ConnectWise simulator → intake →
//! transform → post → Xero simulator.

use ferry_canon::Domain;
use ferry_tests::{Harness, Kind, small_firm};

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
    let _ = Kind::Time;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_dump_exceptions() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    for e in h.open_exceptions().await.iter() {
        eprintln!(
            "EXC {} {} {} field={:?} rule={:?}",
            e.source_key, e.reason, e.message, e.field, e.rule
        );
    }
    for c in h.sims.xero.contacts() {
        eprintln!("CONTACT {} {}", c["ContactNumber"], c["Name"]);
    }
}
