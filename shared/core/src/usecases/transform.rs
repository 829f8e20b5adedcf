//! transform: change notice → canonical record → ERP document (via the tenant's
//! template) → post command; or a skip with a reason, or an exception with a
//! reason and an owner.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use ferry_canon::{CanonicalRecord, Domain, SourceRef, SourceVersion, TenantId};
use tracing::Instrument;

use crate::deps::{Deps, TenantContext};
use crate::error::{ConnectorError, PortError, RetryClass};
use crate::hash::{hash_json, sha256_hex};
use crate::mapping::{self, ContactRef, Related, StagedLine, SummaryGroup, Violation};
use crate::messages::{
    ChangeNotice, Envelope, FlushGroup, Origin, PostCommand, Resync, record_key,
};
use crate::ports::{
    ChangeAction, Disposition, ExceptionRecord, ExceptionStatus, Observation, Observe,
    OutboundMessage, Owner, QueueName, ReceivedMessage, SourceRecord, StageRequest,
};
use crate::posting::PostingDoc;
use crate::template::{CompiledRule, Direction, Granularity};
use crate::usecases::retry::{self, Outcome, exception_id};

/// Handles a batch from the transform queue; one outcome per message, in order.
pub async fn handle_batch(deps: &Deps, messages: &[ReceivedMessage]) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(messages.len());
    for msg in messages {
        out.push(handle_message(deps, msg).await);
    }
    out
}

/// Handles one message; infrastructure failures become retries with backoff.
pub async fn handle_message(deps: &Deps, msg: &ReceivedMessage) -> Outcome {
    let envelope = match Envelope::from_body(&msg.body) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(message_id = %msg.id, error = %e, "unreadable transform message");
            // Leave it to the DLQ: retry parks it with the body intact for support.
            return Outcome::backoff(
                &deps.settings,
                msg.receive_count,
                format!("unreadable message: {e}"),
            );
        }
    };
    let result = match envelope {
        Envelope::Change(notice) => transform_notice(deps, &notice, msg).await,
        Envelope::Resync(r) => resync(deps, &r).await.map(|_| Outcome::Done),
        // Post-queue messages on the wrong queue: forward rather than drop.
        other @ (Envelope::Post(_) | Envelope::Flush(_)) => deps
            .queue
            .send(QueueName::Post, vec![OutboundMessage::now(other.to_body())])
            .await
            .map(|_| Outcome::Done)
            .map_err(Failure::Port),
    };
    match result {
        Ok(o) => o,
        Err(f) => {
            let (after, throttled) = match f.class() {
                RetryClass::Throttled { retry_after } => (
                    retry::retry_after_or_backoff(&deps.settings, msg.receive_count, retry_after),
                    true,
                ),
                _ => (retry::backoff(&deps.settings, msg.receive_count), false),
            };
            tracing::warn!(message_id = %msg.id, error = %f, ?after, throttled, "transform will retry");
            Outcome::Retry {
                after,
                reason: f.to_string(),
                throttled,
            }
        }
    }
}

/// Failures that make a notice retry (as opposed to an exception, which is a result).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Port(#[from] PortError),
    #[error("vendor call failed: {0}")]
    Psa(#[from] ConnectorError),
}

impl Failure {
    fn class(&self) -> RetryClass {
        match self {
            Failure::Port(p) => p.class,
            Failure::Psa(c) => c.class(),
        }
    }
}

async fn resync(deps: &Deps, r: &Resync) -> Result<(), Failure> {
    let now = deps.clock.now();
    let notices = r
        .items
        .iter()
        .map(|i| {
            OutboundMessage::now(
                Envelope::Change(ChangeNotice {
                    tenant: r.tenant.clone(),
                    system: i.system.clone(),
                    domain: i.domain,
                    id: i.id.clone(),
                    action: ChangeAction::Upsert,
                    version: None,
                    record: None,
                    origin: r.origin.clone(),
                    received_at: now,
                    correlation_id: r.correlation_id.clone(),
                })
                .to_body(),
            )
        })
        .collect();
    deps.queue.send(QueueName::Transform, notices).await?;
    Ok(())
}

/// Whether the ledger holds `entry` as deleted at the source.
fn held_deleted(entry: &crate::ports::LedgerEntry) -> bool {
    entry
        .canonical
        .as_deref()
        .and_then(|c| serde_json::from_str::<CanonicalRecord>(c).ok())
        .is_some_and(|c| c.meta().deleted)
}

/// The version under which Ferry orders a source state it is about to observe.
/// The source's own version, except where the source's version cannot tell two
/// states apart: a state Ferry holds keeps the version it was first observed
/// under, and current content the source dates no later than the state Ferry
/// holds (a second change within the same second) is ordered just after it. Each
/// state thus gets its own version, so its documents get their own revision and
/// idempotency key, and an older state can never be ordered after a newer one.
fn ferry_order(
    held: &crate::ports::LedgerEntry,
    version: &SourceVersion,
    content_hash: &str,
) -> SourceVersion {
    if held.content_hash == content_hash {
        return held.version.clone();
    }
    if *version <= held.version && !held_deleted(held) {
        return SourceVersion {
            updated_at: held.version.updated_at + chrono::Duration::microseconds(1),
            etag: version.etag.clone(),
        };
    }
    version.clone()
}

