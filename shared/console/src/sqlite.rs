//! [`ConsoleStore`] on SQLite: the console's tables beside Ferry's in the
//! same local database file (or in memory for tests).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use rusqlite::{Connection, OptionalExtension, params};

use crate::roles::Role;
use crate::store::{
    Action, ActionQuery, Brand, Comment, ConsoleStore, Customer, Notes, Session, SignOff, User,
};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS console_brands (partner TEXT PRIMARY KEY, brand TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS console_customers (
    tenant TEXT PRIMARY KEY, partner TEXT NOT NULL, customer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_customers_partner ON console_customers(partner, tenant);
CREATE TABLE IF NOT EXISTS console_users (
    name TEXT PRIMARY KEY, partner TEXT NOT NULL, role TEXT NOT NULL, tenant TEXT,
    password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash TEXT PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL, expires INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS console_assignees (
    tenant TEXT NOT NULL, exception TEXT NOT NULL, user TEXT NOT NULL,
    PRIMARY KEY (tenant, exception)
);
CREATE TABLE IF NOT EXISTS console_comments (
    tenant TEXT NOT NULL, exception TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL, user TEXT NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_comments_exception ON console_comments(tenant, exception, seq);
CREATE TABLE IF NOT EXISTS console_sign_offs (
    tenant TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, sign_off TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sign_offs_tenant ON console_sign_offs(tenant, seq);
CREATE TABLE IF NOT EXISTS console_actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, user TEXT NOT NULL,
    partner TEXT NOT NULL, tenant TEXT, action TEXT NOT NULL, target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_actions_partner ON console_actions(partner, at);
CREATE TRIGGER IF NOT EXISTS console_actions_no_update BEFORE UPDATE ON console_actions
    BEGIN SELECT RAISE(ABORT, 'the action log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS console_actions_no_delete BEFORE DELETE ON console_actions
    BEGIN SELECT RAISE(ABORT, 'the action log is append-only'); END;
"#;

/// The console's tables on one SQLite connection.
pub struct SqliteConsoleStore {
    conn: Mutex<Connection>,
}

fn err(op: &'static str) -> impl Fn(rusqlite::Error) -> PortError {
    move |e| PortError::permanent("console", op, e)
}

fn json_err(op: &'static str) -> impl Fn(serde_json::Error) -> PortError {
    move |e| PortError::permanent("console", op, e)
}

fn at(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn tenant_of(s: Option<String>) -> Option<TenantId> {
    s.and_then(|s| TenantId::parse(&s).ok())
}

impl SqliteConsoleStore {
    /// Opens (creating the console's tables in) a database file.
    pub fn open(path: &Path) -> Result<SqliteConsoleStore, PortError> {
        let conn = Connection::open(path).map_err(|e| {
            PortError::permanent("console", "open", format!("{}: {e}", path.display()))
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err("open"))?;
        Self::init(conn)
    }

    /// A private in-memory store (tests).
    pub fn memory() -> Result<SqliteConsoleStore, PortError> {
        Self::init(Connection::open_in_memory().map_err(err("open"))?)
    }

    fn init(conn: Connection) -> Result<SqliteConsoleStore, PortError> {
        conn.execute_batch(SCHEMA).map_err(err("migrate"))?;
        Ok(SqliteConsoleStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, PortError> {
        let guard: MutexGuard<'_, Connection> = match self.conn.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&guard).map_err(err(op))
    }
}

#[async_trait]
impl ConsoleStore for SqliteConsoleStore {
    async fn put_brand(&self, brand: &Brand) -> Result<(), PortError> {
        let json = serde_json::to_string(brand).map_err(json_err("put_brand"))?;
        self.with("put_brand", |c| {
            c.execute(
                "INSERT INTO console_brands (partner, brand) VALUES (?1, ?2)
                 ON CONFLICT (partner) DO UPDATE SET brand = excluded.brand",
                params![brand.partner, json],
            )
            .map(drop)
        })
    }

    async fn brand(&self, partner: &str) -> Result<Option<Brand>, PortError> {
        let json: Option<String> = self.with("brand", |c| {
            c.query_row(
                "SELECT brand FROM console_brands WHERE partner = ?1",
                params![partner],
                |r| r.get(0),
            )
            .optional()
        })?;
        json.map(|j| serde_json::from_str(&j).map_err(json_err("brand")))
            .transpose()
    }

    async fn put_customer(&self, customer: &Customer) -> Result<(), PortError> {
        let json = serde_json::to_string(customer).map_err(json_err("put_customer"))?;
        self.with("put_customer", |c| {
            c.execute(
                "INSERT INTO console_customers (tenant, partner, customer) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant) DO UPDATE SET partner = excluded.partner,
                     customer = excluded.customer",
                params![customer.tenant.as_str(), customer.partner, json],
            )
            .map(drop)
        })
    }

    async fn customer(&self, tenant: &TenantId) -> Result<Option<Customer>, PortError> {
        let json: Option<String> = self.with("customer", |c| {
            c.query_row(
                "SELECT customer FROM console_customers WHERE tenant = ?1",
                params![tenant.as_str()],
                |r| r.get(0),
            )
            .optional()
        })?;
        json.map(|j| serde_json::from_str(&j).map_err(json_err("customer")))
            .transpose()
    }

    async fn customers(&self, partner: &str) -> Result<Vec<Customer>, PortError> {
        let rows: Vec<String> = self.with("customers", |c| {
            let mut s = c.prepare_cached(
                "SELECT customer FROM console_customers WHERE partner = ?1 ORDER BY tenant",
            )?;
            s.query_map(params![partner], |r| r.get(0))?.collect()
        })?;
        rows.iter()
            .map(|j| serde_json::from_str(j).map_err(json_err("customers")))
            .collect()
    }

    async fn put_user(&self, user: &User) -> Result<(), PortError> {
        self.with("put_user", |c| {
            c.execute(
                "INSERT INTO console_users (name, partner, role, tenant, password_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET partner = excluded.partner,
                     role = excluded.role, tenant = excluded.tenant,
                     password_hash = excluded.password_hash",
                params![
                    user.name,
                    user.partner,
                    user.role.as_str(),
                    user.tenant.as_ref().map(|t| t.as_str()),
                    user.password_hash
                ],
            )
            .map(drop)
        })
    }

    async fn user(&self, name: &str) -> Result<Option<User>, PortError> {
        self.with("user", |c| {
            c.query_row(
                "SELECT name, partner, role, tenant, password_hash FROM console_users
                 WHERE name = ?1",
                params![name],
                |r| {
                    let role: String = r.get(2)?;
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        role,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()
        })
        .map(|row| {
            row.and_then(|(name, partner, role, tenant, password_hash)| {
                // A row with a role this build does not know signs nobody in.
                Some(User {
                    name,
                    partner,
                    role: Role::parse(&role)?,
                    tenant: tenant_of(tenant),
                    password_hash,
                })
            })
        })
    }

    async fn delete_user(&self, name: &str) -> Result<bool, PortError> {
        self.with("delete_user", |c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "DELETE FROM console_sessions WHERE user = ?1",
                params![name],
            )?;
            let n = tx.execute("DELETE FROM console_users WHERE name = ?1", params![name])?;
            tx.commit()?;
            Ok(n > 0)
        })
    }

    async fn end_sessions(&self, user: &str) -> Result<(), PortError> {
        self.with("end_sessions", |c| {
            c.execute(
                "DELETE FROM console_sessions WHERE user = ?1",
                params![user],
            )
            .map(drop)
        })
    }

    async fn put_session(&self, session: &Session) -> Result<(), PortError> {
        self.with("put_session", |c| {
            c.execute(
                "INSERT INTO console_sessions (id_hash, user, csrf, expires) VALUES (?1, ?2, ?3, ?4)",
                params![
                    session.id_hash,
                    session.user,
                    session.csrf,
                    session.expires.timestamp_micros()
                ],
            )
            .map(drop)
        })
    }

    async fn session(&self, id_hash: &str) -> Result<Option<Session>, PortError> {
        self.with("session", |c| {
            c.query_row(
                "SELECT id_hash, user, csrf, expires FROM console_sessions WHERE id_hash = ?1",
                params![id_hash],
                |r| {
                    Ok(Session {
                        id_hash: r.get(0)?,
                        user: r.get(1)?,
                        csrf: r.get(2)?,
                        expires: at(r.get(3)?),
                    })
                },
            )
            .optional()
        })
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), PortError> {
        self.with("delete_session", |c| {
            c.execute(
                "DELETE FROM console_sessions WHERE id_hash = ?1",
                params![id_hash],
            )
            .map(drop)
        })
    }

    async fn assign(
        &self,
        tenant: &TenantId,
        exception: &str,
        user: Option<&str>,
    ) -> Result<(), PortError> {
        self.with("assign", |c| {
            match user {
                Some(u) => c.execute(
                    "INSERT INTO console_assignees (tenant, exception, user) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant, exception) DO UPDATE SET user = excluded.user",
                    params![tenant.as_str(), exception, u],
                ),
                None => c.execute(
                    "DELETE FROM console_assignees WHERE tenant = ?1 AND exception = ?2",
                    params![tenant.as_str(), exception],
                ),
            }
            .map(drop)
        })
    }

    async fn comment(
        &self,
        tenant: &TenantId,
        exception: &str,
        comment: &Comment,
    ) -> Result<(), PortError> {
        self.with("comment", |c| {
            c.execute(
                "INSERT INTO console_comments (tenant, exception, at, user, text)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    tenant.as_str(),
                    exception,
                    comment.at.timestamp_micros(),
                    comment.user,
                    comment.text
                ],
            )
            .map(drop)
        })
    }

    async fn notes(&self, tenant: &TenantId, exception: &str) -> Result<Notes, PortError> {
        self.with("notes", |c| {
            let assignee = c
                .query_row(
                    "SELECT user FROM console_assignees WHERE tenant = ?1 AND exception = ?2",
                    params![tenant.as_str(), exception],
                    |r| r.get(0),
                )
                .optional()?;
            let mut s = c.prepare_cached(
                "SELECT at, user, text FROM console_comments WHERE tenant = ?1 AND exception = ?2
                 ORDER BY seq",
            )?;
            let comments = s
                .query_map(params![tenant.as_str(), exception], |r| {
                    Ok(Comment {
                        at: at(r.get(0)?),
                        user: r.get(1)?,
                        text: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Notes { assignee, comments })
        })
    }

    async fn assignees(&self, tenant: &TenantId) -> Result<Vec<(String, String)>, PortError> {
        self.with("assignees", |c| {
            let mut s = c.prepare_cached(
                "SELECT exception, user FROM console_assignees WHERE tenant = ?1",
            )?;
            s.query_map(params![tenant.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
    }

    async fn sign_off(&self, sign_off: &SignOff) -> Result<(), PortError> {
        let json = serde_json::to_string(sign_off).map_err(json_err("sign_off"))?;
        self.with("sign_off", |c| {
            c.execute(
                "INSERT INTO console_sign_offs (tenant, sign_off) VALUES (?1, ?2)",
                params![sign_off.tenant.as_str(), json],
            )
            .map(drop)
        })
    }

    async fn sign_offs(&self, tenant: &TenantId) -> Result<Vec<SignOff>, PortError> {
        let rows: Vec<String> = self.with("sign_offs", |c| {
            let mut s = c.prepare_cached(
                "SELECT sign_off FROM console_sign_offs WHERE tenant = ?1 ORDER BY seq DESC",
            )?;
            s.query_map(params![tenant.as_str()], |r| r.get(0))?
                .collect()
        })?;
        rows.iter()
            .map(|j| serde_json::from_str(j).map_err(json_err("sign_offs")))
            .collect()
    }

    async fn record(&self, action: &Action) -> Result<(), PortError> {
        self.with("record", |c| {
            c.execute(
                "INSERT INTO console_actions (at, user, partner, tenant, action, target, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    action.at.timestamp_micros(),
                    action.user,
                    action.partner,
                    action.tenant.as_ref().map(|t| t.as_str()),
                    action.action,
                    action.target,
                    action.detail
                ],
            )
            .map(drop)
        })
    }

    async fn actions(&self, q: &ActionQuery) -> Result<Vec<Action>, PortError> {
        let rows: Vec<Action> = self.with("actions", |c| {
            let mut s = c.prepare_cached(
                "SELECT at, user, partner, tenant, action, target, detail FROM console_actions
                 WHERE (?1 IS NULL OR partner = ?1) AND (?2 IS NULL OR user = ?2)
                   AND (?3 IS NULL OR target = ?3) AND (?4 IS NULL OR at >= ?4)
                   AND (?5 IS NULL OR at < ?5)
                 ORDER BY seq DESC",
            )?;
            s.query_map(
                params![
                    q.partner,
                    q.user,
                    q.target,
                    q.since.map(|t| t.timestamp_micros()),
                    q.until.map(|t| t.timestamp_micros())
                ],
                |r| {
                    Ok(Action {
                        at: at(r.get(0)?),
                        user: r.get(1)?,
                        partner: r.get(2)?,
                        tenant: tenant_of(r.get(3)?),
                        action: r.get(4)?,
                        target: r.get(5)?,
                        detail: r.get(6)?,
                    })
                },
            )?
            .collect()
        })?;
        Ok(rows
            .into_iter()
            .filter(|a| match (&q.tenants, &a.tenant) {
                (None, _) => true,
                (Some(ts), Some(t)) => ts.contains(t),
                (Some(_), None) => false,
            })
            .take(if q.limit == 0 { usize::MAX } else { q.limit })
            .collect())
    }
}
