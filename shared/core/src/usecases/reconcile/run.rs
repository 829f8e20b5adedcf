//! One reconciliation, in the order it reads: the PSA's records (each
//! attributed to where it stands in Ferry), the amounts the template turns
//! them into, the ERP's documents and timesheet lines, the payments (written
//! back to the PSA where they differ), then the report and its event.
//!
//! Size: one reconciliation run's phases on one `Run` (read both sides,
//! attribute, report); splitting the phases would split the state they share.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use ferry_canon::{CanonicalRecord, Domain, TenantId};
use rust_decimal::Decimal;

use super::*;
use crate::deps::TenantContext;
use crate::keys::{DocKey, DocOf, RecordKey};
use crate::ports::{SourceRecord, TaxRules};

/// Reconciles `[from, to]` for one tenant.
pub async fn run(
    deps: &Deps,
    tenant: &TenantId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Report, ReconcileError> {
    let ctx = deps
        .tenants
        .context(tenant)
        .await?
        .ok_or_else(|| ReconcileError::UnknownTenant(tenant.clone()))?;
    let mut r = Run {
        deps,
        tenant,
        from,
        to,
        patience: Patience::new(deps.settings.reconcile_budget_wait),
        acc: BTreeMap::new(),
        missing: Vec::new(),
        unaccounted: Vec::new(),
        about_document: BTreeMap::new(),
        compared: 0,
        keys_by_source: HashMap::new(),
        psa_invoices: HashMap::new(),
        ctx,
    };
    r.psa().await?;
    let tax_rules = r.expected_amounts().await?;
    r.erp_documents(tax_rules.is_some()).await?;
    r.erp_timesheets().await?;
    let written_back = r.payments().await?;
    Ok(r.report(written_back).await)
}

/// The state of one reconciliation as it reads both systems.
struct Run<'a> {
    deps: &'a Deps,
    tenant: &'a TenantId,
    ctx: Arc<TenantContext>,
    from: NaiveDate,
    to: NaiveDate,
    patience: Patience,
    acc: BTreeMap<Key, Acc>,
    missing: Vec<String>,
    unaccounted: Vec<String>,
    /// Exception id → whether it is about a document rather than a record.
    about_document: BTreeMap<String, bool>,
    compared: usize,
    /// Each PSA record's key, for the ERP records that are about one record.
    keys_by_source: HashMap<RecordKey, Key>,
    /// PSA invoice id → (key, PSA amount paid) for payment write-back.
    psa_invoices: HashMap<String, (Key, Decimal, ferry_canon::Invoice)>,
}

