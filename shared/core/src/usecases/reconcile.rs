//! reconcile: control totals per tenant, project, period and currency from both
//! systems, with every difference attributed (held by an exception, in flight)
//! or reported as unexplained; payment status flows back to the PSA.
//!
//! The PSA side is recomputed from the PSA's current records through the same
//! template and rounding that produced the ERP documents, so an exact match is
//! expected; the ledger says which records are held back by exceptions.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::{CanonicalRecord, Domain, TenantId};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::deps::Deps;
use crate::error::{ConnectorError, PortError};
use crate::gate::Patience;
use crate::mapping::{self, Related, StagedLine};
use crate::ports::{Disposition, DomainEvent, ErpDocument, PaymentUpdate};
use crate::posting::DocKind;
use crate::template::{CompiledRule, CompiledSource, Direction, Granularity, Scope, Template};

/// The measures compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Billable hours.
    pub hours: Decimal,
    /// Billable amount of time and expenses (tax-exclusive).
    pub billable: Decimal,
    /// PSA invoices and credit memos (tax-exclusive; credits negative).
    pub invoiced: Decimal,
    /// Tax on those invoices.
    pub tax: Decimal,
    /// Payments applied to those invoices.
    pub paid: Decimal,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.hours += o.hours;
        self.billable += o.billable;
        self.invoiced += o.invoiced;
        self.tax += o.tax;
        self.paid += o.paid;
    }

    fn sub(&mut self, o: &Totals) {
        self.hours -= o.hours;
        self.billable -= o.billable;
        self.invoiced -= o.invoiced;
        self.tax -= o.tax;
        self.paid -= o.paid;
    }

    fn measures(&self) -> [(&'static str, Decimal); 5] {
        [
            ("hours", self.hours),
            ("billable", self.billable),
            ("invoiced", self.invoiced),
            ("tax", self.tax),
            ("paid", self.paid),
        ]
    }
}

/// A reconciliation key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key {
    /// `connectwise:7` for a project, or `customer connectwise:19` for invoices without one.
    pub project: String,
    /// `YYYY-MM`.
    pub period: String,
    pub currency: String,
}

/// A measure that does not agree after attribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub measure: String,
    pub psa: Decimal,
    pub erp: Decimal,
    pub held: Decimal,
    pub in_flight: Decimal,
    /// `psa − erp − held − in_flight`: what nothing explains.
    pub unexplained: Decimal,
}

/// One key's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub key: Key,
    /// Everything in the PSA that should reach the ERP.
    pub psa: Totals,
    pub erp: Totals,
    /// Held back by open exceptions (reason and owner in the exception store).
    pub held: Totals,
    /// Changed since the last sync, not yet posted.
    pub in_flight: Totals,
    pub exceptions: Vec<String>,
    /// Records changed in the PSA since Ferry last synced them, or not yet posted.
    pub in_flight_records: Vec<String>,
    pub mismatches: Vec<Mismatch>,
    /// Tax the ERP added to documents of Ferry's lines by rules Ferry cannot see
    /// (the product's taxes in Tryton): shown, not compared.
    pub erp_tax_unchecked: Decimal,
    /// The ERP documents Ferry wrote for this key, as the ERP holds them now:
    /// status and what has been paid (for billing Ferry summarised, the ERP is the
    /// only system that knows).
    pub documents: Vec<DocumentState>,
}

/// One ERP document as reconciliation found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentState {
    pub doc_key: String,
    pub erp_id: String,
    /// `invoice` or `credit_note`: a credit note's amounts are owed to the customer.
    pub kind: String,
    pub number: Option<String>,
    pub status: String,
    pub currency: String,
    pub total: Decimal,
    pub amount_paid: Decimal,
    pub amount_due: Decimal,
}

impl DocumentState {
    /// +1 for an invoice, −1 for a credit note: what the customer owes moves that way.
    pub fn sign(&self) -> Decimal {
        if self.kind == DocKind::CreditNote.as_str() {
            -Decimal::ONE
        } else {
            Decimal::ONE
        }
    }
}