/// Everything transform knows about the notice it is working on.
struct Work<'a> {
    deps: &'a Deps,
    ctx: Arc<TenantContext>,
    notice: &'a ChangeNotice,
    key: String,
    receive_count: u32,
}

async fn transform_notice(
    deps: &Deps,
    notice: &ChangeNotice,
    msg: &ReceivedMessage,
) -> Result<Outcome, Failure> {
    let receive_count = msg.receive_count;
    let Some(ctx) = deps.tenants.context(&notice.tenant).await? else {
        return Ok(retry::not_served(
            deps,
            retry::Unserved {
                tenant: &notice.tenant,
                stage: "transform",
                domain: notice.domain,
                source_key: &notice.source_key(),
                receive_count,
                queue: QueueName::Transform,
                body: &msg.body,
            },
        )
        .await);
    };
    let w = Work {
        deps,
        ctx,
        notice,
        key: notice.source_key(),
        receive_count,
    };
    let span = tracing::info_span!("transform", tenant = %notice.tenant, key = %w.key, correlation_id = %notice.correlation_id);
    if notice.system == w.ctx.erp.system() {
        return w.payment_status().instrument(span).await;
    }
    w.run().instrument(span).await
}

impl Work<'_> {
    /// Maps a source record and hashes the result (the raw record if it does not map).
    fn map(&self, rec: &SourceRecord) -> Mapped {
        let mapped = self.ctx.canonical(rec);
        let canonical_json = mapped
            .as_ref()
            .ok()
            .map(|c| serde_json::to_string(c).expect("canonical records serialise"));
        let content_hash = match &canonical_json {
            Some(j) => sha256_hex(j.as_bytes()),
            None => hash_json(&rec.raw),
        };
        (mapped, canonical_json, content_hash)
    }

    async fn run(&self) -> Result<Outcome, Failure> {
        let Some(rec) = self.current_record().await? else {
            return Ok(Outcome::Done);
        };
        if rec.domain != self.notice.domain {
            // The source files the record under another domain than the notice
            // named (a ConnectWise credit memo notified as an invoice, in a thin
            // notice): it is kept under its own domain's key, as a poll would.
            tracing::info!(notified = %self.notice.domain, actual = %rec.domain, "record handled under its own domain");
            let notice = ChangeNotice {
                domain: rec.domain,
                ..self.notice.clone()
            };
            let w = Work {
                deps: self.deps,
                ctx: self.ctx.clone(),
                notice: &notice,
                key: notice.source_key(),
                receive_count: self.receive_count,
            };
            return w.process(rec).await;
        }
        self.process(rec).await
    }

    async fn process(&self, mut rec: SourceRecord) -> Result<Outcome, Failure> {
        let (mut mapped, mut canonical_json, mut content_hash) = self.map(&rec);
        let held = self.deps.ledger.get(&self.notice.tenant, &self.key).await?;
        // A notice body that is not newer than what Ferry holds, with other content,
        // cannot be ordered by its version: two changes within one second share one
        // (ConnectWise's timestamps are whole seconds), and a reordered webhook is
        // older. Ask the source for the current state instead of trusting the body.
        // Nor can a body be ordered against a deletion: the deletion's version is
        // Ferry's clock, the body's the source's. A deleted record stays deleted
        // unless the source still has it.
        if self.notice.record.is_some()
            && let Some(held) = &held
            && held.content_hash != content_hash
            && (rec.version <= held.version || held_deleted(held))
        {
            match self.ctx.psa.fetch(rec.domain, &rec.id).await? {
                Some(current) => {
                    rec = current;
                    (mapped, canonical_json, content_hash) = self.map(&rec);
                }
                None => return Ok(Outcome::Done),
            }
        }
        let version = held.as_ref().map_or_else(
            || rec.version.clone(),
            |h| ferry_order(h, &rec.version, &content_hash),
        );
        let observed = self
            .deps
            .ledger
            .observe(Observation {
                tenant: &self.notice.tenant,
                source_key: &self.key,
                domain: self.notice.domain,
                version: &version,
                content_hash: &content_hash,
                received_at: self.notice.received_at,
                canonical: canonical_json.as_deref(),
            })
            .await?;
        let last_doc = match observed {
            Observe::Stale { current } => {
                tracing::info!(stale = %rec.version.updated_at, current = %current.updated_at, "older version ignored");
                return Ok(Outcome::Done);
            }
            // A replay reprocesses on purpose: the template or the ERP may have changed.
            Observe::Duplicate { last_doc, .. }
                if matches!(self.notice.origin, Origin::Replay { .. }) =>
            {
                last_doc
            }
            Observe::Duplicate { .. } => return Ok(Outcome::Done),
            Observe::New { last_doc, .. } => last_doc,
        };
        let canon = match mapped {
            Ok(c) => c,
            Err(e) => {
                let owner = self
                    .rule()
                    .map(|r| r.owner)
                    .unwrap_or(Owner::ProjectOperations);
                let v = Violation::new(
                    "validation.source_record",
                    owner,
                    format!("{} {} cannot be read: {e}", self.notice.domain, self.key),
                )
                .field(e.field.clone())
                .rule(e.rule.clone());
                self.exception(&version, None, v, None).await?;
                return Ok(Outcome::Done);
            }
        };
        self.decide(&version, &canon, last_doc).await
    }

    /// An ERP invoice changed (a payment): write its paid amount back onto the PSA
    /// invoice it came from. ERP-originated invoices (summaries) have no PSA invoice.
    async fn payment_status(&self) -> Result<Outcome, Failure> {
        let n = self.notice;
        let tenant = &n.tenant;
        let version = n
            .version
            .clone()
            .unwrap_or_else(|| SourceVersion::at(n.received_at));
        let observed = self
            .deps
            .ledger
            .observe(Observation {
                tenant,
                source_key: &self.key,
                domain: Domain::Payments,
                version: &version,
                content_hash: &version.updated_at.to_rfc3339(),
                received_at: n.received_at,
                canonical: None,
            })
            .await?;
        if !matches!(observed, Observe::New { .. }) {
            return Ok(Outcome::Done);
        }
        if self.ctx.template.direction(Domain::Payments) != Direction::ErpToPsa {
            return self
                .skip(
                    &version,
                    "payment status does not flow back per the template",
                )
                .await;
        }
        let Some(entry) = self.deps.idmap.find_by_erp_id(tenant, &n.id).await? else {
            return self.skip(&version, "not a document Ferry posted").await;
        };
        let Some((domain, source)) = entry.doc_key.split_once('/') else {
            return self.skip(&version, "not a document Ferry posted").await;
        };
        if domain != Domain::Invoices.as_str() {
            return self
                .skip(&version, "ERP-originated invoice: no PSA invoice to update")
                .await;
        }
        let Some(psa_id) = source.split_once(':').map(|(_, id)| id.to_string()) else {
            return self.skip(&version, "not a document Ferry posted").await;
        };
        let Some(doc) = self
            .ctx
            .erp
            .fetch_document(crate::posting::DocKind::Invoice, &n.id)
            .await?
        else {
            return self
                .skip(&version, "the ERP no longer has this invoice")
                .await;
        };
        let update = crate::ports::PaymentUpdate {
            amount_paid: ferry_canon::Money::new(doc.amount_paid, doc.currency),
            amount_due: ferry_canon::Money::new(doc.amount_due, doc.currency),
            paid_on: Some(self.deps.clock.now().date_naive()),
            erp_reference: doc.erp_id.clone(),
        };
        match self.ctx.psa.apply_payment(&psa_id, &update).await {
            Ok(()) => {
                let doc_key = format!("psa-payments/{source}");
                self.settle(
                    &version,
                    Disposition::Posted {
                        doc_key,
                        revision: version.as_micros(),
                    },
                )
                .await?;
                Ok(Outcome::Done)
            }
            Err(e) if e.class() == RetryClass::Permanent => {
                let v = Violation::new(
                    "psa.refused",
                    Owner::Finance,
                    format!("payment status could not be written to the PSA: {e}"),
                );
                self.exception(&version, None, v, None).await?;
                Ok(Outcome::Done)
            }
            Err(e) => Err(Failure::Psa(e)),
        }
    }

    fn rule(&self) -> Option<&CompiledRule> {
        self.ctx.template.rule(self.notice.domain)
    }

    /// The record to work on: the notice's copy (fat), or the source's current state.
    /// A delete is confirmed with the source: if the record still exists, the
    /// delete notice is out of date and the current state is used instead.
    async fn current_record(&self) -> Result<Option<SourceRecord>, Failure> {
        let n = self.notice;
        if n.action == ChangeAction::Upsert
            && let (Some(raw), Some(version)) = (&n.record, &n.version)
        {
            return Ok(Some(SourceRecord {
                domain: n.domain,
                id: n.id.clone(),
                version: version.clone(),
                deleted: false,
                raw: raw.clone(),
            }));
        }
        if let Some(current) = self.ctx.psa.fetch(n.domain, &n.id).await? {
            return Ok(Some(current));
        }
        // Gone at the source. The deletion is newer than anything we hold.
        let mut found = self
            .deps
            .ledger
            .get(&n.tenant, &self.key)
            .await?
            .map(|h| (n.domain, h));
        for d in self.ctx.psa.shares_ids_with(n.domain) {
            if found.is_some() {
                break;
            }
            let key = ChangeNotice {
                domain: d,
                ..n.clone()
            }
            .source_key();
            found = self.deps.ledger.get(&n.tenant, &key).await?.map(|h| (d, h));
        }
        let Some((domain, held)) = found else {
            tracing::info!("delete of a record Ferry never saw; nothing to do");
            return Ok(None);
        };
        let at = std::cmp::max(
            n.received_at,
            held.version.updated_at + chrono::Duration::microseconds(1),
        );
        let mut raw = held
            .canonical
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .unwrap_or(serde_json::Value::Null);
        // Carry the last known content, flagged deleted, so mappers can build a reversal.
        if let Some(obj) = raw.get_mut("record").and_then(|r| r.get_mut("meta")) {
            obj["deleted"] = serde_json::Value::Bool(true);
        }
        Ok(Some(SourceRecord {
            domain,
            id: n.id.clone(),
            version: SourceVersion::at(at),
            deleted: true,
            raw: serde_json::json!({ "ferry_tombstone": raw }),
        }))
    }

    async fn decide(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        prev_doc: Option<String>,
    ) -> Result<Outcome, Failure> {
        let template = &self.ctx.template;
        let refs = &self.ctx.references;
        let rule = match (template.direction(self.notice.domain), self.rule()) {
            (Direction::PsaToErp, Some(rule)) => rule,
            (direction, _) => {
                let reason = match direction {
                    Direction::Reference => "reference data: read for lookups, not posted",
                    Direction::ErpToPsa => "this domain flows from the ERP to the PSA",
                    _ => "domain not synced by the template",
                };
                return self.skip(version, reason).await;
            }
        };
        let related = match self.related(canon).await? {
            Ok(r) => r,
            Err(v) => {
                return self.refuse(version, canon, v).await;
            }
        };
        let scope = related.scope(canon);
        let summary = rule.spec.granularity == Granularity::Summary;

        // Deleted at the source, or filtered out now: take it out of its document.
        let skip_reason = if canon.meta().deleted {
            Some("deleted in the source".to_string())
        } else {
            match mapping::gate(rule, canon, &scope) {
                Ok(r) => r,
                Err(v) => {
                    return self.refuse(version, canon, v).await;
                }
            }
        };
        if let Some(reason) = skip_reason {
            self.remove_timesheet(version, canon, rule).await?;
            if summary {
                if let Some(doc) = &prev_doc {
                    self.unstage(doc).await?;
                }
                return self.skip(version, &reason).await;
            }
            // A per-record document that was posted must be reversed in the ERP.
            if !(canon.meta().deleted && prev_doc.is_some()) {
                return self.skip(version, &reason).await;
            }
        }

        if let Some(date) = mapping::accounting_date(canon)
            && let Some(closed) = self.closed_through().await?
            && date <= closed
            && !canon.meta().deleted
        {
            let v = Violation::new(
                "validation.closed_period",
                Owner::Finance,
                format!("accounting period of {date} is closed (closed through {closed})"),
            )
            .field("date")
            .rule("periods.closed_through");
            return self.refuse(version, canon, v).await;
        }
        if let Some(date) = mapping::accounting_date(canon)
            && !canon.meta().deleted
            && let Err(v) =
                mapping::plausible_date(template, date, self.deps.clock.now().date_naive())
        {
            return self.refuse(version, canon, v).await;
        }

        match canon {
            CanonicalRecord::Customers(account) => {
                let doc = match mapping::contact_doc(template, refs, account, &scope) {
                    Ok(d) => d,
                    Err(v) => {
                        return self.refuse(version, canon, v).await;
                    }
                };
                self.post(version, canon, doc, prev_doc.as_deref()).await
            }
            _ => {
                let Some(account) = mapping::billed_account(canon, &related) else {
                    let v = Violation::new(
                        "validation.required_field",
                        rule.owner,
                        "record has no customer (directly or through its project)",
                    )
                    .field("account");
                    return self.refuse(version, canon, v).await;
                };
                let contact = match self.contact(&account, canon, version).await? {
                    Dependency::Ready(c) => c,
                    Dependency::Wait(after) => {
                        return Ok(Outcome::retry(
                            after,
                            format!("waiting for customer {account} to post"),
                        ));
                    }
                    Dependency::Blocked => return Ok(Outcome::Done),
                };
                match canon {
                    CanonicalRecord::Projects(project) => {
                        match mapping::project_doc(refs, project, &contact) {
                            Ok(doc) => self.post(version, canon, doc, prev_doc.as_deref()).await,
                            Err(v) => self.refuse(version, canon, v).await,
                        }
                    }
                    CanonicalRecord::Invoices(inv) | CanonicalRecord::CreditMemos(inv) => {
                        let dp = self.ctx.erp.capabilities().unit_price_decimals;
                        let doc = mapping::invoice_doc(template, refs, rule, inv, &contact, &scope)
                            .and_then(|d| {
                                if let crate::posting::DocBody::Invoice(i) = &d.body {
                                    for l in &i.lines {
                                        mapping::check_unit_precision(l.unit_amount, dp)?;
                                    }
                                }
                                Ok(d)
                            });
                        match doc {
                            Ok(doc) => self.post(version, canon, doc, prev_doc.as_deref()).await,
                            Err(v) => self.refuse(version, canon, v).await,
                        }
                    }
                    _ => {
                        let line = match mapping::line(template, rule, canon, &related, &scope)
                            .and_then(|l| {
                                mapping::check_unit_precision(
                                    l.unit_amount,
                                    self.ctx.erp.capabilities().unit_price_decimals,
                                )?;
                                Ok(l)
                            }) {
                            Ok(l) => l,
                            Err(v) => {
                                return self.refuse(version, canon, v).await;
                            }
                        };
                        if let Some(wait) = self.timesheet(version, canon, rule).await? {
                            return Ok(wait);
                        }
                        if summary {
                            self.summarise(version, canon, rule, line, &account, &contact, prev_doc)
                                .await
                        } else {
                            let doc = mapping::single_line_invoice(
                                template,
                                refs,
                                rule,
                                &line,
                                &contact,
                                canon.meta().deleted,
                            );
                            self.post(version, canon, doc, prev_doc.as_deref()).await
                        }
                    }
                }
            }
        }
    }

    /// Loads the project and customer a record refers to: from the ledger when
    /// Ferry has seen them, otherwise from the PSA (and records them).
    async fn related(
        &self,
        canon: &CanonicalRecord,
    ) -> Result<Result<Related, Violation>, Failure> {
        let mut related = Related::default();
        // For a customer, `account` in expressions is the customer itself.
        if let CanonicalRecord::Customers(a) = canon {
            related.account = Some(a.clone());
        }
        // For a project, `project` in expressions is the project itself.
        if let CanonicalRecord::Projects(p) = canon {
            related.project = Some(p.clone());
        }
        if let Some(p) = mapping::project_of(canon) {
            match self.lookup(Domain::Projects, p).await? {
                Ok(Some(CanonicalRecord::Projects(project))) => related.project = Some(project),
                Ok(_) => return Ok(Err(unknown_reference("project", p, "project"))),
                Err(v) => return Ok(Err(v)),
            }
        }
        if let Some(a) = mapping::billed_account(canon, &related)
            && !matches!(canon, CanonicalRecord::Customers(_))
        {
            match self.lookup(Domain::Customers, &a).await? {
                Ok(Some(CanonicalRecord::Customers(account))) => related.account = Some(account),
                Ok(_) => return Ok(Err(unknown_reference("customer", &a, "account"))),
                Err(v) => return Ok(Err(v)),
            }
        }
        Ok(Ok(related))
    }

    async fn lookup(
        &self,
        domain: Domain,
        r: &SourceRef,
    ) -> Result<Result<Option<CanonicalRecord>, Violation>, Failure> {
        let tenant = &self.notice.tenant;
        if let Some(entry) = self.deps.ledger.get(tenant, &record_key(domain, r)).await?
            && let Some(c) = entry.canonical.as_deref()
            && let Ok(rec) = serde_json::from_str::<CanonicalRecord>(c)
        {
            return Ok(Ok(Some(rec)));
        }
        let Some(src) = self.ctx.psa.fetch(domain, &r.id).await? else {
            return Ok(Ok(None));
        };
        match self.ctx.canonical(&src) {
            Ok(rec) => Ok(Ok(Some(rec))),
            Err(e) => Ok(Err(Violation::new(
                "validation.related_record",
                Owner::ProjectOperations,
                format!("{domain} {r} cannot be read: {e}"),
            )
            .field(e.field))),
        }
    }

    async fn closed_through(&self) -> Result<Option<NaiveDate>, Failure> {
        let periods = &self.ctx.template.spec.periods;
        let mut closed = periods.closed_through;
        if periods.use_erp_lock_date {
            let erp = self
                .deps
                .periods
                .closed_through(
                    &self.notice.tenant,
                    self.ctx.erp.as_ref(),
                    self.deps.clock.now(),
                )
                .await?;
            closed = closed.max(erp);
        }
        Ok(closed)
    }

    /// The customer's ERP contact, or a wait, or a blocking exception.
    async fn contact(
        &self,
        account: &SourceRef,
        canon: &CanonicalRecord,
        version: &SourceVersion,
    ) -> Result<Dependency, Failure> {
        let tenant = &self.notice.tenant;
        let key = mapping::customer_key(account);
        if let Some(entry) = self.deps.idmap.get(tenant, &key).await?
            && let Some(erp_id) = entry.erp_id
        {
            return Ok(Dependency::Ready(ContactRef { erp_id, key }));
        }
        // Held at transform or refused by the ERP at post: both are keyed by the
        // customer's record key, which is also its document key.
        let blocking = self
            .deps
            .exceptions
            .open_for_source(tenant, &key)
            .await?
            .into_iter()
            .find(|e| e.status == ExceptionStatus::Open);
        if let Some(b) = blocking {
            let v = Violation::new(
                "dependency.blocked",
                b.owner,
                format!(
                    "customer {account} is held by exception {}: {}",
                    b.id, b.message
                ),
            )
            .field("account");
            self.exception(
                version,
                Some(canon),
                v,
                Some(record_key(Domain::Customers, account)),
            )
            .await?;
            return Ok(Dependency::Blocked);
        }
        if self.receive_count <= 1
            && self
                .deps
                .ledger
                .get(tenant, &record_key(Domain::Customers, account))
                .await?
                .is_none()
        {
            // Never seen: pull it through the pipeline rather than wait for a poll.
            let pull = ChangeNotice {
                tenant: tenant.clone(),
                system: account.system.clone(),
                domain: Domain::Customers,
                id: account.id.clone(),
                action: ChangeAction::Upsert,
                version: None,
                record: None,
                origin: self.notice.origin.clone(),
                received_at: self.deps.clock.now(),
                correlation_id: self.notice.correlation_id.clone(),
            };
            self.deps
                .queue
                .send(
                    QueueName::Transform,
                    vec![OutboundMessage::now(Envelope::Change(pull).to_body())],
                )
                .await?;
        }
        let wait = self
            .deps
            .settings
            .dependency_wait
            .saturating_mul(self.receive_count.clamp(1, 8));
        Ok(Dependency::Wait(wait))
    }

    /// Queues this record's own document at the source version.
    async fn post(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        doc: PostingDoc,
        prev_doc: Option<&str>,
    ) -> Result<Outcome, Failure> {
        self.note_doc(version, &doc.key, prev_doc).await?;
        let (doc_key, doc_version) = self
            .enqueue(version, canon, doc, vec![self.key.clone()])
            .await?;
        self.settle(
            version,
            Disposition::Queued {
                doc_key,
                revision: doc_version,
            },
        )
        .await?;
        retry::resolve_moved_on(
            self.deps,
            &self.notice.tenant,
            &self.key,
            self.deps.clock.now(),
        )
        .await?;
        Ok(Outcome::Done)
    }

    /// Sends a post command for `doc`; returns its key and revision. The ledger is
    /// the caller's: a record's secondary documents (timesheet lines) do not move it.
    async fn enqueue(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        doc: PostingDoc,
        source_keys: Vec<String>,
    ) -> Result<(String, i64), Failure> {
        let doc_version = version.as_micros();
        let cmd = PostCommand {
            tenant: self.notice.tenant.clone(),
            domain: self.notice.domain,
            content_hash: hash_json(&doc),
            source_hash: hash_json(canon),
            doc,
            version: doc_version,
            source_keys,
            template_version: self.ctx.template.version.clone(),
            created_at: self.deps.clock.now(),
            first_received_at: self.notice.received_at,
            correlation_id: self.notice.correlation_id.clone(),
        };
        let doc_key = cmd.doc.key.clone();
        self.deps
            .queue
            .send(
                QueueName::Post,
                vec![OutboundMessage::now(
                    Envelope::Post(Box::new(cmd)).to_body(),
                )],
            )
            .await?;
        Ok((doc_key, doc_version))
    }

    /// When the template keeps timesheets: records a live time entry as a line on
    /// its ERP project. `Some` means wait, because the project is on its way to the
    /// ERP. A project that will not be there (skipped, or held by an exception)
    /// gets no line; the entry still bills.
    async fn timesheet(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        rule: &CompiledRule,
    ) -> Result<Option<Outcome>, Failure> {
        let (true, CanonicalRecord::TimeEntries(t)) = (rule.spec.timesheets, canon) else {
            return Ok(None);
        };
        let Some(project) = &t.project else {
            return Ok(None);
        };
        let at = self.erp_project(t).await?;
        if !at.erp_id.is_empty() {
            self.enqueue_timesheet(version, canon, t, &at, false)
                .await?;
            return Ok(None);
        }
        match self
            .deps
            .ledger
            .get(&self.notice.tenant, &at.key)
            .await?
            .map(|e| e.disposition)
        {
            None | Some(Disposition::Pending) | Some(Disposition::Queued { .. }) => {
                let wait = self
                    .deps
                    .settings
                    .dependency_wait
                    .saturating_mul(self.receive_count.clamp(1, 8));
                Ok(Some(Outcome::retry(
                    wait,
                    format!("waiting for project {project} to post (timesheet line)"),
                )))
            }
            // The template keeps a timesheet line for every entry, and this
            // entry's project is not in the ERP to carry one: the entry is held
            // (not half-posted) until the project posts, which releases it.
            Some(other) => {
                let v = match other {
                    Disposition::Exception { exception_id, .. } => Violation::new(
                        "dependency.blocked",
                        rule.owner,
                        format!(
                            "project {project} is held by exception {exception_id}; its time waits for it (timesheet lines go on the ERP project)"
                        ),
                    ),
                    other => Violation::new(
                        "dependency.not_in_erp",
                        rule.owner,
                        format!(
                            "project {project} is not in the ERP ({}), so this entry can get no timesheet line: post the project, or set timesheets = false",
                            match &other {
                                Disposition::Skipped { reason } => format!("skipped: {reason}"),
                                o => o.state().to_string(),
                            }
                        ),
                    )
                    .rule(format!("domains.{}.timesheets", rule.domain)),
                }
                .field("project");
                self.exception(version, Some(canon), v, Some(at.key.clone()))
                    .await?;
                Ok(Some(Outcome::Done))
            }
        }
    }

    /// When the template keeps timesheets: removes the timesheet line of an entry
    /// that was deleted, or is no longer approved or billable.
    async fn remove_timesheet(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        rule: &CompiledRule,
    ) -> Result<(), Failure> {
        let (true, CanonicalRecord::TimeEntries(t)) = (rule.spec.timesheets, canon) else {
            return Ok(());
        };
        let tenant = &self.notice.tenant;
        let held = self
            .deps
            .idmap
            .get(tenant, &mapping::timesheet_key(&self.key))
            .await?;
        if !crate::ports::IdMapEntry::may_exist_in_erp(held.as_ref()) {
            return Ok(());
        }
        let at = self.erp_project(t).await?;
        self.enqueue_timesheet(version, canon, t, &at, true).await
    }

    /// An entry's project: its record key, and its ERP id (empty until the ERP has it).
    async fn erp_project(&self, t: &ferry_canon::TimeEntry) -> Result<ContactRef, Failure> {
        let key = t
            .project
            .as_ref()
            .map(|p| record_key(Domain::Projects, p))
            .unwrap_or_default();
        let erp_id = self
            .deps
            .idmap
            .get(&self.notice.tenant, &key)
            .await?
            .and_then(|e| e.erp_id)
            .unwrap_or_default();
        Ok(ContactRef { erp_id, key })
    }

    async fn enqueue_timesheet(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        t: &ferry_canon::TimeEntry,
        at: &ContactRef,
        removed: bool,
    ) -> Result<(), Failure> {
        let doc = mapping::timesheet_doc(&self.ctx.references, t, at, removed);
        self.enqueue(version, canon, doc, vec![self.key.clone()])
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn summarise(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        rule: &CompiledRule,
        line: StagedLine,
        account: &SourceRef,
        contact: &ContactRef,
        prev_doc: Option<String>,
    ) -> Result<Outcome, Failure> {
        let group = match mapping::summary_group(
            &self.ctx.references,
            rule,
            &line,
            mapping::project_of(canon),
            account,
        ) {
            Ok(g) => g,
            Err(v) => {
                return self.refuse(version, canon, v).await;
            }
        };
        if line.currency != group.currency {
            let v = Violation::new(
                "validation.currency_mismatch",
                Owner::Finance,
                format!(
                    "{} is in {} but its document is in {}",
                    self.key, line.currency, group.currency
                ),
            );
            return self.refuse(version, canon, v).await;
        }
        match prev_doc.as_deref() {
            Some(old) if old != group.doc_key => self.unstage(old).await?,
            _ => {}
        }
        let header = serde_json::to_string(&SummaryHeader {
            group: group.clone(),
            contact: contact.clone(),
        })
        .expect("headers serialise");
        let line_json = serde_json::to_string(&line).expect("staged lines serialise");
        let tenant = &self.notice.tenant;
        self.note_doc(version, &group.doc_key, prev_doc.as_deref())
            .await?;
        let revision = self
            .deps
            .staging
            .stage(StageRequest {
                tenant,
                group: &group.group,
                header: Some(&header),
                member: &self.key,
                line: Some(&line_json),
                now: self.deps.clock.now(),
            })
            .await?;
        // Already in the ERP at this revision or later (an unchanged re-read).
        let posted = self
            .deps
            .idmap
            .get(tenant, &group.doc_key)
            .await?
            .is_some_and(|e| e.erp_id.is_some() && e.version >= revision);
        if posted {
            self.settle(
                version,
                Disposition::Posted {
                    doc_key: group.doc_key.clone(),
                    revision,
                },
            )
            .await?;
        } else {
            self.schedule_flush(&group.group).await?;
            self.settle(
                version,
                Disposition::Queued {
                    doc_key: group.doc_key.clone(),
                    revision,
                },
            )
            .await?;
        }
        retry::resolve_moved_on(self.deps, tenant, &self.key, self.deps.clock.now()).await?;
        Ok(Outcome::Done)
    }

    /// Sends a flush for the group unless one is already pending (single flight).
    async fn schedule_flush(&self, group: &str) -> Result<(), Failure> {
        let coalesce = self
            .rule()
            .and_then(|r| r.spec.summary.as_ref())
            .map(|s| s.coalesce_seconds)
            .unwrap_or(0);
        let now = self.deps.clock.now();
        // The flag outlives the flush's delay by a margin, so a busy post queue does not
        // cause a second flush; if a flush were ever lost, the next change after the
        // margin schedules a new one.
        let until = now + chrono::Duration::seconds(coalesce as i64) + chrono::Duration::minutes(5);
        let tenant = &self.notice.tenant;
        if self
            .deps
            .staging
            .schedule(tenant, group, now, until)
            .await?
        {
            let flush = Envelope::Flush(FlushGroup {
                tenant: tenant.clone(),
                domain: self.notice.domain,
                group: group.to_string(),
                created_at: now,
                correlation_id: self.notice.correlation_id.clone(),
            });
            self.deps
                .queue
                .send(
                    QueueName::Post,
                    vec![OutboundMessage {
                        body: flush.to_body(),
                        delay: Duration::from_secs(coalesce),
                    }],
                )
                .await?;
        }
        Ok(())
    }

    /// Removes this record from the summary document it was in; the document is
    /// re-posted without it (or deleted, if it became empty).
    async fn unstage(&self, doc_key: &str) -> Result<(), Failure> {
        let Some(group) = doc_key.strip_prefix("summary/") else {
            return Ok(());
        };
        self.deps
            .staging
            .stage(StageRequest {
                tenant: &self.notice.tenant,
                group,
                header: None,
                member: &self.key,
                line: None,
                now: self.deps.clock.now(),
            })
            .await?;
        self.schedule_flush(group).await
    }

    async fn skip(&self, version: &SourceVersion, reason: &str) -> Result<Outcome, Failure> {
        self.settle(
            version,
            Disposition::Skipped {
                reason: reason.to_string(),
            },
        )
        .await?;
        retry::resolve_moved_on(
            self.deps,
            &self.notice.tenant,
            &self.key,
            self.deps.clock.now(),
        )
        .await?;
        Ok(Outcome::Done)
    }

    /// Tells the ledger where this version is going before it is sent there,
    /// unless the ledger already names that document (`known`, from `observe`).
    async fn note_doc(
        &self,
        version: &SourceVersion,
        doc_key: &str,
        known: Option<&str>,
    ) -> Result<(), Failure> {
        if known == Some(doc_key) {
            return Ok(());
        }
        self.deps
            .ledger
            .note_doc(&self.notice.tenant, &self.key, version, doc_key)
            .await?;
        Ok(())
    }

    async fn settle(&self, version: &SourceVersion, d: Disposition) -> Result<(), Failure> {
        let applied = self
            .deps
            .ledger
            .settle(&self.notice.tenant, &self.key, version, &d)
            .await?;
        tracing::debug!(state = d.state(), version = %version.updated_at, applied, "decided");
        Ok(())
    }

    /// Records an exception for this record and settles the ledger on it.
    /// Records `v` as the record's exception; the message is done.
    async fn refuse(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        v: Violation,
    ) -> Result<Outcome, Failure> {
        self.exception(version, Some(canon), v, None).await?;
        Ok(Outcome::Done)
    }

    async fn exception(
        &self,
        version: &SourceVersion,
        canon: Option<&CanonicalRecord>,
        v: Violation,
        blocked_by: Option<String>,
    ) -> Result<(), Failure> {
        let tenant = &self.notice.tenant;
        let now = self.deps.clock.now();
        let (amount, hours) = canon.map(mapping::at_stake).unwrap_or((None, None));
        let replay = Envelope::Change(ChangeNotice {
            record: None,
            version: None,
            ..self.notice.clone()
        });
        let stored = retry::raise(
            self.deps,
            ExceptionRecord {
                id: exception_id(tenant, "transform", &self.key),
                tenant: tenant.clone(),
                stage: "transform".into(),
                domain: self.notice.domain,
                source_key: self.key.clone(),
                reason: v.reason.clone(),
                message: v.message,
                field: v.field,
                rule: v.rule,
                erp_message: None,
                owner: v.owner,
                status: ExceptionStatus::Open,
                attempts: 1,
                first_seen: now,
                last_seen: now,
                amount,
                hours,
                doc_key: None,
                blocked_by,
                replay_queue: QueueName::Transform,
                replay_body: replay.to_body(),
            },
        )
        .await?;
        tracing::info!(reason = %stored.reason, owner = %stored.owner, "exception raised");
        self.settle(
            version,
            Disposition::Exception {
                exception_id: stored.id,
                reason: v.reason,
                owner: stored.owner,
            },
        )
        .await
    }
}

