//! intake: verify a webhook and enqueue change notices (milliseconds, no ERP
//! call), or poll a PSA for changes since the tenant's cursor.

use ferry_canon::{Domain, TenantId};

use crate::deps::{Deps, chrono_duration};
use crate::error::{ConnectorError, PortError};
use crate::messages::{ChangeNotice, Envelope, Origin};
use crate::ports::{ChangeAction, Cursor, Headers, OutboundMessage, QueueName, WebhookError};
use crate::template::Direction;

/// A webhook delivery as the HTTP edge received it (API Gateway or the local server).
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// The connector route, e.g. `connectwise` from `/webhooks/connectwise/{tenant}`.
    pub route: String,
    pub tenant: String,
    /// Lower-cased header names.
    pub headers: Headers,
    /// The decoded query string (a vendor's handshake may carry its token there).
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl WebhookResponse {
    fn json(status: u16, body: serde_json::Value) -> Self {
        WebhookResponse {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    /// Every refusal has this one shape: `{"error": "<message>"}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, serde_json::json!({ "error": message }))
    }

    /// 413, wherever the size is found out (here, or by an edge reading the body).
    pub fn too_large(limit: usize) -> Self {
        Self::error(413, &format!("body exceeds the {limit} byte limit"))
    }
}

fn correlation_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// Verifies a webhook over the raw body, dedupes by event id and enqueues one
/// notice per new event, then acknowledges. Nothing is enqueued twice: an event id
/// is remembered before the enqueue and forgotten again if the enqueue fails
/// (the 503 makes the vendor retry).
pub async fn handle_webhook(deps: &Deps, req: WebhookRequest) -> WebhookResponse {
    if req.body.len() > deps.settings.max_webhook_body {
        return WebhookResponse::too_large(deps.settings.max_webhook_body);
    }
    // Unknown tenant and unknown route answer the same, revealing nothing.
    let not_found = || WebhookResponse::error(404, "not found");
    let Ok(tenant) = TenantId::parse(&req.tenant) else {
        return not_found();
    };
    let ctx = match deps.tenants.context(&tenant).await {
        Ok(Some(ctx)) => ctx,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "tenant lookup failed");
            return WebhookResponse::error(503, "temporarily unavailable");
        }
    };
    let Some(verifier) = ctx.webhooks.get(&req.route) else {
        return not_found();
    };
    if let Some(h) = verifier.handshake(&req.query) {
        tracing::info!(tenant = %tenant, route = %req.route, status = h.status, "webhook handshake");
        return WebhookResponse {
            status: h.status,
            content_type: h.content_type,
            body: h.body,
        };
    }
    let now = deps.clock.now();
    let events = match verifier.verify(&req.headers, &req.body, now).await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(tenant = %tenant, route = %req.route, error = %e, "webhook refused");
            return match e {
                WebhookError::Malformed(m) => {
                    WebhookResponse::error(400, &format!("malformed payload: {m}"))
                }
                WebhookError::KeyUnavailable(_) => {
                    WebhookResponse::error(503, "signing key temporarily unavailable")
                }
                WebhookError::MissingHeader(_) | WebhookError::BadSignature => {
                    WebhookResponse::error(401, &e.to_string())
                }
            };
        }
    };

    // Marked for a short claim now, kept for the dedupe window once queued.
    let claim_until = now + chrono_duration(deps.settings.dedupe_claim);
    let dedupe_until = now + chrono_duration(deps.settings.dedupe_ttl);
    let mut fresh = Vec::new();
    let mut duplicates = 0usize;
    for ev in events {
        let key = format!("{}:{}", req.route, ev.event_id);
        match deps
            .dedupe
            .first_seen(&tenant, &key, now, claim_until)
            .await
        {
            Ok(true) => fresh.push((key, ev)),
            Ok(false) => duplicates += 1,
            Err(e) => {
                tracing::error!(error = %e, "dedupe store failed");
                forget_all(deps, &tenant, &fresh).await;
                return WebhookResponse::error(503, "temporarily unavailable");
            }
        }
    }
    let correlation = correlation_id();
    let notices: Vec<OutboundMessage> = fresh
        .iter()
        .filter(|(_, ev)| ctx.template.direction(ev.domain) != Direction::None)
        .map(|(_, ev)| {
            OutboundMessage::now(
                Envelope::Change(ChangeNotice {
                    tenant: tenant.clone(),
                    system: ev.system.clone(),
                    domain: ev.domain,
                    id: ev.id.clone(),
                    action: ev.action,
                    version: ev.version.clone(),
                    record: ev.record.clone(),
                    origin: Origin::Webhook {
                        event_id: ev.event_id.clone(),
                    },
                    received_at: now,
                    correlation_id: correlation.clone(),
                })
                .to_body(),
            )
        })
        .collect();
    let accepted = notices.len();
    let ignored = fresh.len() - accepted;
    if !notices.is_empty()
        && let Err(e) = deps.queue.send(QueueName::Transform, notices).await
    {
        tracing::error!(tenant = %tenant, error = %e, "enqueue failed; asking the vendor to retry");
        forget_all(deps, &tenant, &fresh).await;
        return WebhookResponse::error(503, "temporarily unavailable");
    }
    for (key, _) in &fresh {
        if let Err(e) = deps.dedupe.keep(&tenant, key, now, dedupe_until).await {
            // The notice is queued; a retry after the claim is queued again,
            // which transform takes as the duplicate it is.
            tracing::warn!(error = %e, "could not keep event id past its claim");
        }
    }
    tracing::info!(tenant = %tenant, route = %req.route, accepted, duplicates, ignored, correlation_id = %correlation, "webhook accepted");
    WebhookResponse::json(
        200,
        serde_json::json!({ "accepted": accepted, "duplicates": duplicates, "ignored": ignored }),
    )
}