/// The reconciliation report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub tenant: TenantId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub generated_at: DateTime<Utc>,
    pub template_version: String,
    pub rows: Vec<Row>,
    /// PSA records that should be in the ERP but that Ferry never saw.
    pub missing: Vec<String>,
    /// ERP documents carrying Ferry's reference that no PSA record accounts for.
    pub unaccounted: Vec<String>,
    /// PSA invoices whose payment status was written back in this run.
    pub payments_written_back: usize,
    pub records_compared: usize,
    /// No unexplained mismatch, nothing missing, nothing unaccounted.
    pub clean: bool,
}

impl Report {
    /// Sum of all rows.
    pub fn total(&self, pick: impl Fn(&Row) -> &Totals) -> Totals {
        let mut t = Totals::default();
        for r in &self.rows {
            t.add(pick(r));
        }
        t
    }

    /// Sum of all rows per currency (totals across currencies mean nothing).
    pub fn totals_by_currency(&self, pick: impl Fn(&Row) -> &Totals) -> BTreeMap<String, Totals> {
        let mut out: BTreeMap<String, Totals> = BTreeMap::new();
        for r in &self.rows {
            out.entry(r.key.currency.clone()).or_default().add(pick(r));
        }
        out
    }

    pub fn unexplained(&self) -> usize {
        self.rows.iter().map(|r| r.mismatches.len()).sum::<usize>()
            + self.missing.len()
            + self.unaccounted.len()
    }
}

