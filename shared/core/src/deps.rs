//! What the use cases run on: the ports, per-tenant connectors and settings.
//! Built once per process (Lambda cold start, or the local host).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_canon::TenantId;

use crate::error::PortError;
use crate::ports::*;
use crate::template::Template;

/// A tenant's connections and mapping, ready to use. Built only through
/// [`TenantContext::new`], which refuses a template that does not fit the ERP.
pub struct TenantContext {
    pub tenant: TenantId,
    pub template: Arc<Template>,
    /// Ferry's reference rule in this tenant's ERP.
    pub references: crate::mapping::References,
    pub psa: Arc<dyn PsaConnector>,
    pub erp: Arc<dyn ErpConnector>,
    /// Webhook verifiers by route name (`connectwise`, `xero`).
    pub webhooks: BTreeMap<String, Arc<dyn WebhookVerifier>>,
}

/// Why a template cannot serve a tenant's connectors: every reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the template does not fit this tenant's connectors ({psa} and {erp}):\n  {}", .reasons.join("\n  "))]
pub struct MisfitError {
    pub psa: String,
    pub erp: String,
    pub reasons: Vec<String>,
}

/// Whether `template` fits a tenant whose PSA and ERP connectors are named
/// `psa` and `erp`, the ERP having `caps`: Ferry's reference rule if it does,
/// every reason if not. Pure, so a tenant can be checked before any
/// connector is built or any secret exists.
pub fn fit(
    template: &Template,
    psa: &str,
    erp: &str,
    caps: &ErpCapabilities,
) -> Result<crate::mapping::References, MisfitError> {
    let mut reasons = Vec::new();
    let header = &template.spec.template;
    for (key, named, actual) in [("psa", &header.psa, psa), ("erp", &header.erp, erp)] {
        if named.as_str() != actual {
            reasons.push(format!(
                "template.{key} is {named:?}, but this tenant's {key} is {actual:?}"
            ));
        }
    }
    match template.fit(caps).map_err(|more| reasons.extend(more)) {
        Ok(r) if reasons.is_empty() => Ok(r),
        _ => Err(MisfitError {
            psa: psa.into(),
            erp: erp.into(),
            reasons,
        }),
    }
}

impl TenantContext {
    pub fn new(
        tenant: TenantId,
        template: Arc<Template>,
        psa: Arc<dyn PsaConnector>,
        erp: Arc<dyn ErpConnector>,
        webhooks: BTreeMap<String, Arc<dyn WebhookVerifier>>,
    ) -> Result<Self, MisfitError> {
        let references = fit(
            &template,
            psa.system().as_str(),
            erp.system().as_str(),
            &erp.capabilities(),
        )?;
        Ok(Self {
            tenant,
            template,
            references,
            psa,
            erp,
            webhooks,
        })
    }

    /// The same tenant with its ERP seen through `erp` (a wrapper that records
    /// or injects faults), if the template fits it.
    pub fn with_erp(&self, erp: Arc<dyn ErpConnector>) -> Result<Self, MisfitError> {
        Self::new(
            self.tenant.clone(),
            self.template.clone(),
            self.psa.clone(),
            erp,
            self.webhooks.clone(),
        )
    }

    /// The same connectors under another template (a fixed template takes
    /// effect for the next message), if it fits.
    pub fn with_template(&self, template: Arc<Template>) -> Result<Self, MisfitError> {
        Self::new(
            self.tenant.clone(),
            template,
            self.psa.clone(),
            self.erp.clone(),
            self.webhooks.clone(),
        )
    }

    /// A PSA record as Ferry reads it: the connector's mapping, then the
    /// tenant's rules that apply to every record (the firm's local dates). Every
    /// use case reads PSA records through here, never the connector directly.
    pub fn canonical(
        &self,
        record: &crate::ports::SourceRecord,
    ) -> Result<ferry_canon::CanonicalRecord, crate::error::MappingError> {
        let mut canon = self.psa.to_canonical(&self.tenant, record)?;
        crate::mapping::localise(&mut canon, self.template.time_zone);
        Ok(canon)
    }
}

/// Looks tenants up. `None` means "no such tenant" (intake answers 404).
#[async_trait]
pub trait Tenants: Send + Sync {
    async fn context(&self, tenant: &TenantId) -> Result<Option<Arc<TenantContext>>, PortError>;
    async fn list(&self) -> Result<Vec<TenantId>, PortError>;
}