impl Run<'_> {
    /// Every PSA record the template posts, dated in the range.
    async fn psa(&mut self) -> Result<(), ReconcileError> {
        let ctx = self.ctx.clone();
        let mut reader = RelatedReader::new(self.deps, &ctx);
        for domain in [
            Domain::TimeEntries,
            Domain::Expenses,
            Domain::BillingEvents,
            Domain::Invoices,
            Domain::CreditMemos,
        ] {
            if ctx.template.direction(domain) != Direction::PsaToErp {
                continue;
            }
            let Some(rule) = ctx.template.rule(domain) else {
                continue;
            };
            // The PSA is asked by its own (UTC) dates; a day more on each side
            // takes in every record whose local date is in the range, and those
            // whose local date is outside it are left out below.
            let (from, to) = (self.from, self.to);
            let (wide_from, wide_to) =
                (from.pred_opt().unwrap_or(from), to.succ_opt().unwrap_or(to));
            let records = self
                .patience
                .call("reading PSA records", || {
                    ctx.psa.list_period(domain, wide_from, wide_to)
                })
                .await?;
            for rec in records {
                self.psa_record(&ctx, &mut reader, domain, rule, rec)
                    .await?;
            }
        }
        Ok(())
    }

    /// One PSA record: its key and contribution, and where it stands in Ferry.
    async fn psa_record(
        &mut self,
        ctx: &TenantContext,
        reader: &mut RelatedReader<'_>,
        domain: Domain,
        rule: &CompiledRule,
        mut rec: SourceRecord,
    ) -> Result<(), ReconcileError> {
        let template = &ctx.template;
        let source_key = RecordKey::of(rec.domain, &ctx.psa.system(), &rec.id);
        let mapped = ctx.canonical(&rec);
        // The raw payload is not needed once mapped; free it as we go.
        rec.raw = serde_json::Value::Null;
        let Ok(canon) = mapped else {
            // Unreadable in the PSA: the ledger says whether an exception holds it.
            return Ok(
                note_unreadable(self.deps, self.tenant, &source_key, &mut self.missing).await?,
            );
        };
        if canon.meta().deleted
            || mapping::accounting_date(&canon).is_some_and(|d| d < self.from || d > self.to)
        {
            return Ok(());
        }
        let related = reader.related(&canon, &mut self.patience).await?;
        let scope = related.scope(&canon);
        if matches!(mapping::gate(rule, &canon, &scope), Ok(Some(_))) {
            return Ok(());
        }
        self.compared += 1;
        let Some((key, contribution)) = psa_side(&canon, &related, &scope, template, rule) else {
            return Ok(());
        };
        self.keys_by_source.insert(source_key.clone(), key.clone());
        let Some(entry) = self.deps.ledger.get(self.tenant, &source_key).await? else {
            self.acc.entry(key).or_default().psa.add(&contribution);
            self.missing.push(format!(
                "{domain} {source_key} is in the PSA but Ferry never saw it"
            ));
            return Ok(());
        };
        // Payments flow from the ERP to the PSA: the PSA's paid amount is
        // compared live, never "in flight" (a write-back changes the PSA
        // record's version without anything for the ERP to do).
        let live_paid = contribution.paid;
        // Changed since Ferry last synced it: the ERP should still reflect the
        // synced version, read from the ledger.
        let synced = if entry.version >= rec.version {
            Synced::Current
        } else {
            match entry
                .canonical
                .as_deref()
                .and_then(|c| serde_json::from_str::<CanonicalRecord>(c).ok())
                .and_then(|old| {
                    psa_side(&old, &related, &related.scope(&old), template, rule)
                        .map(|(_, t)| (old, t))
                }) {
                Some((old, t)) => Synced::Older(Box::new(old), t),
                None => Synced::Unreadable,
            }
        };
        let standing = self
            .standing(domain, &source_key, &entry.disposition)
            .await?;
        let canon = match &synced {
            Synced::Older(old, _) => (**old).clone(),
            _ => canon,
        };
        let unreadable = matches!(synced, Synced::Unreadable);
        let posted = standing == Standing::Posted;
        let a = self.acc.entry(key.clone()).or_default();
        a.attribute(&source_key, &contribution, synced.totals(), standing);
        if unreadable || !posted {
            return Ok(());
        }
        // Posted: what the ERP should hold, line by line.
        match &canon {
            CanonicalRecord::Invoices(inv) | CanonicalRecord::CreditMemos(inv) => {
                self.psa_invoices
                    .insert(rec.id.clone(), (key, live_paid, inv.clone()));
            }
            _ => match mapping::line(template, rule, &canon, &related, &scope) {
                Ok(l) => a
                    .expected_lines
                    .push((l, rule.spec.granularity == Granularity::Summary)),
                Err(v) => self.missing.push(format!(
                    "{domain} {source_key} is posted but no longer maps: {}",
                    v.message
                )),
            },
        }
        Ok(())
    }

    /// Where a record stands in Ferry, from its ledger disposition.
    async fn standing<'d>(
        &mut self,
        domain: Domain,
        source_key: &str,
        disposition: &'d Disposition,
    ) -> Result<Standing<'d>, PortError> {
        Ok(match disposition {
            Disposition::Exception { exception_id, .. } => {
                // Many records share one document's exception: read each once.
                let document = match self.about_document.get(exception_id) {
                    Some(d) => *d,
                    None => {
                        let d = self
                            .deps
                            .exceptions
                            .get(self.tenant, exception_id)
                            .await?
                            .is_some_and(|e| e.stage == "post");
                        self.about_document.insert(exception_id.clone(), d);
                        d
                    }
                };
                if document {
                    Standing::HeldByDocument(exception_id)
                } else {
                    Standing::HeldBeforePosting(exception_id)
                }
            }
            Disposition::Posted { .. } => Standing::Posted,
            Disposition::Skipped { reason } => {
                self.missing.push(format!(
                    "{domain} {source_key} passes the template today but was skipped: {reason}"
                ));
                Standing::Skipped
            }
            Disposition::Pending | Disposition::Queued { .. } => Standing::NotYetPosted,
        })
    }

    /// Replaces exact PSA amounts of posted time and expenses with the amounts
    /// the template's summarising and rounding produce, so the comparison is
    /// exact; and expects the tax the ERP adds to those documents by its own
    /// rates. Returns those rates (`None`: the ERP decides tax itself).
    async fn expected_amounts(&mut self) -> Result<Option<TaxRules>, ReconcileError> {
        let ctx = self.ctx.clone();
        let template = &ctx.template;
        let rounding = template.spec.defaults.rounding;
        let tax_rules = self
            .patience
            .call("reading the ERP's tax rates", || ctx.erp.tax_rules())
            .await?;
        for (key, a) in self.acc.iter_mut() {
            if a.expected_lines.is_empty() {
                continue;
            }
            let Ok(currency) = ferry_canon::Currency::parse(&key.currency) else {
                continue;
            };
            let dp = currency.minor_units();
            let mut exact = Decimal::ZERO;
            let mut rounded = Decimal::ZERO;
            let mut summarised = Vec::new();
            // Each document's lines as (tax type, amount): the summary, and one per record.
            let mut documents: Vec<Vec<(Option<String>, Decimal)>> = Vec::new();
            for (l, summary) in &a.expected_lines {
                exact += l.quantity * l.unit_amount;
                if *summary {
                    summarised.push(l.clone());
                } else {
                    let amount = rounding.round(l.quantity * l.unit_amount, dp);
                    rounded += amount;
                    documents.push(vec![(l.tax_type.clone(), amount)]);
                }
            }
            let (lines, subtotal) =
                mapping::summarise_lines(template, &summarised, currency, self.to);
            rounded += subtotal;
            documents.push(
                lines
                    .into_iter()
                    .map(|l| (l.tax_type, l.line_amount))
                    .collect(),
            );
            a.psa.billable = a.psa.billable - exact + rounded;
            if let Some(rules) = &tax_rules {
                match documents
                    .iter()
                    .map(|d| mapping::expected_tax(d, rules, currency))
                    .sum::<Result<Decimal, String>>()
                {
                    Ok(tax) => a.psa.tax += tax,
                    Err(why) => self.missing.push(format!(
                        "{} {} {}: the tax the ERP adds cannot be checked: {why}",
                        key.project, key.period, key.currency
                    )),
                }
            }
        }
        Ok(tax_rules)
    }

    /// Ferry's reference prefix, as it starts every reference Ferry writes.
    fn prefix(&self) -> String {
        format!("{}-", self.ctx.references.prefix())
    }

    /// The ERP's invoices and credit notes dated in the range.
    async fn erp_documents(&mut self, tax_checked: bool) -> Result<(), ReconcileError> {
        let ctx = self.ctx.clone();
        let time_codes = time_line_codes(&ctx.template);
        let prefix = self.prefix();
        let (from, to) = (self.from, self.to);
        for kind in [DocKind::Invoice, DocKind::CreditNote] {
            let docs = self
                .patience
                .call("reading ERP documents", || {
                    ctx.erp.list_documents(kind, from, to)
                })
                .await?;
            for doc in docs {
                if doc.state.is_gone() {
                    continue;
                }
                let Some(entry) = self
                    .deps
                    .idmap
                    .find_by_erp_id(self.tenant, &doc.erp_id)
                    .await?
                else {
                    if doc
                        .reference
                        .as_deref()
                        .is_some_and(|r| r.starts_with(&prefix))
                    {
                        self.unaccounted.push(format!(
                            "{} {} ({}) carries Ferry's reference but Ferry has no record of it",
                            kind.as_str(),
                            doc.number.clone().unwrap_or_default(),
                            doc.erp_id
                        ));
                    }
                    continue;
                };
                let Some(key) = erp_key(self.deps, self.tenant, &entry.doc_key, &doc).await? else {
                    self.unaccounted
                        .push(format!("{} maps to no reconciliation key", entry.doc_key));
                    continue;
                };
                let a = self.acc.entry(key.clone()).or_default();
                add_erp(a, &entry.doc_key, &doc, &time_codes, tax_checked);
                a.documents.push(DocumentState {
                    doc_key: entry.doc_key.clone(),
                    erp_id: doc.erp_id.clone(),
                    kind: kind.as_str().to_string(),
                    number: doc.number.clone(),
                    state: doc.state,
                    currency: key.currency.clone(),
                    total: doc.total,
                    amount_paid: doc.amount_paid,
                    amount_due: doc.amount_due,
                });
            }
        }
        Ok(())
    }

    /// Timesheet lines, where the template keeps them in the ERP: each is
    /// about one time entry, and counts under that entry's key.
    async fn erp_timesheets(&mut self) -> Result<(), ReconcileError> {
        let ctx = self.ctx.clone();
        if !ctx
            .template
            .rule(Domain::TimeEntries)
            .is_some_and(|r| r.spec.timesheets)
        {
            return Ok(());
        }
        let prefix = self.prefix();
        let (from, to) = (self.from, self.to);
        let lines = self
            .patience
            .call("reading ERP timesheet lines", || {
                ctx.erp.list_timesheets(from, to)
            })
            .await?;
        for l in lines {
            let Some(entry) = self
                .deps
                .idmap
                .find_by_erp_id(self.tenant, &l.erp_id)
                .await?
            else {
                if l.reference
                    .as_deref()
                    .is_some_and(|r| r.starts_with(&prefix))
                {
                    self.unaccounted.push(format!(
                        "timesheet line {} carries Ferry's reference but Ferry has no record of it",
                        l.erp_id
                    ));
                }
                continue;
            };
            let source = DocKey::parse(&entry.doc_key).and_then(|k| match k.of() {
                DocOf::Timesheet(entry_key) => Some(entry_key),
                _ => None,
            });
            let source_name = source
                .as_ref()
                .map_or(entry.doc_key.as_str(), |s| s.as_str());
            match source.as_ref().and_then(|s| self.keys_by_source.get(s)) {
                Some(key) => {
                    self.acc.entry(key.clone()).or_default().erp.timesheet_hours += l.hours;
                }
                None => self.unaccounted.push(format!(
                    "timesheet line {} ({} h on {}) is for {source_name}, which the PSA does not bill in this range",
                    l.erp_id, l.hours, l.date
                )),
            }
        }
        Ok(())
    }

    /// Sums what the ERP applied to PSA invoices, and writes status back
    /// where the PSA differs. Returns how many PSA invoices were corrected.
    async fn payments(&mut self) -> Result<usize, ReconcileError> {
        let ctx = self.ctx.clone();
        let mut written_back = 0;
        let mut paid_by_doc: HashMap<String, (Decimal, Option<NaiveDate>)> = HashMap::new();
        let from = self.from;
        let payments = self
            .patience
            .call("reading ERP payments", || ctx.erp.list_payments(from, None))
            .await?;
        for p in payments {
            if p.state.is_gone() {
                continue;
            }
            let e = paid_by_doc.entry(p.invoice_erp_id.clone()).or_default();
            e.0 += p.amount.amount;
            e.1 = e.1.max(Some(p.date));
        }
        let invoices = std::mem::take(&mut self.psa_invoices);
        for (psa_id, (key, psa_paid, inv)) in &invoices {
            let doc_key = format!(
                "{}/{}",
                if inv.kind == ferry_canon::InvoiceKind::CreditMemo {
                    Domain::CreditMemos
                } else {
                    Domain::Invoices
                },
                inv.meta.source.key()
            );
            let Some(entry) = self.deps.idmap.get(self.tenant, &doc_key).await? else {
                continue;
            };
            let Some(erp_id) = entry.erp_id else { continue };
            let (erp_paid, paid_on) = paid_by_doc.get(&erp_id).cloned().unwrap_or_default();
            self.acc.entry(key.clone()).or_default().erp.paid += erp_paid;
            let mut psa_now = *psa_paid;
            if erp_paid != *psa_paid {
                let update = PaymentUpdate {
                    amount_paid: ferry_canon::Money::new(erp_paid, inv.currency),
                    amount_due: ferry_canon::Money::new(inv.total.amount - erp_paid, inv.currency),
                    paid_on,
                    erp_reference: erp_id.clone(),
                };
                match self
                    .patience
                    .call("writing payment status to the PSA", || {
                        ctx.psa.apply_payment(psa_id, &update)
                    })
                    .await
                {
                    Ok(()) => {
                        written_back += 1;
                        psa_now = erp_paid;
                    }
                    Err(e) => {
                        tracing::warn!(invoice = %psa_id, error = %e, "payment write-back failed")
                    }
                }
            }
            self.acc.entry(key.clone()).or_default().psa.paid += psa_now - *psa_paid;
        }
        Ok(written_back)
    }

    /// The report, and the event that says how it ended.
    async fn report(self, payments_written_back: usize) -> Report {
        let rows: Vec<Row> = self
            .acc
            .into_iter()
            .map(|(key, a)| a.into_row(key))
            .collect();
        let now = self.deps.clock.now();
        let (from, to) = (self.from, self.to);
        let mut report = Report {
            tenant: self.tenant.clone(),
            from,
            to,
            generated_at: now,
            template_version: self.ctx.template.version.clone(),
            rows,
            missing: self.missing,
            unaccounted: self.unaccounted,
            payments_written_back,
            records_compared: self.compared,
            clean: false,
        };
        report.clean = report.unexplained() == 0;
        let detail = serde_json::json!({
            "from": from, "to": to, "rows": report.rows.len(),
            "unexplained": report.unexplained(), "payments_written_back": payments_written_back,
        });
        let kind = if report.clean {
            DomainEvent::RECONCILIATION_FINISHED
        } else {
            DomainEvent::RECONCILIATION_MISMATCHED
        };
        if let Err(e) = self
            .deps
            .events
            .publish(vec![DomainEvent::new(kind, self.tenant, now, detail)])
            .await
        {
            tracing::warn!(error = %e, "could not publish reconciliation event");
        }
        // Kept for people to read and sign off; the caller has the report either way.
        if let Err(e) = self.deps.reports.put(&report).await {
            tracing::warn!(error = %e, "could not keep the reconciliation report");
        }
        report
    }
}