/// Why reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("unknown tenant {0}")]
    UnknownTenant(TenantId),
    #[error("reading a vendor: {0}")]
    Vendor(#[from] ConnectorError),
    #[error(transparent)]
    Port(#[from] PortError),
}

#[derive(Default)]
struct Acc {
    psa: Totals,
    erp: Totals,
    held: Totals,
    in_flight: Totals,
    /// Some record is held by an exception about its document (not the record).
    held_by_document: bool,
    exceptions: BTreeSet<String>,
    in_flight_records: BTreeSet<String>,
    /// Lines of posted records, and whether their rule summarises them.
    expected_lines: Vec<(StagedLine, bool)>,
    documents: Vec<DocumentState>,
    erp_tax_unchecked: Decimal,
}

fn period(d: NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}

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
    let template = &ctx.template;
    let mut patience = Patience::new(deps.settings.reconcile_budget_wait);
    let mut acc: BTreeMap<Key, Acc> = BTreeMap::new();
    let mut missing = Vec::new();
    // Exception id → whether it is about a document rather than a record.
    let mut about_document: BTreeMap<String, bool> = BTreeMap::new();
    let mut compared = 0usize;
    let mut reader = RelatedReader {
        deps,
        ctx: &ctx,
        tenant,
        cache: HashMap::new(),
    };
    // PSA invoice id → (key, PSA amount paid) for payment write-back.
    let mut psa_invoices: HashMap<String, (Key, Decimal, ferry_canon::Invoice)> = HashMap::new();

    for domain in [
        Domain::TimeEntries,
        Domain::Expenses,
        Domain::BillingEvents,
        Domain::Invoices,
        Domain::CreditMemos,
    ] {
        if template.direction(domain) != Direction::PsaToErp {
            continue;
        }
        let Some(rule) = template.rule(domain) else {
            continue;
        };
        // The PSA is asked by its own (UTC) dates; a day more on each side
        // takes in every record whose local date is in the range, and those
        // whose local date is outside it are left out below.
        let (wide_from, wide_to) = (from.pred_opt().unwrap_or(from), to.succ_opt().unwrap_or(to));
        let records = patience
            .call("reading PSA records", || {
                ctx.psa.list_period(domain, wide_from, wide_to)
            })
            .await?;
        for mut rec in records {
            let source_key = format!("{}/{}:{}", rec.domain, ctx.psa.system(), rec.id);
            let mapped = ctx.canonical(&rec);
            // The raw payload is not needed once mapped; free it as we go.
            rec.raw = serde_json::Value::Null;
            let Ok(canon) = mapped else {
                // Unreadable in the PSA: the ledger says whether an exception holds it.
                note_unreadable(deps, tenant, &source_key, &mut missing).await?;
                continue;
            };
            if canon.meta().deleted
                || mapping::accounting_date(&canon).is_some_and(|d| d < from || d > to)
            {
                continue;
            }
            let related = reader.related(&canon, &mut patience).await?;
            let scope = related.scope(&canon);
            if matches!(mapping::gate(rule, &canon, &scope), Ok(Some(_))) {
                continue;
            }
            compared += 1;
            let (key, contribution) = match psa_side(&canon, &related, &scope, template, rule) {
                Some(kc) => kc,
                None => continue,
            };
            let entry = deps.ledger.get(tenant, &source_key).await?;
            let a = acc.entry(key.clone()).or_default();
            a.psa.add(&contribution);
            let Some(entry) = entry else {
                missing.push(format!(
                    "{domain} {source_key} is in the PSA but Ferry never saw it"
                ));
                continue;
            };
            // Payments flow from the ERP to the PSA: the PSA's paid amount is
            // compared live, never "in flight" (a write-back changes the PSA
            // record's version without anything for the ERP to do).
            let live_paid = contribution.paid;
            // Changed since Ferry last synced it: the ERP should still reflect the synced
            // version; the difference is in flight.
            let (canon, contribution) = if entry.version >= rec.version {
                (canon, contribution)
            } else {
                let synced = entry
                    .canonical
                    .as_deref()
                    .and_then(|c| serde_json::from_str::<CanonicalRecord>(c).ok())
                    .and_then(|old| {
                        psa_side(&old, &related, &related.scope(&old), template, rule)
                            .map(|(_, t)| (old, t))
                    });
                match synced {
                    Some((old, old_contribution)) => {
                        let mut change = contribution.clone();
                        change.sub(&old_contribution);
                        change.paid = Decimal::ZERO;
                        if change != Totals::default() {
                            a.in_flight_records.insert(source_key.clone());
                            a.in_flight.add(&change);
                        }
                        (old, old_contribution)
                    }
                    None => {
                        // Nothing synced to compare with: all of it is in flight.
                        a.in_flight_records.insert(source_key.clone());
                        a.in_flight.add(&contribution);
                        continue;
                    }
                }
            };
            match entry.disposition {
                Disposition::Exception { exception_id, .. } => {
                    // A record refused before posting never reached the ERP: all of it
                    // is held. One whose document the ERP refused (finance approved
                    // it, an account was archived) may be in the ERP's older copy:
                    // what its document lacks is held, whatever that comes to.
                    // Many records share one document's exception: read each once.
                    let document = match about_document.get(&exception_id) {
                        Some(d) => *d,
                        None => {
                            let d = deps
                                .exceptions
                                .get(tenant, &exception_id)
                                .await?
                                .is_some_and(|e| e.stage == "post");
                            about_document.insert(exception_id.clone(), d);
                            d
                        }
                    };
                    if document {
                        a.held_by_document = true;
                    } else {
                        a.held.add(&contribution);
                    }
                    a.exceptions.insert(exception_id);
                }
                Disposition::Posted { .. } => match &canon {
                    CanonicalRecord::Invoices(inv) | CanonicalRecord::CreditMemos(inv) => {
                        psa_invoices.insert(rec.id.clone(), (key.clone(), live_paid, inv.clone()));
                    }
                    _ => match mapping::line(template, rule, &canon, &related, &scope) {
                        Ok(l) => a
                            .expected_lines
                            .push((l, rule.spec.granularity == Granularity::Summary)),
                        Err(v) => missing.push(format!(
                            "{domain} {source_key} is posted but no longer maps: {}",
                            v.message
                        )),
                    },
                },
                Disposition::Skipped { reason } => missing.push(format!(
                    "{domain} {source_key} passes the template today but was skipped: {reason}"
                )),
                Disposition::Pending | Disposition::Queued { .. } => {
                    a.in_flight_records.insert(source_key.clone());
                    a.in_flight.add(&contribution);
                }
            }
        }
    }

    // Replace exact PSA amounts of posted time and expenses with the amounts the
    // template's summarising and rounding produce, so the comparison is exact;
    // and expect the tax the ERP adds to those documents by its own rates.
    let rounding = template.spec.defaults.rounding;
    let tax_rules = patience
        .call("reading the ERP's tax rates", || ctx.erp.tax_rules())
        .await?;
    for (key, a) in acc.iter_mut() {
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
        let (lines, subtotal) = mapping::summarise_lines(template, &summarised, currency, to);
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
                Err(why) => missing.push(format!(
                    "{} {} {}: the tax the ERP adds cannot be checked: {why}",
                    key.project, key.period, key.currency
                )),
            }
        }
    }

    // The ERP side.
    let time_codes = time_line_codes(template);
    let mut unaccounted = Vec::new();
    let mut erp_docs: HashMap<String, (Key, DocKind)> = HashMap::new();
    let prefix = format!("{}-", template.spec.defaults.reference_prefix);
    for kind in [DocKind::Invoice, DocKind::CreditNote] {
        let docs = patience
            .call("reading ERP documents", || {
                ctx.erp.list_documents(kind, from, to)
            })
            .await?;
        for doc in docs {
            if matches!(doc.status.as_str(), "DELETED" | "VOIDED") {
                continue;
            }
            let Some(entry) = deps.idmap.find_by_erp_id(tenant, &doc.erp_id).await? else {
                if doc
                    .reference
                    .as_deref()
                    .is_some_and(|r| r.starts_with(&prefix))
                {
                    unaccounted.push(format!(
                        "{} {} ({}) carries Ferry's reference but Ferry has no record of it",
                        kind.as_str(),
                        doc.number.clone().unwrap_or_default(),
                        doc.erp_id
                    ));
                }
                continue;
            };
            let Some(key) = erp_key(deps, tenant, &entry.doc_key, &doc).await? else {
                unaccounted.push(format!("{} maps to no reconciliation key", entry.doc_key));
                continue;
            };
            let a = acc.entry(key.clone()).or_default();
            let checked = tax_rules.is_some();
            add_erp(a, &entry.doc_key, &doc, &time_codes, checked);
            a.documents.push(DocumentState {
                doc_key: entry.doc_key.clone(),
                erp_id: doc.erp_id.clone(),
                kind: kind.as_str().to_string(),
                number: doc.number.clone(),
                status: doc.status.clone(),
                currency: key.currency.clone(),
                total: doc.total,
                amount_paid: doc.amount_paid,
                amount_due: doc.amount_due,
            });
            erp_docs.insert(doc.erp_id.clone(), (key, kind));
        }
    }

    // Payments: sum what the ERP applied to PSA invoices, and write status back.
    let mut payments_written_back = 0;
    let mut paid_by_doc: HashMap<String, (Decimal, Option<NaiveDate>)> = HashMap::new();
    let payments = patience
        .call("reading ERP payments", || {
            ctx.erp.list_payments(from, chrono::NaiveDate::MAX)
        })
        .await?;
    for p in payments {
        if p.status == "DELETED" {
            continue;
        }
        let e = paid_by_doc.entry(p.invoice_erp_id.clone()).or_default();
        e.0 += p.amount.amount;
        e.1 = e.1.max(Some(p.date));
    }
    for (psa_id, (key, psa_paid, inv)) in &psa_invoices {
        let doc_key = format!(
            "{}/{}",
            if inv.kind == ferry_canon::InvoiceKind::CreditMemo {
                Domain::CreditMemos
            } else {
                Domain::Invoices
            },
            inv.meta.source.key()
        );
        let Some(entry) = deps.idmap.get(tenant, &doc_key).await? else {
            continue;
        };
        let Some(erp_id) = entry.erp_id else { continue };
        let (erp_paid, paid_on) = paid_by_doc.get(&erp_id).cloned().unwrap_or_default();
        let a = acc.entry(key.clone()).or_default();
        a.erp.paid += erp_paid;
        let mut psa_now = *psa_paid;
        if erp_paid != *psa_paid {
            let update = PaymentUpdate {
                amount_paid: ferry_canon::Money::new(erp_paid, inv.currency),
                amount_due: ferry_canon::Money::new(inv.total.amount - erp_paid, inv.currency),
                paid_on,
                erp_reference: erp_id.clone(),
            };
            match patience
                .call("writing payment status to the PSA", || {
                    ctx.psa.apply_payment(psa_id, &update)
                })
                .await
            {
                Ok(()) => {
                    payments_written_back += 1;
                    psa_now = erp_paid;
                }
                Err(e) => {
                    tracing::warn!(invoice = %psa_id, error = %e, "payment write-back failed")
                }
            }
        }
        a.psa.paid += psa_now - *psa_paid;
    }

    let mut rows = Vec::new();
    for (key, mut a) in acc {
        let mut mismatches = Vec::new();
        let psa = a.psa.measures();
        let erp = a.erp.measures();
        let fly = a.in_flight.measures();
        if a.held_by_document {
            // The document's exception holds whatever the ERP's copy lacks
            // (payments excepted: they are the ERP's, and must agree anyway).
            let (p, e, h, f) = (&a.psa, &a.erp, &a.held, &a.in_flight);
            let by_document = Totals {
                hours: p.hours - e.hours - h.hours - f.hours,
                billable: p.billable - e.billable - h.billable - f.billable,
                invoiced: p.invoiced - e.invoiced - h.invoiced - f.invoiced,
                tax: p.tax - e.tax - h.tax - f.tax,
                paid: Decimal::ZERO,
            };
            a.held.add(&by_document);
        }
        let held = a.held.measures();
        for i in 0..psa.len() {
            let unexplained = psa[i].1 - erp[i].1 - held[i].1 - fly[i].1;
            if !unexplained.is_zero() {
                mismatches.push(Mismatch {
                    measure: psa[i].0.to_string(),
                    psa: psa[i].1,
                    erp: erp[i].1,
                    held: held[i].1,
                    in_flight: fly[i].1,
                    unexplained,
                });
            }
        }
        rows.push(Row {
            key,
            psa: a.psa,
            erp: a.erp,
            held: a.held,
            in_flight: a.in_flight,
            exceptions: a.exceptions.into_iter().collect(),
            in_flight_records: a.in_flight_records.into_iter().collect(),
            mismatches,
            erp_tax_unchecked: a.erp_tax_unchecked,
            documents: a.documents,
        });
    }
    let now = deps.clock.now();
    let mut report = Report {
        tenant: tenant.clone(),
        from,
        to,
        generated_at: now,
        template_version: template.version.clone(),
        rows,
        missing,
        unaccounted,
        payments_written_back,
        records_compared: compared,
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
    if let Err(e) = deps
        .events
        .publish(vec![DomainEvent::new(kind, tenant, now, detail)])
        .await
    {
        tracing::warn!(error = %e, "could not publish reconciliation event");
    }
    Ok(report)
}