/// Tunables with production defaults; tests shorten the waits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a received message stays hidden while a handler works on it.
    pub visibility_timeout: Duration,
    /// Backoff for transient failures: base × 2^(n-1), capped, with full jitter.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Delay before re-checking a record whose dependency has not posted yet.
    pub dependency_wait: Duration,
    /// Largest webhook body accepted (413 above).
    pub max_webhook_body: usize,
    /// How long a webhook client may take to send its headers, and then its
    /// body, before the local edge gives up on it (API Gateway does this on AWS).
    pub edge_read_timeout: Duration,
    /// How long webhook event ids are remembered for dedupe.
    pub dedupe_ttl: Duration,
    /// How long completed idempotency records are kept.
    pub idempotency_ttl: Duration,
    /// A post may hold a document this long before another may take over.
    pub post_lease: Duration,
    /// After an ERP write that got no answer (a timeout, a dropped connection, a
    /// gateway's 502/504) the document stays held this long: the ERP may still be committing, and
    /// the next write of the document looks it up by reference only after it.
    pub unknown_outcome_hold: Duration,
    /// Records per poll page.
    pub poll_page_size: u32,
    /// How far before the cursor each poll starts re-reading (late commits).
    pub poll_overlap: Duration,
    /// Longest an ERP call waits in-process for rate budget before giving up the message.
    pub budget_max_wait: Duration,
    /// Longest a reconciliation waits, in all, for a vendor's rate budget. It
    /// holds no queue message to give back, so a spent budget (after a busy
    /// sync, say) makes it wait for the window rather than fail the whole run.
    pub reconcile_budget_wait: Duration,
    /// How long intake's first mark of a webhook event id lasts before its notice
    /// is queued (then it is kept for `dedupe_ttl`): if the process dies in
    /// between, the vendor's retry after this is not taken for a duplicate.
    pub dedupe_claim: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            visibility_timeout: Duration::from_secs(60),
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(300),
            dependency_wait: Duration::from_secs(3),
            max_webhook_body: 256 * 1024,
            edge_read_timeout: Duration::from_secs(10),
            dedupe_ttl: Duration::from_secs(7 * 24 * 3600),
            idempotency_ttl: Duration::from_secs(30 * 24 * 3600),
            post_lease: Duration::from_secs(60),
            unknown_outcome_hold: Duration::from_secs(60),
            poll_page_size: 1000,
            poll_overlap: Duration::from_secs(120),
            budget_max_wait: Duration::from_secs(5),
            reconcile_budget_wait: Duration::from_secs(300),
            dedupe_claim: Duration::from_secs(60),
        }
    }
}

/// Everything a handler needs.
#[derive(Clone)]
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub queue: Arc<dyn Queue>,
    pub cursors: Arc<dyn CursorStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub idmap: Arc<dyn IdMap>,
    pub exceptions: Arc<dyn ExceptionStore>,
    pub audit: Arc<dyn AuditLog>,
    pub events: Arc<dyn EventPublisher>,
    pub budget: Arc<dyn RateBudget>,
    pub ledger: Arc<dyn RecordLedger>,
    pub reports: Arc<dyn crate::ports::Reports>,
    pub staging: Arc<dyn Staging>,
    pub dedupe: Arc<dyn EventDedupe>,
    pub tenants: Arc<dyn Tenants>,
    pub periods: Arc<crate::periods::PeriodCache>,
    pub settings: Settings,
}

/// One call of a handler: when it must end (a Lambda's deadline), if it
/// must. Passed to each call, not kept in [`Deps`], which outlive invocations.
/// Work started in the call is "in progress" until the deadline: after it,
/// another attempt may take over (the Powertools in-progress expiry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Invocation {
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
}

impl Invocation {
    /// A call with no deadline (local workers, tests).
    pub const UNBOUNDED: Invocation = Invocation { deadline: None };

    pub fn until(deadline: Option<chrono::DateTime<chrono::Utc>>) -> Invocation {
        Invocation { deadline }
    }

    /// How long work started at `now` holds its idempotency key and document
    /// lease: until the deadline when there is one still ahead (a timed-out
    /// Lambda cannot still be writing), else `now + post_lease`.
    pub fn in_progress_until(
        &self,
        settings: &Settings,
        now: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        match self.deadline {
            Some(d) if d > now => d,
            _ => now + chrono_duration(settings.post_lease),
        }
    }
}

/// Converts a std duration into a chrono one, saturating at 10,000 years, so
/// that `now + chrono_duration(d)` cannot overflow whatever `d` is.
pub fn chrono_duration(d: Duration) -> chrono::Duration {
    const MAX: chrono::Duration = chrono::Duration::days(3_652_500);
    chrono::Duration::from_std(d).map_or(MAX, |c| c.min(MAX))
}
