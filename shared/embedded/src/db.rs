//! The SQLite database shared by every embedded adapter.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use ferry_core::PortError;
use rusqlite::Connection;

/// One connection behind a mutex. SQLite has one writer at a time anyway, and
/// every statement here is short, so the lock is held for microseconds.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = r#"
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS queue_visible ON queue_messages(queue, visible_at, seq);
CREATE UNIQUE INDEX IF NOT EXISTS queue_receipt ON queue_messages(receipt);

CREATE TABLE IF NOT EXISTS cursors (
    tenant TEXT NOT NULL, stream TEXT NOT NULL,
    updated_at INTEGER NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (tenant, stream)
);

CREATE TABLE IF NOT EXISTS idempotency (
    tenant TEXT NOT NULL, key TEXT NOT NULL,
    status TEXT NOT NULL, payload_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL, in_progress_until INTEGER,
    response TEXT, attempts INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
);

CREATE TABLE IF NOT EXISTS idmap (
    tenant TEXT NOT NULL, doc_key TEXT NOT NULL,
    erp_id TEXT, erp_number TEXT, version INTEGER NOT NULL DEFAULT 0,
    content_hash TEXT, lease_until INTEGER, updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, doc_key)
);
CREATE INDEX IF NOT EXISTS idmap_erp ON idmap(tenant, erp_id);