async fn note_unreadable(
    deps: &Deps,
    tenant: &TenantId,
    source_key: &str,
    missing: &mut Vec<String>,
) -> Result<(), PortError> {
    match deps
        .ledger
        .get(tenant, source_key)
        .await?
        .map(|e| e.disposition)
    {
        Some(Disposition::Exception { .. }) => {}
        _ => missing.push(format!("{source_key} cannot be read and has no exception")),
    }
    Ok(())
}

/// The key and PSA-side contribution of one record.
/// The project part of a record's reconciliation key.
fn project_key(canon: &CanonicalRecord) -> Option<String> {
    Some(match canon {
        CanonicalRecord::TimeEntries(e) => e.project.as_ref()?.key(),
        CanonicalRecord::Expenses(e) => e.project.as_ref()?.key(),
        CanonicalRecord::BillingEvents(b) => b.project.key(),
        CanonicalRecord::Invoices(i) | CanonicalRecord::CreditMemos(i) => match &i.project {
            Some(p) => p.key(),
            None => format!("customer {}", i.account.key()),
        },
        _ => return None,
    })
}

/// What a PSA record contributes, under its key. Time is priced as posting
/// prices it (the entry's own rate or the template's, in the currency it is
/// billed in); a record posting cannot price (an unmapped rate, a rate out of
/// bounds) still counts its hours, and its amount is what its exception holds.
fn psa_side(
    canon: &CanonicalRecord,
    related: &Related,
    scope: &Scope,
    template: &Template,
    rule: &CompiledRule,
) -> Option<(Key, Totals)> {
    let mut t = Totals::default();
    let project = project_key(canon)?;
    let customer_or = |c: ferry_canon::Currency| {
        related
            .account
            .as_ref()
            .and_then(|a| a.currency)
            .unwrap_or(c)
    };
    let (date, currency) = match canon {
        CanonicalRecord::TimeEntries(e) => {
            t.hours = e.hours;
            match mapping::time_rate(template, rule, e, related, scope) {
                Ok(rate) => {
                    t.billable = rate.amount * e.hours;
                    (e.date, rate.currency)
                }
                Err(_) => (
                    e.date,
                    customer_or(e.bill_rate.map_or(template.currency, |r| r.currency)),
                ),
            }
        }
        CanonicalRecord::Expenses(e) => {
            t.billable = e.amount.amount;
            (
                e.date,
                mapping::billing_currency(template, e.amount.currency, related),
            )
        }
        CanonicalRecord::BillingEvents(b) => {
            t.billable = b.amount.amount;
            (
                b.date,
                mapping::billing_currency(template, b.amount.currency, related),
            )
        }
        CanonicalRecord::Invoices(i) | CanonicalRecord::CreditMemos(i) => {
            // Amounts read as the document does; a credit memo takes away.
            let sign = if i.kind == ferry_canon::InvoiceKind::CreditMemo {
                -Decimal::ONE
            } else {
                Decimal::ONE
            };
            t.invoiced = sign * i.subtotal.amount;
            t.tax = sign * i.tax_total.amount;
            t.paid = i.amount_paid.map(|m| m.amount).unwrap_or_default();
            (i.issue_date, i.currency)
        }
        _ => return None,
    };
    Some((
        Key {
            project,
            period: period(date),
            currency: currency.code().to_string(),
        },
        t,
    ))
}

