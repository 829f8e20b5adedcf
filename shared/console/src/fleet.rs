//! The console's narrow view of Ferry's pipeline state, one tenant at a time:
//! health, exceptions, the source record behind one, postings (the audit
//! log), and the actions replay and resolve. Locally it is the embedded
//! store's ports ([`LocalFleet`]); on AWS, a customer stack's read/replay role.
//! Secrets are not reachable through it at all.

use async_trait::async_trait;
use chrono::NaiveDate;
use ferry_canon::TenantId;
use ferry_core::Deps;
use ferry_core::PortError;
use ferry_core::ports::{
    AuditEntry, ExceptionQuery, ExceptionRecord, ExceptionStatus, LedgerEntry, ReportSummary,
};
use ferry_core::usecases::health::{self, Health};
use ferry_core::usecases::reconcile::Report;
use ferry_core::usecases::retry::{self, ReplayError};
use ferry_core::usecases::trends::{self, Trends};

#[async_trait]
pub trait Fleet: Send + Sync {
    async fn health(&self, tenant: &TenantId) -> Result<Health, PortError>;
    /// The query's tenant must be set: the fleet never lists across tenants.
    async fn exceptions(&self, query: &ExceptionQuery) -> Result<Vec<ExceptionRecord>, PortError>;
    async fn exception(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<ExceptionRecord>, PortError>;
    /// The ledger's entry (with the canonical record) for a source key.
    async fn source(
        &self,
        tenant: &TenantId,
        source_key: &str,
    ) -> Result<Option<LedgerEntry>, PortError>;
    /// Postings of one document (oldest first), or the tenant's latest `limit`.
    async fn postings(
        &self,
        tenant: &TenantId,
        doc_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, PortError>;
    /// Exceptions opened and resolved per day over `days` days, and latency.
    async fn trends(&self, tenant: &TenantId, days: u32) -> Result<Trends, PortError>;
    /// The kept reconciliation runs, the latest period first.
    async fn reports(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<ReportSummary>, PortError>;
    async fn report(
        &self,
        tenant: &TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<Report>, PortError>;
    /// Puts a parked record back into the pipeline.
    async fn replay(&self, tenant: &TenantId, id: &str) -> Result<(), ReplayError>;
    /// Marks an exception resolved by a person; false when there is none.
    async fn resolve(&self, tenant: &TenantId, id: &str) -> Result<bool, PortError>;
}

/// The fleet over one process's stores (the embedded store locally).
pub struct LocalFleet {
    pub deps: Deps,
}

#[async_trait]
impl Fleet for LocalFleet {
    async fn health(&self, tenant: &TenantId) -> Result<Health, PortError> {
        health::snapshot(&self.deps, tenant).await
    }

    async fn exceptions(&self, query: &ExceptionQuery) -> Result<Vec<ExceptionRecord>, PortError> {
        if query.tenant.is_none() {
            return Err(PortError::permanent(
                "console",
                "exceptions",
                "a listing names its tenant",
            ));
        }
        self.deps.exceptions.list(query).await
    }

    async fn exception(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<ExceptionRecord>, PortError> {
        self.deps.exceptions.get(tenant, id).await
    }

    async fn source(
        &self,
        tenant: &TenantId,
        source_key: &str,
    ) -> Result<Option<LedgerEntry>, PortError> {
        self.deps.ledger.get(tenant, source_key).await
    }

    async fn postings(
        &self,
        tenant: &TenantId,
        doc_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, PortError> {
        self.deps.audit.list(tenant, doc_key, limit).await
    }

    async fn trends(&self, tenant: &TenantId, days: u32) -> Result<Trends, PortError> {
        trends::trends(&self.deps, tenant, days).await
    }

    async fn reports(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<ReportSummary>, PortError> {
        self.deps.reports.list(tenant, limit).await
    }

    async fn report(
        &self,
        tenant: &TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<Report>, PortError> {
        self.deps.reports.get(tenant, from, to).await
    }

    async fn replay(&self, tenant: &TenantId, id: &str) -> Result<(), ReplayError> {
        retry::replay(&self.deps, tenant, id).await
    }

    async fn resolve(&self, tenant: &TenantId, id: &str) -> Result<bool, PortError> {
        let now = self.deps.clock.now();
        self.deps
            .exceptions
            .set_status(tenant, id, ExceptionStatus::Resolved, now)
            .await
    }
}