async fn forget_all<T>(deps: &Deps, tenant: &TenantId, fresh: &[(String, T)]) {
    for (key, _) in fresh {
        if let Err(e) = deps.dedupe.forget(tenant, key).await {
            tracing::error!(error = %e, "could not forget event id; the vendor's retry will be treated as a duplicate");
        }
    }
}

/// Why a poll stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("unknown tenant {0}")]
    UnknownTenant(TenantId),
    #[error(transparent)]
    Vendor(#[from] ConnectorError),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl PollError {
    /// Whether trying again can help.
    pub fn class(&self) -> crate::error::RetryClass {
        match self {
            PollError::UnknownTenant(_) => crate::error::RetryClass::Permanent,
            PollError::Vendor(e) => e.class(),
            PollError::Port(e) => e.class,
        }
    }
}

impl crate::error::Classified for PollError {
    fn class(&self) -> crate::error::RetryClass {
        PollError::class(self)
    }
}

/// A change notice found by polling or sweeping (not by a webhook).
#[allow(clippy::too_many_arguments)]
fn polled(
    tenant: &TenantId,
    system: &ferry_canon::SystemId,
    domain: Domain,
    id: String,
    action: ChangeAction,
    version: Option<ferry_canon::SourceVersion>,
    record: Option<serde_json::Value>,
    received_at: chrono::DateTime<chrono::Utc>,
    correlation_id: &str,
) -> OutboundMessage {
    OutboundMessage::now(
        Envelope::Change(ChangeNotice {
            tenant: tenant.clone(),
            system: system.clone(),
            domain,
            id,
            action,
            version,
            record,
            origin: Origin::Poll,
            received_at,
            correlation_id: correlation_id.to_string(),
        })
        .to_body(),
    )
}

