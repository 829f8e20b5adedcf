//! Every embedded adapter passes its port's contract suite.

use std::sync::Arc;

use ferry_embedded::Store;
use ferry_testkit::{ManualClock, contracts};

fn store() -> (Arc<ManualClock>, Store) {
    let clock = Arc::new(ManualClock::new());
    let store = Store::memory(clock.clone(), 3).expect("in-memory store");
    (clock, store)
}

#[tokio::test]
async fn queue_meets_the_contract() {
    let (clock, s) = store();
    contracts::queue(s.queue.clone(), clock.as_ref(), 3).await;
}

#[tokio::test]
async fn cursor_store_meets_the_contract() {
    contracts::cursor_store(store().1.cursors).await;
}

#[tokio::test]
async fn idempotency_store_meets_the_contract() {
    contracts::idempotency_store(store().1.idempotency).await;
}

#[tokio::test]
async fn id_map_meets_the_contract() {
    contracts::id_map(store().1.idmap).await;
}

#[tokio::test]
async fn exception_store_meets_the_contract() {
    contracts::exception_store(store().1.exceptions).await;
}

#[tokio::test]
async fn audit_log_meets_the_contract() {
    contracts::audit_log(store().1.audit).await;
}

#[tokio::test]
async fn rate_budget_meets_the_contract() {
    contracts::rate_budget(store().1.budget).await;
}

#[tokio::test]
async fn record_ledger_meets_the_contract() {
    contracts::record_ledger(store().1.ledger).await;
}

#[tokio::test]
async fn reports_meet_the_contract() {
    contracts::reports(store().1.reports).await;
}

#[tokio::test]
async fn staging_meets_the_contract() {
    contracts::staging(store().1.staging).await;
}

#[tokio::test]
async fn event_dedupe_meets_the_contract() {
    contracts::event_dedupe(store().1.dedupe).await;
}

#[tokio::test]
async fn lock_store_meets_the_contract() {
    contracts::lock_store(store().1.locks).await;
}

#[tokio::test]
async fn the_audit_table_refuses_updates_and_deletes() {
    let (_, s) = store();
    use ferry_core::ports::AuditLog;
    let entry = ferry_core::ports::AuditEntry {
        tenant: contracts::tenant("acme"),
        at: chrono::DateTime::from_timestamp(1_830_297_599, 0).expect("valid"),
        doc_key: "d".into(),
        erp_system: "xero".into(),
        erp_id: None,
        action: "create".into(),
        version: 1,
        source_keys: vec![],
        source_hash: "s".into(),
        template_version: "t".into(),
        idempotency_key: "k".into(),
        request: "{}".into(),
        response: "{}".into(),
        correlation_id: "c".into(),
    };
    s.audit.append(&entry).await.expect("append");
    let update =
        s.db.with(|c| c.execute("UPDATE audit SET doc_key = 'x'", []));
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = s.db.with(|c| c.execute("DELETE FROM audit", []));
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}
