//! Polling: the compound (timestamp, id) cursor loses nothing across pages of
//! records sharing one timestamp, and advances only after the enqueue.

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
