//! Embedded adapters for every Ferry port, on one SQLite database (a file for
//! local runs, `:memory:` in tests), and the in-process host that runs all five
//! handlers with SQS semantics.

pub mod audit;
pub mod budget;
pub mod cursor;
pub mod db;
pub mod dedupe;
pub mod exceptions;
pub mod host;
pub mod idempotency;
pub mod idmap;
pub mod ledger;
pub mod queue;
pub mod reports;
pub mod staging;

use std::path::Path;
use std::sync::Arc;

use ferry_core::periods::PeriodCache;
use ferry_core::ports::Clock;
use ferry_core::{Deps, PortError, Settings, Tenants};

pub use audit::{SqliteAudit, SqliteEvents};
pub use budget::SqliteBudget;
pub use cursor::SqliteCursors;
pub use db::Db;
pub use dedupe::{SqliteDedupe, SqliteLocks, SqliteSecrets};
pub use exceptions::SqliteExceptions;
pub use idempotency::SqliteIdempotency;
pub use idmap::SqliteIdMap;
pub use ledger::SqliteLedger;
pub use queue::SqliteQueue;
pub use reports::SqliteReports;
pub use staging::SqliteStaging;

/// Every embedded adapter over one database.
#[derive(Clone)]
pub struct Store {
    pub db: Db,
    pub queue: Arc<SqliteQueue>,
    pub cursors: Arc<SqliteCursors>,
    pub idempotency: Arc<SqliteIdempotency>,
    pub idmap: Arc<SqliteIdMap>,
    pub exceptions: Arc<SqliteExceptions>,
    pub audit: Arc<SqliteAudit>,
    pub events: Arc<SqliteEvents>,
    pub budget: Arc<SqliteBudget>,
    pub ledger: Arc<SqliteLedger>,
    pub reports: Arc<SqliteReports>,
    pub staging: Arc<SqliteStaging>,
    pub dedupe: Arc<SqliteDedupe>,
    pub secrets: Arc<SqliteSecrets>,
    pub locks: Arc<SqliteLocks>,
}

impl Store {
    /// Opens a database file; `max_receives` is the queues' redrive policy.
    pub fn open(path: &Path, clock: Arc<dyn Clock>, max_receives: u32) -> Result<Store, PortError> {
        Ok(Self::with_db(Db::open(path)?, clock, max_receives))
    }

    /// A fresh in-memory database.
    pub fn memory(clock: Arc<dyn Clock>, max_receives: u32) -> Result<Store, PortError> {
        Ok(Self::with_db(Db::memory()?, clock, max_receives))
    }

    fn with_db(db: Db, clock: Arc<dyn Clock>, max_receives: u32) -> Store {
        Store {
            queue: Arc::new(SqliteQueue::new(db.clone(), clock, max_receives)),
            cursors: Arc::new(SqliteCursors { db: db.clone() }),
            idempotency: Arc::new(SqliteIdempotency { db: db.clone() }),
            idmap: Arc::new(SqliteIdMap { db: db.clone() }),
            exceptions: Arc::new(SqliteExceptions { db: db.clone() }),
            audit: Arc::new(SqliteAudit { db: db.clone() }),
            events: Arc::new(SqliteEvents { db: db.clone() }),
            budget: Arc::new(SqliteBudget { db: db.clone() }),
            ledger: Arc::new(SqliteLedger { db: db.clone() }),
            reports: Arc::new(SqliteReports { db: db.clone() }),
            staging: Arc::new(SqliteStaging { db: db.clone() }),
            dedupe: Arc::new(SqliteDedupe { db: db.clone() }),
            secrets: Arc::new(SqliteSecrets { db: db.clone() }),
            locks: Arc::new(SqliteLocks { db: db.clone() }),
            db,
        }
    }

    /// The tenants this database holds anything for (records, cursors or
    /// secrets), in order: for commands to tell a mistyped tenant from one
    /// with nothing to show.
    pub fn tenants(&self) -> Result<Vec<String>, PortError> {
        self.db
            .with(|c| {
                let mut s = c.prepare(
                    "SELECT tenant FROM ledger UNION SELECT tenant FROM cursors \
                     UNION SELECT tenant FROM secrets ORDER BY tenant",
                )?;
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(|e| PortError::transient("store", "tenants", e.to_string()))
    }

    /// The use cases' dependencies with every store port backed by this database;
    /// tenants and settings come from whoever hosts the handlers.
    pub fn deps(
        &self,
        clock: Arc<dyn Clock>,
        tenants: Arc<dyn Tenants>,
        settings: Settings,
    ) -> Deps {
        Deps {
            clock,
            queue: self.queue.clone(),
            cursors: self.cursors.clone(),
            idempotency: self.idempotency.clone(),
            idmap: self.idmap.clone(),
            exceptions: self.exceptions.clone(),
            audit: self.audit.clone(),
            events: self.events.clone(),
            budget: self.budget.clone(),
            ledger: self.ledger.clone(),
            reports: self.reports.clone(),
            staging: self.staging.clone(),
            dedupe: self.dedupe.clone(),
            tenants,
            periods: Arc::new(PeriodCache::default()),
            settings,
        }
    }
}