/// Sweeps the ERP for invoices changed since the cursor (`If-Modified-Since`) and
/// enqueues a payment notice for each one that came from a PSA invoice. Webhooks
/// bring payments in seconds; this catches any a webhook missed.
pub async fn poll_erp_payments(deps: &Deps, tenant: &TenantId) -> Result<PollReport, PollError> {
    let ctx = deps
        .tenants
        .context(tenant)
        .await?
        .ok_or_else(|| PollError::UnknownTenant(tenant.clone()))?;
    let mut report = PollReport::default();
    if ctx.template.direction(Domain::Payments) != Direction::ErpToPsa {
        return Ok(report);
    }
    let system = ctx.erp.system();
    let stream = format!("{system}/payments");
    let stored = deps.cursors.get(tenant, &stream).await?;
    let since = stored
        .as_ref()
        .map(|c| c.updated_at - chrono_duration(deps.settings.poll_overlap));
    let changes = ctx.erp.changed_invoices(since).await?;
    let now = deps.clock.now();
    let correlation = correlation_id();
    let mut notices = Vec::new();
    for c in &changes {
        let Some(entry) = deps.idmap.find_by_erp_id(tenant, &c.erp_id).await? else {
            continue;
        };
        if !entry.doc_key.starts_with("invoices/") {
            continue;
        }
        notices.push(polled(
            tenant,
            &system,
            Domain::Payments,
            c.erp_id.clone(),
            ChangeAction::Upsert,
            Some(ferry_canon::SourceVersion::at(c.updated_at)),
            None,
            now,
            &correlation,
        ));
    }
    report.enqueued = notices.len();
    if !notices.is_empty() {
        deps.queue.send(QueueName::Transform, notices).await?;
    }
    if let Some(last) = changes.last() {
        let next = Cursor::new(last.updated_at, last.erp_id.clone());
        deps.cursors.advance(tenant, &stream, &next).await?;
        report.cursor = Some(next);
    }
    report.pages = 1;
    Ok(report)
}

/// How far back scheduled deletion sweeps look (a little over a year of time entries).
pub const DELETION_SWEEP_DAYS: u64 = 400;

/// What a deletion sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Records Ferry holds that the sweep compared with the PSA.
    pub compared: usize,
    /// Delete notices enqueued (transform confirms each with the PSA first).
    pub enqueued: usize,
}

/// Finds records deleted at a PSA that does not announce deletions: every record
/// of `domain` Ferry holds as live, dated on or after `since`, is looked for
/// among the PSA's records of the same dates; a missing one gets a delete notice.
/// Transform fetches the record before acting, so a record that only moved out
/// of the dates compared is updated, not deleted.
pub async fn sweep_deletions(
    deps: &Deps,
    tenant: &TenantId,
    domain: Domain,
    since: chrono::NaiveDate,
) -> Result<SweepReport, PollError> {
    let ctx = deps
        .tenants
        .context(tenant)
        .await?
        .ok_or_else(|| PollError::UnknownTenant(tenant.clone()))?;
    let mut report = SweepReport::default();
    if ctx.template.direction(domain) == Direction::None {
        return Ok(report);
    }
    let system = ctx.psa.system();
    let mut held: Vec<(String, chrono::NaiveDate)> = Vec::new();
    for entry in deps.ledger.list(tenant, domain).await? {
        let Some(key) = crate::keys::RecordKey::parse(&entry.source_key) else {
            continue;
        };
        let (sys, id) = (key.system(), key.id());
        let Some(canon) = entry
            .canonical
            .as_deref()
            .and_then(|c| serde_json::from_str::<ferry_canon::CanonicalRecord>(c).ok())
        else {
            continue;
        };
        if sys != system || canon.meta().deleted {
            continue;
        }
        if let Some(date) = crate::mapping::accounting_date(&canon).filter(|d| *d >= since) {
            held.push((id.to_string(), date));
        }
    }
    let (Some(from), Some(to)) = (
        held.iter().map(|(_, d)| *d).min(),
        held.iter().map(|(_, d)| *d).max(),
    ) else {
        return Ok(report);
    };
    let live: std::collections::HashSet<String> = ctx
        .psa
        .list_period(domain, from, to)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    report.compared = held.len();
    let now = deps.clock.now();
    let correlation = correlation_id();
    let notices: Vec<OutboundMessage> = held
        .into_iter()
        .filter(|(id, _)| !live.contains(id))
        .map(|(id, _)| {
            polled(
                tenant,
                &system,
                domain,
                id,
                ChangeAction::Delete,
                None,
                None,
                now,
                &correlation,
            )
        })
        .collect();
    report.enqueued = notices.len();
    if !notices.is_empty() {
        deps.queue.send(QueueName::Transform, notices).await?;
    }
    tracing::info!(tenant = %tenant, %domain, compared = report.compared, enqueued = report.enqueued, "deletion sweep finished");
    Ok(report)
}

