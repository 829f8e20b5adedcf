//! Contract suites. Each function exercises one port through its trait only and
//! panics with a message naming the broken rule. Adapters call them from a test:
//!
//! ```ignore
//! #[tokio::test]
//! async fn sqlite_queue_meets_the_contract() {
//!     let clock = Arc::new(ManualClock::new());
//!     let store = Store::memory(clock.clone(), 3).unwrap();
//!     ferry_testkit::contracts::queue(store.queue.clone(), clock.as_ref(), 3).await;
//! }
//! ```

mod paging;
mod queue;
mod stores;

pub use paging::{PagedRead, boundary_counts, paging};
pub use queue::queue;
pub use stores::{
    audit_log, cursor_store, event_dedupe, exception_store, id_map, idempotency_store, lock_store,
    rate_budget, record_ledger, reports, sample_report, staging,
};

use ferry_canon::TenantId;

/// A tenant id for contract runs; suites use two to prove isolation.
pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("valid test tenant")
}