/// Reads the project and account a record refers to: from the ledger where
/// Ferry holds them, else from the PSA; each once per run.
struct RelatedReader<'a> {
    deps: &'a Deps,
    ctx: &'a crate::deps::TenantContext,
    tenant: &'a TenantId,
    cache: HashMap<String, Option<CanonicalRecord>>,
}

impl RelatedReader<'_> {
    async fn related(
        &mut self,
        canon: &CanonicalRecord,
        patience: &mut Patience,
    ) -> Result<Related, ReconcileError> {
        let mut r = Related::default();
        if let Some(p) = mapping::project_of(canon)
            && let Some(CanonicalRecord::Projects(project)) =
                self.load(Domain::Projects, p, patience).await?
        {
            r.project = Some(project);
        }
        if let Some(a) = mapping::billed_account(canon, &r)
            && let Some(CanonicalRecord::Customers(account)) =
                self.load(Domain::Customers, &a, patience).await?
        {
            r.account = Some(account);
        }
        Ok(r)
    }

    async fn load(
        &mut self,
        domain: Domain,
        source: &ferry_canon::SourceRef,
        patience: &mut Patience,
    ) -> Result<Option<CanonicalRecord>, ReconcileError> {
        let key = crate::messages::record_key(domain, source);
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.clone());
        }
        let from_ledger = self
            .deps
            .ledger
            .get(self.tenant, &key)
            .await?
            .and_then(|e| e.canonical)
            .and_then(|c| serde_json::from_str::<CanonicalRecord>(&c).ok());
        let rec = match from_ledger {
            Some(r) => Some(r),
            None => match patience
                .call("reading a PSA record", || {
                    self.ctx.psa.fetch(domain, &source.id)
                })
                .await?
            {
                Some(src) => self.ctx.canonical(&src).ok(),
                None => None,
            },
        };
        self.cache.insert(key, rec.clone());
        Ok(rec)
    }
}

