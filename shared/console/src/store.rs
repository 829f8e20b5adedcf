//! The console's own state: partners and their customers (the directory),
//! users, sessions, notes on exceptions (assignee, comments) and the log of
//! every action a person took. Ferry's pipeline state is not here: the
//! console reads it through a [`crate::Fleet`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use serde::{Deserialize, Serialize};

use crate::roles::Role;

/// A partner's brand: what customer-facing pages show instead of "Ferry".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brand {
    /// The partner's id (`infra/partners/<id>`).
    pub partner: String,
    pub name: String,
    pub support_email: String,
    /// Shown as an image only when it is an `https:` or same-origin URL.
    pub logo_url: Option<String>,
    /// `#RRGGBB`; anything else falls back to the console's colours.
    pub primary: String,
    pub accent: String,
    /// Whether pages may say "Ferry" (off unless the partner wants it).
    pub show_ferry: bool,
}

/// One customer of a partner: a tenant, with its tier and connectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub tenant: TenantId,
    pub partner: String,
    pub name: String,
    pub tier: String,
    /// The tier's SLA: how long a record may wait before it is late.
    pub sla_seconds: i64,
    pub psa: String,
    pub erp: String,
}

/// A console user. The password is kept only as an Argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub partner: String,
    pub role: Role,
    pub tenant: Option<TenantId>,
    pub password_hash: String,
}

/// A signed-in session. Only the SHA-256 of the cookie's value is stored, so
/// reading the database does not hand out sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    pub user: String,
    pub csrf: String,
    pub expires: DateTime<Utc>,
}

/// A comment on an exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    pub at: DateTime<Utc>,
    pub user: String,
    pub text: String,
}

/// What people added to an exception.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Notes {
    pub assignee: Option<String>,
    pub comments: Vec<Comment>,
}

/// Finance's sign-off of one reconciliation run of a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    pub tenant: TenantId,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    /// The run signed off: a later run of the period needs its own sign-off.
    pub generated_at: DateTime<Utc>,
    pub user: String,
    pub at: DateTime<Utc>,
}

impl SignOff {
    /// Whether this sign-off is of the run of `[from, to]` generated at
    /// `generated_at`. Runs are told apart to the microsecond: stores keep
    /// instants at different precisions (SQLite columns in microseconds, the
    /// report's JSON in nanoseconds), so an exact comparison would never match.
    pub fn covers(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        generated_at: DateTime<Utc>,
    ) -> bool {
        self.from == from
            && self.to == to
            && self.generated_at.timestamp_micros() == generated_at.timestamp_micros()
    }
}

/// One thing a person did, with who, when, on which customer and target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub at: DateTime<Utc>,
    pub user: String,
    pub partner: String,
    pub tenant: Option<TenantId>,
    /// `replay`, `assign`, `comment`, `resolve`, `sign_off`, `sign_in`, `user_add`, ….
    pub action: String,
    /// The exception id, period or user the action was about.
    pub target: String,
    pub detail: String,
}

/// Filters for the action log. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct ActionQuery {
    pub partner: Option<String>,
    pub tenants: Option<Vec<TenantId>>,
    pub user: Option<String>,
    pub target: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: usize,
}

#[async_trait]
pub trait ConsoleStore: Send + Sync {
    async fn put_brand(&self, brand: &Brand) -> Result<(), PortError>;
    async fn brand(&self, partner: &str) -> Result<Option<Brand>, PortError>;

    async fn put_customer(&self, customer: &Customer) -> Result<(), PortError>;
    async fn customer(&self, tenant: &TenantId) -> Result<Option<Customer>, PortError>;
    async fn customers(&self, partner: &str) -> Result<Vec<Customer>, PortError>;

    async fn put_user(&self, user: &User) -> Result<(), PortError>;
    async fn user(&self, name: &str) -> Result<Option<User>, PortError>;
    /// Removes a user and ends their sessions; false when there was none.
    async fn delete_user(&self, name: &str) -> Result<bool, PortError>;
    /// Ends every session of a user (a changed password or role).
    async fn end_sessions(&self, user: &str) -> Result<(), PortError>;

    async fn put_session(&self, session: &Session) -> Result<(), PortError>;
    async fn session(&self, id_hash: &str) -> Result<Option<Session>, PortError>;
    async fn delete_session(&self, id_hash: &str) -> Result<(), PortError>;

    async fn assign(
        &self,
        tenant: &TenantId,
        exception: &str,
        user: Option<&str>,
    ) -> Result<(), PortError>;
    async fn comment(
        &self,
        tenant: &TenantId,
        exception: &str,
        comment: &Comment,
    ) -> Result<(), PortError>;
    async fn notes(&self, tenant: &TenantId, exception: &str) -> Result<Notes, PortError>;
    /// Every assigned exception of a tenant: (exception id, assignee).
    async fn assignees(&self, tenant: &TenantId) -> Result<Vec<(String, String)>, PortError>;

    async fn sign_off(&self, sign_off: &SignOff) -> Result<(), PortError>;
    /// A tenant's sign-offs, the latest first.
    async fn sign_offs(&self, tenant: &TenantId) -> Result<Vec<SignOff>, PortError>;

    async fn record(&self, action: &Action) -> Result<(), PortError>;
    /// Newest first.
    async fn actions(&self, query: &ActionQuery) -> Result<Vec<Action>, PortError>;
}