/// What a poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub pages: usize,
    pub enqueued: usize,
    pub cursor: Option<Cursor>,
}

/// Makes sure every vendor that needs Ferry to register its webhook endpoint
/// delivers to this tenant's route under `base` (`https://…/webhooks/{connector}/{tenant}`):
/// creates or renews each subscription. Returns what each did, in words.
pub async fn subscribe_webhooks(
    deps: &Deps,
    tenant: &TenantId,
    base: &str,
) -> Result<Vec<String>, PollError> {
    let ctx = deps
        .tenants
        .context(tenant)
        .await?
        .ok_or_else(|| PollError::UnknownTenant(tenant.clone()))?;
    let mut done = Vec::new();
    for (route, verifier) in &ctx.webhooks {
        let url = format!("{}/webhooks/{route}/{tenant}", base.trim_end_matches('/'));
        if let Some(what) = verifier.subscribe(&url, deps.clock.now()).await? {
            done.push(format!("{route}: {what}"));
        }
    }
    Ok(done)
}

/// Polls one domain since the tenant's cursor. The first page starts `poll_overlap`
/// before the cursor (to catch records committed late with earlier timestamps;
/// transform drops versions it already has); pages then follow by keyset. After
/// each page is enqueued the cursor advances, conditionally, never backwards.
pub async fn poll(
    deps: &Deps,
    tenant: &TenantId,
    domain: Domain,
    on_page: &(dyn Fn(usize) + Send + Sync),
) -> Result<PollReport, PollError> {
    let ctx = deps
        .tenants
        .context(tenant)
        .await?
        .ok_or_else(|| PollError::UnknownTenant(tenant.clone()))?;
    let mut report = PollReport::default();
    if ctx.template.direction(domain) == Direction::None {
        return Ok(report);
    }
    let system = ctx.psa.system();
    let stream = format!("{system}/{domain}");
    let stored = deps.cursors.get(tenant, &stream).await?;
    let mut after = stored.as_ref().map(|c| Cursor {
        updated_at: c.updated_at - chrono_duration(deps.settings.poll_overlap),
        id: String::new(),
    });
    let correlation = correlation_id();
    loop {
        let page = ctx
            .psa
            .changes(domain, after.as_ref(), deps.settings.poll_page_size)
            .await?;
        let Some(last) = page.last() else { break };
        let next = Cursor::new(last.version.updated_at, last.id.clone());
        let now = deps.clock.now();
        let count = page.len();
        let notices = page
            .into_iter()
            .map(|rec| {
                let action = if rec.deleted {
                    ChangeAction::Delete
                } else {
                    ChangeAction::Upsert
                };
                polled(
                    tenant,
                    &system,
                    domain,
                    rec.id,
                    action,
                    Some(rec.version),
                    Some(rec.raw),
                    now,
                    &correlation,
                )
            })
            .collect();
        deps.queue.send(QueueName::Transform, notices).await?;
        deps.cursors.advance(tenant, &stream, &next).await?;
        report.pages += 1;
        report.enqueued += count;
        on_page(count);
        after = Some(next.clone());
        report.cursor = Some(next);
        if count < deps.settings.poll_page_size as usize {
            break;
        }
    }
    tracing::info!(tenant = %tenant, %domain, pages = report.pages, enqueued = report.enqueued, "poll finished");
    Ok(report)
}