/// Item and account codes that mark an ERP line as time (from the time rule).
fn time_line_codes(template: &Template) -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    let Some(rule) = template.rule(Domain::TimeEntries) else {
        return codes;
    };
    let mut add = |src: &CompiledSource| {
        codes.extend(src.value.clone());
        codes.extend(src.default.clone());
        if let Some(m) = src.map.as_deref().and_then(|m| template.value_map(m)) {
            codes.extend(m.values().cloned());
        }
    };
    if let Some(s) = &rule.item {
        add(s);
    } else if let Some(s) = &rule.account {
        add(s);
    }
    codes
}

async fn erp_key(
    deps: &Deps,
    tenant: &TenantId,
    doc_key: &str,
    doc: &ErpDocument,
) -> Result<Option<Key>, PortError> {
    let currency = doc.currency.code().to_string();
    if let Some(rest) = doc_key.strip_prefix("summary/") {
        // summary/<document>/<project key>/<YYYY-MM>
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() >= 3 {
            return Ok(Some(Key {
                project: parts[1].to_string(),
                period: parts[2].to_string(),
                currency,
            }));
        }
        return Ok(None);
    }
    // A per-record document's key is its source record's key.
    if crate::messages::parse_record_key(doc_key).is_none() {
        return Ok(None);
    }
    let Some(entry) = deps.ledger.get(tenant, doc_key).await? else {
        return Ok(None);
    };
    let Some(canon) = entry
        .canonical
        .and_then(|c| serde_json::from_str::<CanonicalRecord>(&c).ok())
    else {
        return Ok(None);
    };
    Ok(project_key(&canon).map(|project| Key {
        project,
        period: period(doc.date),
        currency,
    }))
}

/// What one ERP document Ferry wrote contributes to its key's ERP side. The
/// tax the ERP added to a document of Ferry's lines is compared where the ERP
/// says how it taxes (`tax_checked`), and otherwise only shown.
fn add_erp(
    a: &mut Acc,
    doc_key: &str,
    doc: &ErpDocument,
    time_codes: &BTreeSet<String>,
    tax_checked: bool,
) {
    let t = &mut a.erp;
    let sign = if doc.kind == DocKind::CreditNote {
        -Decimal::ONE
    } else {
        Decimal::ONE
    };
    let is_psa_invoice = doc_key.starts_with("invoices/") || doc_key.starts_with("credit_memos/");
    if is_psa_invoice {
        t.invoiced += sign * doc.subtotal;
        t.tax += sign * doc.tax;
        return;
    }
    for l in &doc.lines {
        let code = l.item_code.as_ref().or(l.account_code.as_ref());
        if code.is_some_and(|c| time_codes.contains(c)) {
            t.hours += l.quantity;
        }
    }
    t.billable += doc.subtotal;
    if tax_checked {
        t.tax += doc.tax;
    } else {
        a.erp_tax_unchecked += doc.tax;
    }
}