/// What a summary group renders into: stored with the group in staging.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SummaryHeader {
    pub group: SummaryGroup,
    pub contact: ContactRef,
}

/// A mapped record, its canonical JSON and its content hash.
type Mapped = (
    Result<CanonicalRecord, crate::error::MappingError>,
    Option<String>,
    String,
);

enum Dependency {
    Ready(ContactRef),
    Wait(Duration),
    Blocked,
}

/// Replays exceptions that were blocked by `blocker` (a record that just posted).
pub async fn release_dependents(
    deps: &Deps,
    tenant: &TenantId,
    blocker: &str,
) -> Result<usize, PortError> {
    let blocked = deps.exceptions.blocked_by(tenant, blocker).await?;
    let mut n = 0;
    for ex in blocked {
        match retry::replay(deps, tenant, &ex.id).await {
            Ok(()) => n += 1,
            Err(retry::ReplayError::Port(p)) => return Err(p),
            Err(e) => tracing::warn!(error = %e, "dependent not replayed"),
        }
    }
    Ok(n)
}

/// A record names a project or customer the PSA does not have.
fn unknown_reference(what: &str, r: &SourceRef, field: &str) -> Violation {
    Violation::new(
        "validation.unknown_reference",
        Owner::ProjectOperations,
        format!("{what} {r} does not exist in the PSA"),
    )
    .field(field)
}
