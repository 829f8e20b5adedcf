use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::TenantId;
use serde::{Deserialize, Serialize};

use crate::error::PortError;
use crate::usecases::reconcile::Report;

/// One kept reconciliation, as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub generated_at: DateTime<Utc>,
    pub clean: bool,
    pub unexplained: usize,
}

impl ReportSummary {
    pub fn of(r: &Report) -> ReportSummary {
        ReportSummary {
            from: r.from,
            to: r.to,
            generated_at: r.generated_at,
            clean: r.clean,
            unexplained: r.unexplained(),
        }
    }
}

/// The reconciliation reports a tenant's runs produced: the latest per period,
/// for people to read, drill into and sign off after the run has ended.
#[async_trait]
pub trait Reports: Send + Sync {
    /// Keeps a report; a later run of the same period replaces it.
    async fn put(&self, report: &Report) -> Result<(), PortError>;

    async fn get(
        &self,
        tenant: &TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<Report>, PortError>;

    /// The kept periods, the latest period first.
    async fn list(&self, tenant: &TenantId, limit: usize) -> Result<Vec<ReportSummary>, PortError>;
}
