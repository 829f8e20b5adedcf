use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;

use crate::error::PortError;

/// A summary group's contents at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// Increases by one with every change to the group.
    pub revision: i64,
    pub last_change_at: Option<DateTime<Utc>>,
    /// The document's header (what the group renders into), as last staged.
    pub header: Option<String>,
    /// `(member key, staged line JSON)`, ordered by member key.
    pub members: Vec<(String, String)>,
}

/// Parameters of `stage`.
#[derive(Debug, Clone)]
pub struct StageRequest<'a> {
    pub tenant: &'a TenantId,
    pub group: &'a str,
    pub header: Option<&'a str>,
    pub member: &'a str,
    pub line: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// Staging for summarised posting: records mapped to ERP lines, grouped into the
/// document they summarise into (e.g. one invoice per project and period).
/// Every change bumps the group's revision atomically with the change, so a
/// document rendered at revision r contains every change up to r. A schedule
/// flag makes flushes single-flight: one pending flush per group at a time.
#[async_trait]
pub trait Staging: Send + Sync {
    /// Puts (`Some`) or removes (`None`) a member line and returns the group's
    /// revision. `header`, when given, replaces the group's header. A change that
    /// leaves members and header as they were leaves the revision unchanged.
    async fn stage(&self, req: StageRequest<'_>) -> Result<i64, PortError>;

    async fn snapshot(&self, tenant: &TenantId, group: &str) -> Result<GroupSnapshot, PortError>;

    /// Marks the group as having a flush scheduled until `until`. Returns true if
    /// this call scheduled it (none was scheduled, or the old one expired), in
    /// which case the caller sends the flush message.
    async fn schedule(
        &self,
        tenant: &TenantId,
        group: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError>;

    /// Clears the schedule; the next change schedules a new flush.
    async fn unschedule(&self, tenant: &TenantId, group: &str) -> Result<(), PortError>;
}
