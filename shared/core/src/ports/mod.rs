//! Narrow ports: every external thing the use cases touch. Each port has an
//! embedded (SQLite) adapter and an AWS adapter; both pass the same contract
//! suite in `ferry-testkit`.

pub mod audit;
pub mod budget;
pub mod clock;
pub mod cursor;
pub mod dedupe;
pub mod erp;
pub mod events;
pub mod exceptions;
pub mod idempotency;
pub mod idmap;
pub mod ledger;
pub mod lock;
pub mod psa;
pub mod queue;
pub mod reports;
pub mod secrets;
pub mod staging;
pub mod webhook;

pub use audit::{AuditEntry, AuditLog};
pub use budget::{Acquire, RateBudget, RateLimits, Usage};
pub use clock::{Clock, SystemClock, fresh, previous_month};
pub use cursor::{Advance, Cursor, CursorStore};
pub use dedupe::EventDedupe;
pub use erp::*;
pub use events::{DomainEvent, EventPublisher};
pub use exceptions::{ExceptionQuery, ExceptionRecord, ExceptionStatus, ExceptionStore, Owner};
pub use idempotency::{Begin, BeginRequest, IdemRecord, IdemStatus, IdempotencyStore};
pub use idmap::{Claim, ClaimRequest, CommitRequest, IdMap, IdMapEntry};
pub use ledger::{
    Disposition, DomainActivity, LedgerCount, LedgerEntry, Observation, Observe, RecordLedger,
};
pub use lock::LockStore;
pub use psa::*;
pub use queue::{OutboundMessage, Queue, QueueDepth, QueueName, ReceivedMessage};
pub use reports::{ReportSummary, Reports};
pub use secrets::{Secret, Secrets};
pub use staging::{GroupSnapshot, StageRequest, Staging};
pub use webhook::*;