CREATE TABLE IF NOT EXISTS exceptions (
    tenant TEXT NOT NULL, id TEXT NOT NULL,
    status TEXT NOT NULL, owner TEXT NOT NULL, domain TEXT NOT NULL,
    source_key TEXT NOT NULL, blocked_by TEXT, first_seen INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS exceptions_source ON exceptions(tenant, source_key);
CREATE INDEX IF NOT EXISTS exceptions_blocked ON exceptions(tenant, blocked_by);
CREATE INDEX IF NOT EXISTS exceptions_status ON exceptions(tenant, status, owner);

CREATE TABLE IF NOT EXISTS audit (
    tenant TEXT NOT NULL, seq INTEGER NOT NULL,
    at INTEGER NOT NULL, doc_key TEXT NOT NULL, entry TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE INDEX IF NOT EXISTS audit_doc ON audit(tenant, doc_key, seq);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL, detail_type TEXT NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS budget_calls (account TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS budget_calls_at ON budget_calls(account, at);
CREATE TABLE IF NOT EXISTS budget_pauses (account TEXT PRIMARY KEY, until INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS ledger (
    tenant TEXT NOT NULL, source_key TEXT NOT NULL, domain TEXT NOT NULL,
    version_at INTEGER NOT NULL, version_etag TEXT, content_hash TEXT NOT NULL,
    state TEXT NOT NULL, reason TEXT, owner TEXT, exception_id TEXT,
    doc_key TEXT, revision INTEGER,
    received_at INTEGER NOT NULL, posted_at INTEGER, canonical TEXT,
    PRIMARY KEY (tenant, source_key)
);
CREATE INDEX IF NOT EXISTS ledger_doc ON ledger(tenant, doc_key, state);
CREATE INDEX IF NOT EXISTS ledger_domain ON ledger(tenant, domain);

CREATE TABLE IF NOT EXISTS staging_groups (
    tenant TEXT NOT NULL, grp TEXT NOT NULL,
    revision INTEGER NOT NULL, last_change_at INTEGER, header TEXT, scheduled_until INTEGER,
    PRIMARY KEY (tenant, grp)
);
CREATE TABLE IF NOT EXISTS staging_members (
    tenant TEXT NOT NULL, grp TEXT NOT NULL, member TEXT NOT NULL, line TEXT NOT NULL,
    PRIMARY KEY (tenant, grp, member)
);

CREATE TABLE IF NOT EXISTS dedupe (
    tenant TEXT NOT NULL, event_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, event_id)
);

CREATE TABLE IF NOT EXISTS locks (
    tenant TEXT NOT NULL, name TEXT NOT NULL, holder TEXT NOT NULL, until INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE IF NOT EXISTS reports (
    tenant TEXT NOT NULL, from_day TEXT NOT NULL, to_day TEXT NOT NULL,
    generated_at INTEGER NOT NULL, clean INTEGER NOT NULL, unexplained INTEGER NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (tenant, from_day, to_day)
);

CREATE TABLE IF NOT EXISTS secrets (
    tenant TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (tenant, name)
);
"#;

impl Db {
    /// Opens (creating if needed) a database file, in WAL mode.
    pub fn open(path: &Path) -> Result<Db, PortError> {
        let conn = Connection::open(path).map_err(|e| {
            PortError::permanent("sqlite", "open", format!("{}: {e}", path.display()))
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|_| conn.busy_timeout(std::time::Duration::from_secs(5)))
            .map_err(|e| PortError::permanent("sqlite", "open", e))?;
        Self::init(conn)
    }

    /// A private in-memory database (tests).
    pub fn memory() -> Result<Db, PortError> {
        let conn =
            Connection::open_in_memory().map_err(|e| PortError::permanent("sqlite", "open", e))?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> Result<Db, PortError> {
        conn.execute_batch(SCHEMA)
            .map_err(|e| PortError::permanent("sqlite", "migrate", e))?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Fault injection for the deterministic simulation: after `writes` more
    /// committed write transactions, every later write of this connection is
    /// rolled back and fails, as if the process had died at that point (what it
    /// committed before stays; nothing after it lands). Other connections to the
    /// same file — the restarted process — are unaffected. The flag returned
    /// turns true at the first refused write.
    pub fn die_after_writes(&self, writes: u64) -> Arc<AtomicBool> {
        let dead = Arc::new(AtomicBool::new(false));
        let left = AtomicU64::new(writes);
        let flag = dead.clone();
        self.with(|c| {
            // `true` turns the commit into a rollback.
            c.commit_hook(Some(move || {
                let refuse = left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_err();
                if refuse {
                    flag.store(true, Ordering::SeqCst);
                }
                refuse
            }))
        })
        .expect("installing a hook cannot fail");
        dead
    }

    /// Runs `f` with the connection. A poisoned lock is recovered: SQLite's own
    /// transactions keep the data consistent even if a holder panicked.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let run = || {
            let mut guard: MutexGuard<'_, Connection> = match self.conn.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            f(&mut guard)
        };
        // SQLite calls block. On a multi-threaded runtime, tell tokio so other
        // tasks (HTTP servers, timers) move to another worker meanwhile.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        }
    }
}

/// Microseconds since the epoch: how instants are stored.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Maps a SQLite error to a port error. Busy/locked is transient, the rest permanent.
pub fn sql_err(port: &'static str, op: &'static str) -> impl Fn(rusqlite::Error) -> PortError {
    move |e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            PortError::transient(port, op, e)
        }
        _ => PortError::permanent(port, op, e),
    }
}

/// A random token (message ids, receipts).
pub fn token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(db: &Db, k: &str) -> rusqlite::Result<usize> {
        db.with(|c| {
            c.execute(
                "INSERT INTO secrets (tenant, name, value) VALUES ('t', ?1, 'v')",
                [k],
            )
        })
    }

    #[test]
    fn a_dead_connection_keeps_what_it_committed_and_commits_nothing_after() {
        let db = Db::memory().expect("db");
        let dead = db.die_after_writes(2);
        insert(&db, "a").expect("first write lands");
        insert(&db, "b").expect("second write lands");
        assert!(!dead.load(Ordering::SeqCst));
        assert!(insert(&db, "c").is_err(), "the third write is refused");
        assert!(dead.load(Ordering::SeqCst));
        let n: i64 = db
            .with(|c| c.query_row("SELECT count(*) FROM secrets", [], |r| r.get(0)))
            .expect("reads still work");
        assert_eq!(n, 2);
    }
}
