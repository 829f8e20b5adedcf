//! Canonical records → posting documents, as the tenant's template says.
//! Pure functions: no I/O. Every refusal is a [`Violation`] naming the field,
//! the rule and who must fix it.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use ferry_canon::{
    Account, ActiveStatus, ApprovalStatus, CanonicalRecord, Currency, DimensionValue, Dimensions,
    Domain, Invoice, InvoiceKind, InvoiceStatus, LineKind, Money, Project, SourceRef,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ReasonCode;
use crate::ports::Owner;
use crate::posting::{
    ContactDoc, DocBody, DocKind, DocStatus, InvoiceDoc, PostingDoc, PostingLine, ProjectDoc,
    TaskDoc, TimesheetDoc, Tracking,
};
use crate::template::{CompiledRule, CompiledSource, Scope, SummaryKey, Template};

/// Why a record cannot be posted as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: ReasonCode,
    pub message: String,
    pub field: Option<String>,
    pub rule: Option<String>,
    pub owner: Owner,
}

impl Violation {
    pub fn new(reason: ReasonCode, owner: Owner, message: impl Into<String>) -> Self {
        Violation {
            reason,
            message: message.into(),
            field: None,
            rule: None,
            owner,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }
}

/// Records a record is mapped together with.
#[derive(Debug, Clone, Default)]
pub struct Related {
    pub project: Option<Project>,
    pub account: Option<Account>,
}

impl Related {
    /// The expression scope for a record and its related records.
    pub fn scope(&self, record: &CanonicalRecord) -> Scope {
        let record_json = record_json(record);
        let project = self.project.as_ref().map(to_json);
        let account = self.account.as_ref().map(to_json);
        Scope::new(&record_json, project.as_ref(), account.as_ref())
    }
}

fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("canonical records serialise")
}

/// The record's own JSON (without the domain tag), as expressions see it.
pub fn record_json(record: &CanonicalRecord) -> serde_json::Value {
    let mut v = to_json(record);
    v.get_mut("record")
        .map(serde_json::Value::take)
        .unwrap_or(serde_json::Value::Null)
}

/// Applies the domain's filters. `Ok(Some(reason))` means skip.
pub fn gate(
    rule: &CompiledRule,
    record: &CanonicalRecord,
    scope: &Scope,
) -> Result<Option<String>, Violation> {
    let (approval, billable) = match record {
        CanonicalRecord::TimeEntries(t) => (Some(t.approval), Some(t.billable)),
        CanonicalRecord::Expenses(e) => (Some(e.approval), Some(e.billable)),
        _ => (None, None),
    };
    if rule.spec.approved_only
        && let Some(a) = approval
        && a != ApprovalStatus::Approved
    {
        return Ok(Some(format!("not approved (status {})", a.as_str())));
    }
    if rule.spec.billable_only && billable == Some(false) {
        return Ok(Some("not billable".to_string()));
    }
    for (expr, reason) in &rule.skip_when {
        let skip = scope.boolean(expr).map_err(|m| {
            Violation::new(ReasonCode::TemplateExpressionError, Owner::Support, m)
                .rule(format!("domains.{}.skip_when", rule.domain))
        })?;
        if skip {
            return Ok(Some(reason.clone()));
        }
    }
    Ok(None)
}

/// Resolves a value source: fixed value, or expression → value map → default.
pub fn resolve(
    template: &Template,
    src: &CompiledSource,
    scope: &Scope,
    owner: Owner,
) -> Result<Option<String>, Violation> {
    if let Some(v) = &src.value {
        return Ok(Some(v.clone()));
    }
    let raw = match &src.expr {
        Some(e) => scope.text(e).map_err(|m| {
            Violation::new(ReasonCode::TemplateExpressionError, Owner::Support, m).rule(&src.path)
        })?,
        None => None,
    };
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(src.default.clone());
    };
    let Some(map_name) = &src.map else {
        return Ok(Some(raw));
    };
    let map = template.value_map(map_name).expect("validated on load");
    if let Some(v) = map.get(&raw).or_else(|| map.get("*")) {
        return Ok(Some(v.clone()));
    }
    if let Some(d) = &src.default {
        return Ok(Some(d.clone()));
    }
    Err(Violation::new(
        ReasonCode::UnmappedValue,
        owner,
        format!(
            "no entry for {raw:?} in value map `{map_name}` (used by {})",
            src.path
        ),
    )
    .field(
        src.expr
            .as_ref()
            .map(|e| e.source.clone())
            .unwrap_or_else(|| src.path.clone()),
    )
    .rule(format!("value_maps.{map_name}")))
}

/// Derives dimensions and ERP tracking for a record; required ones must resolve.
pub fn dimensions(
    template: &Template,
    rule: Option<&CompiledRule>,
    scope: &Scope,
) -> Result<(Dimensions, Vec<Tracking>), Violation> {
    let mut dims = Dimensions::default();
    let mut tracking = Vec::new();
    // Mapping problems with dimensions are finance's; a missing source value is the record owner's.
    for d in &template.dimensions {
        let value = resolve(template, &d.source, scope, Owner::Finance)?;
        if let (Some(cat), Some(v)) = (&d.erp_category, &value) {
            tracking.push(Tracking {
                category: cat.clone(),
                option: v.clone(),
            });
        }
        dims.set(d.kind, value.map(DimensionValue::new));
    }
    if let Some(rule) = rule {
        for kind in &rule.required_dimensions {
            if dims.get(*kind).is_none() {
                let src = template
                    .dimensions
                    .iter()
                    .find(|d| d.kind == *kind)
                    .and_then(|d| d.source.expr.as_ref())
                    .map(|e| e.source.clone())
                    .unwrap_or_default();
                return Err(Violation::new(
                    ReasonCode::RequiredDimension,
                    rule.owner,
                    format!(
                        "required dimension {} is missing (derived from `{src}`)",
                        kind.as_str()
                    ),
                )
                .field(src)
                .rule(format!("domains.{}.required_dimensions", rule.domain)));
            }
        }
    }
    tracking.sort();
    Ok((dims, tracking))
}

/// The ERP tax type for a record, through the template's tax map.
pub fn tax_type(template: &Template, scope: &Scope) -> Result<Option<String>, Violation> {
    let t = resolve(template, &template.tax, scope, Owner::Finance).map_err(|mut v| {
        v.reason = ReasonCode::UnknownTaxCode;
        v
    })?;
    if t.is_none() && template.spec.tax.required {
        return Err(Violation::new(
            ReasonCode::UnknownTaxCode,
            Owner::Finance,
            "no tax code could be determined and [tax] is required",
        )
        .rule("tax.required"));
    }
    Ok(t)
}

/// How Ferry names its documents in one ERP: `PREFIX-<kind>-<id>`, or
/// `PREFIX-<hash of that>` when it would not fit the ERP's reference length
/// (the ERP connector declares it). The rule never changes for a deployed
/// tenant: the reference is how a document is found again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct References {
    prefix: String,
    max_len: usize,
}

/// Hex characters of the hash in a shortened reference.
const REFERENCE_HASH_LEN: usize = 24;

impl References {
    /// Fails when even the shortened form would not fit.
    pub fn new(prefix: &str, max_len: usize) -> Result<Self, String> {
        let shortest = prefix.len() + 1 + REFERENCE_HASH_LEN;
        if shortest > max_len {
            return Err(format!(
                "defaults.reference_prefix {prefix:?} is too long for this ERP: its references \
                 hold {max_len} characters, and Ferry needs the prefix plus {} more",
                1 + REFERENCE_HASH_LEN
            ));
        }
        Ok(Self {
            prefix: prefix.to_string(),
            max_len,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The reference of document `id` of kind `kind` (a one-letter tag).
    pub fn make(&self, kind: &str, id: &str) -> String {
        let r = format!("{}-{}-{}", self.prefix, kind, id);
        if r.len() <= self.max_len {
            r
        } else {
            let h = crate::hash::sha256_hex(r.as_bytes());
            format!("{}-{}", self.prefix, &h[..REFERENCE_HASH_LEN])
        }
    }
}

/// The document key of a customer.
pub fn customer_key(account: &SourceRef) -> String {
    crate::messages::record_key(Domain::Customers, account)
}

/// A customer → an ERP contact.
pub fn contact_doc(
    template: &Template,
    refs: &References,
    account: &Account,
    scope: &Scope,
) -> Result<PostingDoc, Violation> {
    if account.name.trim().is_empty() {
        return Err(Violation::new(
            ReasonCode::RequiredField,
            Owner::ProjectOperations,
            "customer has no name",
        )
        .field("name"));
    }
    let tax_type = tax_type(template, scope)?;
    Ok(PostingDoc {
        kind: DocKind::Contact,
        key: customer_key(&account.meta.source),
        reference: refs.make("C", &account.meta.source.id),
        body: DocBody::Contact(ContactDoc {
            name: account.name.trim().to_string(),
            email: account.email.clone(),
            phone: account.phone.clone(),
            website: account.website.clone(),
            address: account.billing_address.clone(),
            tax_type,
            currency: account.currency,
            payment_terms_days: account
                .payment_terms_days
                .or(Some(template.spec.defaults.payment_terms_days)),
            archived: account.meta.deleted || account.status == ActiveStatus::Inactive,
        }),
    })
}

/// A project → the ERP project under its customer. Its document key is its record key.
pub fn project_doc(
    refs: &References,
    project: &Project,
    contact: &ContactRef,
) -> Result<PostingDoc, Violation> {
    if project.name.trim().is_empty() {
        return Err(Violation::new(
            ReasonCode::RequiredField,
            Owner::ProjectOperations,
            "project has no name",
        )
        .field("name"));
    }
    Ok(PostingDoc {
        kind: DocKind::Project,
        key: crate::messages::record_key(Domain::Projects, &project.meta.source),
        reference: refs.make("P", &project.meta.source.id),
        body: DocBody::Project(ProjectDoc {
            name: project.name.trim().to_string(),
            code: project.code.clone(),
            contact_erp_id: contact.erp_id.clone(),
            contact_key: contact.key.clone(),
            closed: project.meta.deleted || project.status == ferry_canon::ProjectStatus::Closed,
            tasks: project
                .phases
                .iter()
                .flat_map(|ph| &ph.tasks)
                .map(|t| TaskDoc {
                    reference: refs.make("K", &t.id),
                    name: t.name.clone(),
                })
                .collect(),
        }),
    })
}

/// The document key of a time entry's timesheet line.
pub fn timesheet_key(entry_key: &str) -> String {
    format!("timesheets/{entry_key}")
}

/// A time entry → a timesheet line on its ERP project.
pub fn timesheet_doc(
    refs: &References,
    t: &ferry_canon::TimeEntry,
    project: &ContactRef,
    removed: bool,
) -> PostingDoc {
    let entry_key = crate::messages::record_key(Domain::TimeEntries, &t.meta.source);
    let person = t.resource.name.clone();
    let what = t
        .notes
        .clone()
        .or_else(|| t.work_type.clone())
        .unwrap_or_else(|| "time".to_string());
    PostingDoc {
        kind: DocKind::Timesheet,
        key: timesheet_key(&entry_key),
        reference: refs.make("T", &t.meta.source.id),
        body: DocBody::Timesheet(TimesheetDoc {
            project_erp_id: project.erp_id.clone(),
            project_key: project.key.clone(),
            date: t.date,
            hours: t.hours,
            task_reference: t.task.as_ref().map(|k| refs.make("K", &k.id)),
            description: match &person {
                Some(p) => format!("{p}: {what}"),
                None => what,
            },
            person,
            removed,
        }),
    }
}

/// A record mapped to one ERP line, before summarising. Stored in staging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedLine {
    pub source_key: String,
    pub domain: Domain,
    pub kind: LineKind,
    /// What the summary line is called (role, expense category, milestone).
    pub label: String,
    pub description: String,
    pub quantity: Decimal,
    pub unit_amount: Decimal,
    pub currency: Currency,
    pub item_code: Option<String>,
    pub account_code: Option<String>,
    pub tax_type: Option<String>,
    pub tracking: Vec<Tracking>,
    pub date: NaiveDate,
}

/// Validates hours: a positive quantity of at most 24 per entry.
fn check_hours(hours: Decimal) -> Result<(), Violation> {
    if hours <= Decimal::ZERO || hours > Decimal::from(24) {
        return Err(Violation::new(
            ReasonCode::HoursOutOfRange,
            Owner::ProjectOperations,
            format!("hours must be more than 0 and at most 24 (got {hours})"),
        )
        .field("hours")
        .rule("0 < hours <= 24"));
    }
    Ok(())
}

/// A time entry's bill rate, in the currency it is billed in: its own (see
/// [`billing_currency`]), or the template's when the PSA has none; within
/// `bounds.max_hourly_rate` and not below zero.
pub fn time_rate(
    template: &Template,
    rule: &CompiledRule,
    t: &ferry_canon::TimeEntry,
    related: &Related,
    scope: &Scope,
) -> Result<Money, Violation> {
    let rate = match (t.bill_rate, &rule.rate) {
        (Some(rate), _) => billed(template, rate, related, "bill_rate")?,
        (None, Some(src)) => {
            let rate = template_rate(template, src, scope, rule.owner)?;
            // The template's rates are in its own currency, stated: never re-labelled.
            in_customer_currency(rate, related, &src.path)?
        }
        (None, None) => {
            return Err(Violation::new(
                ReasonCode::MissingRate,
                rule.owner,
                "billable time entry has no bill rate",
            )
            .field("bill_rate"));
        }
    };
    let max = template.bounds.max_hourly_rate;
    if rate.amount < Decimal::ZERO || rate.amount > max {
        return Err(Violation::new(
            ReasonCode::RateOutOfRange,
            Owner::Finance,
            format!("hourly rate {rate} is outside 0 to {max}"),
        )
        .field("bill_rate")
        .rule(format!("0 <= rate <= bounds.max_hourly_rate ({max})")));
    }
    Ok(rate)
}

/// The customer a line is billed to, if Ferry knows its currency.
fn customer_currency(related: &Related) -> Option<Currency> {
    related.account.as_ref().and_then(|a| a.currency)
}

/// A PSA amount in the currency it is billed in (`defaults.billing_currency`):
/// with `customer`, the customer's currency where it has one (the PSA's prices
/// are in it); with `record`, the amount's own, which must then be the customer's.
fn billed(
    template: &Template,
    amount: Money,
    related: &Related,
    field: &str,
) -> Result<Money, Violation> {
    let currency = billing_currency(template, amount.currency, related);
    in_customer_currency(Money::new(amount.amount, currency), related, field)
}

/// The currency a PSA amount in `currency` is billed in, by
/// `defaults.billing_currency` (reconciliation keys the PSA side by it).
pub fn billing_currency(template: &Template, currency: Currency, related: &Related) -> Currency {
    match (
        template.spec.defaults.billing_currency,
        customer_currency(related),
    ) {
        (crate::template::BillingCurrency::Customer, Some(c)) => c,
        _ => currency,
    }
}

/// `amount` unchanged if its currency is its customer's (or the customer has
/// none); otherwise an exception: Ferry never converts between currencies.
fn in_customer_currency(amount: Money, related: &Related, field: &str) -> Result<Money, Violation> {
    match customer_currency(related) {
        Some(c) if c != amount.currency => Err(Violation::new(
            ReasonCode::CurrencyMismatch,
            Owner::Finance,
            format!(
                "{field} is in {} but the customer is billed in {c}; Ferry does not convert currencies",
                amount.currency
            ),
        )
        .field(field)
        .rule("defaults.billing_currency")),
        _ => Ok(amount),
    }
}

/// An amount within `bounds.max_amount` (its sign is the caller's rule).
fn check_amount(template: &Template, amount: Money, field: &str) -> Result<(), Violation> {
    let max = template.bounds.max_amount;
    if amount.amount.abs() > max {
        return Err(Violation::new(
            ReasonCode::AmountOutOfRange,
            Owner::Finance,
            format!("{field} of {amount} is beyond the bound of {max}"),
        )
        .field(field)
        .rule(format!("|{field}| <= bounds.max_amount ({max})")));
    }
    Ok(())
}

/// A unit price the ERP can hold exactly: at most `decimals` places (Xero
/// keeps 4 when asked, Tryton 4), so the line the ERP computes is the line Ferry
/// computed. More places would be rounded by the ERP, silently: refused instead.
pub fn check_unit_precision(unit: Decimal, decimals: u32) -> Result<(), Violation> {
    if unit.normalize().scale() > decimals {
        return Err(Violation::new(
            ReasonCode::UnitPricePrecision,
            Owner::Finance,
            format!(
                "unit price {} has more than the {decimals} decimal places the ERP keeps",
                unit.normalize()
            ),
        )
        .field("unit_price")
        .rule(format!("at most {decimals} decimal places")));
    }
    Ok(())
}

/// An accounting date within `bounds.max_days_back` before and
/// `bounds.max_days_ahead` after `today` (the clock's).
pub fn plausible_date(
    template: &Template,
    date: NaiveDate,
    today: NaiveDate,
) -> Result<(), Violation> {
    let b = &template.bounds;
    let earliest = today.checked_sub_days(Days::new(b.max_days_back.into()));
    let latest = today.checked_add_days(Days::new(b.max_days_ahead.into()));
    if earliest.is_some_and(|e| date < e) || latest.is_some_and(|l| date > l) {
        return Err(Violation::new(
            ReasonCode::DateOutOfRange,
            Owner::ProjectOperations,
            format!(
                "dated {date}, more than {} days before or {} days after today ({today})",
                b.max_days_back, b.max_days_ahead
            ),
        )
        .field("date")
        .rule("bounds.max_days_back, bounds.max_days_ahead"));
    }
    Ok(())
}

/// Gives a record the firm's local accounting date: a time entry the PSA
/// stamped with an instant belongs to that instant's date in `tz`. Applied once,
/// where a PSA record becomes canonical, so every rule downstream (documents,
/// periods, the closed-period gate, reconciliation) reads the same date.
pub fn localise(record: &mut CanonicalRecord, tz: chrono_tz::Tz) {
    if let CanonicalRecord::TimeEntries(t) = record
        && let Some(at) = t.started_at
    {
        t.date = at.with_timezone(&tz).date_naive();
    }
}

/// The template's rate for a time entry that carries none, in the template's currency.
fn template_rate(
    template: &Template,
    src: &CompiledSource,
    scope: &Scope,
    owner: Owner,
) -> Result<Money, Violation> {
    let text = resolve(template, src, scope, Owner::Finance)?.ok_or_else(|| {
        Violation::new(
            ReasonCode::MissingRate,
            owner,
            format!(
                "the template gives no rate for this time entry ({})",
                src.path
            ),
        )
        .field("bill_rate")
        .rule(&src.path)
    })?;
    let amount = text.parse::<Decimal>().map_err(|_| {
        Violation::new(
            ReasonCode::TemplateInvalidRate,
            Owner::Support,
            format!("rate {text:?} from {} is not a decimal", src.path),
        )
        .rule(&src.path)
    })?;
    let currency = Currency::parse(&template.spec.defaults.currency).map_err(|e| {
        Violation::new(
            ReasonCode::TemplateInvalidCurrency,
            Owner::Support,
            e.to_string(),
        )
        .rule("defaults.currency")
    })?;
    Ok(Money::new(amount, currency))
}

/// A time entry, expense or billing event → one line.
pub fn line(
    template: &Template,
    rule: &CompiledRule,
    record: &CanonicalRecord,
    related: &Related,
    scope: &Scope,
) -> Result<StagedLine, Violation> {
    let (_, tracking) = dimensions(template, Some(rule), scope)?;
    let tax_type = tax_type(template, scope)?;
    let item_code = match &rule.item {
        Some(s) => resolve(template, s, scope, Owner::Finance)?,
        None => None,
    };
    let account_code = match &rule.account {
        Some(s) => resolve(template, s, scope, Owner::Finance)?,
        None => None,
    };
    if item_code.is_none()
        && account_code.is_none()
        && (rule.item.is_some() || rule.account.is_some())
    {
        // The template says where lines post, and for this record it came to
        // nothing (its source value is empty and there is no default): a line
        // without an item or account would post where no one meant it to.
        let src = rule.item.as_ref().or(rule.account.as_ref());
        let from = src.and_then(|s| s.expr.as_ref()).map(|e| e.source.clone());
        return Err(Violation::new(
            ReasonCode::UnmappedValue,
            Owner::Finance,
            format!(
                "no item or account for this line: {} gave no value and has no default",
                from.as_deref().unwrap_or("the template")
            ),
        )
        .field(from.unwrap_or_default())
        .rule(
            src.map(|s| s.path.clone())
                .unwrap_or_else(|| format!("domains.{}", rule.domain)),
        ));
    }
    let description_from = |default: String| -> Result<String, Violation> {
        match &rule.description {
            Some(e) => Ok(scope
                .text(e)
                .map_err(|m| {
                    Violation::new(ReasonCode::TemplateExpressionError, Owner::Support, m)
                        .rule(format!("domains.{}.description", rule.domain))
                })?
                .unwrap_or(default)),
            None => Ok(default),
        }
    };
    let source_key = crate::messages::record_key(record.domain(), &record.meta().source);
    match record {
        CanonicalRecord::TimeEntries(t) => {
            check_hours(t.hours)?;
            let rate = time_rate(template, rule, t, related, scope)?;
            // The work role, else the kind of work (PSAs without roles, such as Redmine's activities).
            let label = t
                .role
                .clone()
                .or_else(|| t.work_type.clone())
                .unwrap_or_else(|| "Time".to_string());
            Ok(StagedLine {
                source_key,
                domain: Domain::TimeEntries,
                kind: LineKind::Time,
                description: description_from(format!(
                    "{} {} — {}",
                    t.date,
                    t.resource.name.as_deref().unwrap_or(&t.resource.id),
                    t.notes.as_deref().unwrap_or(&label)
                ))?,
                label,
                quantity: t.hours,
                unit_amount: rate.amount,
                currency: rate.currency,
                item_code,
                account_code,
                tax_type,
                tracking,
                date: t.date,
            })
        }
        CanonicalRecord::Expenses(e) => {
            if e.amount.amount <= Decimal::ZERO {
                return Err(Violation::new(
                    ReasonCode::AmountNotPositive,
                    rule.owner,
                    format!("expense amount must be positive (got {})", e.amount),
                )
                .field("amount"));
            }
            check_amount(template, e.amount, "amount")?;
            let amount = billed(template, e.amount, related, "amount")?;
            Ok(StagedLine {
                source_key,
                domain: Domain::Expenses,
                kind: LineKind::Expense,
                label: e.category.clone(),
                description: description_from(format!(
                    "{} {}{}",
                    e.date,
                    e.category,
                    e.notes
                        .as_ref()
                        .map(|n| format!(" — {n}"))
                        .unwrap_or_default()
                ))?,
                quantity: Decimal::ONE,
                unit_amount: amount.amount,
                currency: amount.currency,
                item_code,
                account_code,
                tax_type,
                tracking,
                date: e.date,
            })
        }
        CanonicalRecord::BillingEvents(b) => {
            check_amount(template, b.amount, "amount")?;
            let amount = billed(template, b.amount, related, "amount")?;
            Ok(StagedLine {
                source_key,
                domain: Domain::BillingEvents,
                kind: LineKind::Fee,
                label: b.milestone.clone().unwrap_or_else(|| b.description.clone()),
                description: description_from(b.description.clone())?,
                quantity: Decimal::ONE,
                unit_amount: amount.amount,
                currency: amount.currency,
                item_code,
                account_code,
                tax_type,
                tracking,
                date: b.date,
            })
        }
        other => Err(Violation::new(
            ReasonCode::TemplateUnsupported,
            Owner::Support,
            format!("{} records cannot become invoice lines", other.domain()),
        )),
    }
}

/// Where a record's line is summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryGroup {
    /// Staging group id: `<document>/<project key>/<YYYY-MM>`.
    pub group: String,
    pub doc_key: String,
    pub reference: String,
    pub project: Option<SourceRef>,
    pub account: SourceRef,
    pub period_end: NaiveDate,
    pub currency: Currency,
}

fn month_end(d: NaiveDate) -> NaiveDate {
    let first = d.with_day(1).expect("day 1 exists");
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .expect("date in range");
    next - Days::new(1)
}

/// The summary group a line belongs to.
pub fn summary_group(
    refs: &References,
    rule: &CompiledRule,
    line: &StagedLine,
    project: Option<&SourceRef>,
    account: &SourceRef,
) -> Result<SummaryGroup, Violation> {
    let summary = rule.spec.summary.as_ref().expect("validated on load");
    let mut parts = vec![summary.document.clone()];
    let mut ref_parts = Vec::new();
    for key in &summary.group_by {
        match key {
            SummaryKey::Project => {
                let Some(p) = project else {
                    return Err(Violation::new(
                        ReasonCode::RequiredField,
                        rule.owner,
                        "summarised by project, but the record has no project",
                    )
                    .field("project"));
                };
                parts.push(p.key());
                ref_parts.push(p.id.clone());
            }
            SummaryKey::Period => {
                let p = line.date.format("%Y-%m").to_string();
                ref_parts.push(line.date.format("%Y%m").to_string());
                parts.push(p);
            }
        }
    }
    if !summary.group_by.contains(&SummaryKey::Project) {
        parts.push(account.key());
        ref_parts.push(account.id.clone());
    }
    let group = parts.join("/");
    Ok(SummaryGroup {
        doc_key: format!("summary/{group}"),
        reference: refs.make(&format!("S-{}", summary.document), &ref_parts.join("-")),
        group,
        project: project.cloned(),
        account: account.clone(),
        period_end: month_end(line.date),
        currency: line.currency,
    })
}

/// The customer's ERP contact: its id and document key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRef {
    pub erp_id: String,
    pub key: String,
}

/// Sums staged lines into invoice lines: lines with the same label, codes,
/// tracking and unit amount merge, and each merged line is rounded once, after
/// summing, by the template's rule. Returns the lines and their subtotal.
pub fn summarise_lines(
    template: &Template,
    members: &[StagedLine],
    currency: Currency,
    period_end: NaiveDate,
) -> (Vec<PostingLine>, Decimal) {
    type LineKey = (
        LineKind,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Vec<Tracking>,
        Decimal,
    );
    let mut merged: BTreeMap<String, (LineKey, Decimal)> = BTreeMap::new();
    for m in members {
        let key: LineKey = (
            m.kind,
            m.label.clone(),
            m.item_code.clone(),
            m.account_code.clone(),
            m.tax_type.clone(),
            m.tracking.clone(),
            m.unit_amount.normalize(),
        );
        let sort_key = serde_json::to_string(&key).expect("serialisable");
        merged
            .entry(sort_key)
            .and_modify(|(_, q)| *q += m.quantity)
            .or_insert((key, m.quantity));
    }
    let rounding = template.spec.defaults.rounding;
    let dp = currency.minor_units();
    let period = period_end.format("%B %Y").to_string();
    let mut lines = Vec::new();
    let mut subtotal = Decimal::ZERO;
    for (_, ((kind, label, item, account, tax, tracking, unit), qty)) in merged {
        let line_amount = rounding.round(qty * unit, dp);
        subtotal += line_amount;
        let description = match kind {
            LineKind::Time => format!("{label}: {} h at {} — {period}", qty.normalize(), unit),
            _ => format!("{label} — {period}"),
        };
        lines.push(PostingLine {
            kind,
            description,
            quantity: qty,
            unit_amount: unit,
            line_amount,
            item_code: item,
            account_code: account,
            tax_type: tax,
            tracking,
        });
    }
    (lines, subtotal)
}

/// The tax an ERP following `rules` adds to one document of `(tax type, line
/// amount)` lines. `Err` names a tax type the ERP gave no rate for (or a line
/// without one, which the ERP taxes by its own defaults).
pub fn expected_tax(
    lines: &[(Option<String>, Decimal)],
    rules: &crate::ports::TaxRules,
    currency: Currency,
) -> Result<Decimal, String> {
    let dp = currency.minor_units();
    let round = |d: Decimal| {
        d.round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    };
    let rate = |t: &Option<String>| -> Result<Decimal, String> {
        let t = t.as_deref().ok_or("a line without a tax type")?;
        rules
            .rates
            .get(t)
            .map(|r| r / Decimal::from(100))
            .ok_or_else(|| format!("tax type {t:?}, which the ERP has no rate for"))
    };
    match rules.rounding {
        crate::ports::TaxRounding::PerLine => lines
            .iter()
            .map(|(t, amount)| Ok(round(*amount * rate(t)?)))
            .sum(),
        crate::ports::TaxRounding::PerTaxType => {
            let mut by_type: BTreeMap<&Option<String>, Decimal> = BTreeMap::new();
            for (t, amount) in lines {
                *by_type.entry(t).or_default() += *amount;
            }
            by_type
                .into_iter()
                .map(|(t, amount)| Ok(round(amount * rate(t)?)))
                .sum()
        }
    }
}

/// Renders a summary group into one invoice (deleted when the group is empty).
pub fn render_summary(
    template: &Template,
    rule: &CompiledRule,
    group: &SummaryGroup,
    members: &[StagedLine],
    contact: &ContactRef,
) -> Result<PostingDoc, Violation> {
    if let Some(m) = members.iter().find(|m| m.currency != group.currency) {
        return Err(Violation::new(
            ReasonCode::CurrencyMismatch,
            Owner::Finance,
            format!(
                "{} is in {} but its summary document is in {}",
                m.source_key, m.currency, group.currency
            ),
        )
        .field("currency"));
    }
    let (lines, subtotal) = summarise_lines(template, members, group.currency, group.period_end);
    let status = if lines.is_empty() {
        DocStatus::Deleted
    } else {
        rule.invoice_status
    };
    Ok(PostingDoc {
        kind: DocKind::Invoice,
        key: group.doc_key.clone(),
        reference: group.reference.clone(),
        body: DocBody::Invoice(InvoiceDoc {
            contact_erp_id: contact.erp_id.clone(),
            contact_key: contact.key.clone(),
            number: None,
            date: group.period_end,
            due_date: group
                .period_end
                .checked_add_days(Days::new(template.spec.defaults.payment_terms_days.into())),
            currency: group.currency,
            status,
            lines,
            subtotal,
        }),
    })
}

/// A single record as its own invoice (per-record granularity for time, expenses, billing events).
pub fn single_line_invoice(
    template: &Template,
    refs: &References,
    rule: &CompiledRule,
    line: &StagedLine,
    contact: &ContactRef,
    deleted: bool,
) -> PostingDoc {
    let dp = line.currency.minor_units();
    let amount = template
        .spec
        .defaults
        .rounding
        .round(line.quantity * line.unit_amount, dp);
    let key = format!("{}/{}", rule.domain, line.source_key);
    PostingDoc {
        kind: DocKind::Invoice,
        reference: refs.make("R", &line.source_key.replace(':', "-")),
        key,
        body: DocBody::Invoice(InvoiceDoc {
            contact_erp_id: contact.erp_id.clone(),
            contact_key: contact.key.clone(),
            number: None,
            date: line.date,
            due_date: line
                .date
                .checked_add_days(Days::new(template.spec.defaults.payment_terms_days.into())),
            currency: line.currency,
            status: if deleted {
                DocStatus::Deleted
            } else {
                rule.invoice_status
            },
            lines: vec![PostingLine {
                kind: line.kind,
                description: line.description.clone(),
                quantity: line.quantity,
                unit_amount: line.unit_amount,
                line_amount: amount,
                item_code: line.item_code.clone(),
                account_code: line.account_code.clone(),
                tax_type: line.tax_type.clone(),
                tracking: line.tracking.clone(),
            }],
            subtotal: amount,
        }),
    }
}

/// A PSA invoice or credit memo → an ERP invoice or credit note.
pub fn invoice_doc(
    template: &Template,
    refs: &References,
    rule: &CompiledRule,
    invoice: &Invoice,
    contact: &ContactRef,
    scope: &Scope,
) -> Result<PostingDoc, Violation> {
    let (_, tracking) = dimensions(template, Some(rule), scope)?;
    let header_tax = tax_type(template, scope)?;
    let default_account = match &rule.account {
        Some(s) => resolve(template, s, scope, Owner::Finance)?,
        None => None,
    };
    if invoice.lines.is_empty() {
        return Err(Violation::new(
            ReasonCode::RequiredField,
            rule.owner,
            "invoice has no lines",
        )
        .field("lines"));
    }
    let (what, instead) = match invoice.kind {
        InvoiceKind::Invoice => ("invoice", "a credit memo"),
        InvoiceKind::CreditMemo => ("credit memo", "an invoice"),
    };
    if invoice.total.amount < Decimal::ZERO || invoice.subtotal.amount < Decimal::ZERO {
        return Err(Violation::new(
            ReasonCode::NegativeAmount,
            Owner::Finance,
            format!(
                "the {what} totals {} ({} before tax); an ERP {what} cannot be below zero: issue {instead} in the PSA instead",
                invoice.total, invoice.subtotal
            ),
        )
        .field("total")
        .rule("total >= 0"));
    }
    check_amount(template, invoice.total, "total")?;
    let dp = invoice.currency.minor_units();
    let rounding = template.spec.defaults.rounding;
    let mut lines = Vec::new();
    let mut subtotal = Decimal::ZERO;
    for (i, l) in invoice.lines.iter().enumerate() {
        if l.unit_price.currency != invoice.currency {
            return Err(Violation::new(
                ReasonCode::CurrencyMismatch,
                Owner::Finance,
                format!(
                    "line {i} is in {} but the invoice is in {}",
                    l.unit_price.currency, invoice.currency
                ),
            )
            .field(format!("lines[{i}].unit_price")));
        }
        let account_code = l.account_code.clone().or_else(|| default_account.clone());
        if account_code.is_none() && l.item_code.is_none() {
            return Err(Violation::new(
                ReasonCode::UnmappedValue,
                Owner::Finance,
                format!("line {i} has neither an item nor an account, and the template gives no default account"),
            )
            .field(format!("lines[{i}].account_code"))
            .rule(format!("domains.{}.account", rule.domain)));
        }
        let tax = match &l.tax_code {
            Some(code) => Some(map_tax_code(template, code)?),
            None => header_tax.clone(),
        };
        let line_amount = rounding.round(l.quantity * l.unit_price.amount, dp);
        subtotal += line_amount;
        lines.push(PostingLine {
            kind: l.kind,
            description: l.description.clone(),
            quantity: l.quantity,
            unit_amount: l.unit_price.amount,
            line_amount,
            item_code: l.item_code.clone(),
            account_code,
            tax_type: tax,
            tracking: tracking.clone(),
        });
    }
    let expected = invoice.subtotal.amount;
    if rounding.round(subtotal, dp) != rounding.round(expected, dp) {
        return Err(Violation::new(
            ReasonCode::TotalsMismatch,
            Owner::Finance,
            format!("lines add up to {subtotal} but the invoice subtotal is {expected}"),
        )
        .field("subtotal"));
    }
    let status = if invoice.meta.deleted || invoice.status == InvoiceStatus::Voided {
        DocStatus::Voided
    } else {
        rule.invoice_status
    };
    let (kind, tag) = match invoice.kind {
        InvoiceKind::Invoice => (DocKind::Invoice, "I"),
        InvoiceKind::CreditMemo => (DocKind::CreditNote, "CN"),
    };
    Ok(PostingDoc {
        kind,
        key: format!("{}/{}", rule.domain, invoice.meta.source.key()),
        reference: refs.make(tag, &invoice.meta.source.id),
        body: DocBody::Invoice(InvoiceDoc {
            contact_erp_id: contact.erp_id.clone(),
            contact_key: contact.key.clone(),
            number: invoice.number.clone(),
            date: invoice.issue_date,
            due_date: invoice.due_date,
            currency: invoice.currency,
            status,
            lines,
            subtotal,
        }),
    })
}

fn map_tax_code(template: &Template, code: &str) -> Result<String, Violation> {
    let Some(map_name) = &template.tax.map else {
        return Ok(code.to_string());
    };
    let map = template.value_map(map_name).expect("validated on load");
    map.get(code)
        .or_else(|| map.get("*"))
        .cloned()
        .ok_or_else(|| {
            Violation::new(
                ReasonCode::UnknownTaxCode,
                Owner::Finance,
                format!("tax code {code:?} has no entry in value map `{map_name}`"),
            )
            .field("tax_code")
            .rule(format!("value_maps.{map_name}"))
        })
}

/// Money and hours a record holds back (for exception reports).
pub fn at_stake(record: &CanonicalRecord) -> (Option<Money>, Option<Decimal>) {
    match record {
        CanonicalRecord::TimeEntries(t) => (
            t.bill_rate.and_then(|r| r.checked_mul(t.hours).ok()),
            Some(t.hours),
        ),
        CanonicalRecord::Expenses(e) => (Some(e.amount), None),
        CanonicalRecord::BillingEvents(b) => (Some(b.amount), None),
        CanonicalRecord::Invoices(i) | CanonicalRecord::CreditMemos(i) => (Some(i.total), None),
        _ => (None, None),
    }
}

/// The accounting date of a record, for the closed-period gate.
pub fn accounting_date(record: &CanonicalRecord) -> Option<NaiveDate> {
    match record {
        CanonicalRecord::TimeEntries(t) => Some(t.date),
        CanonicalRecord::Expenses(e) => Some(e.date),
        CanonicalRecord::BillingEvents(b) => Some(b.date),
        CanonicalRecord::Invoices(i) | CanonicalRecord::CreditMemos(i) => Some(i.issue_date),
        CanonicalRecord::Payments(p) => Some(p.date),
        _ => None,
    }
}

/// The customer a record bills, directly or through its project.
pub fn billed_account(record: &CanonicalRecord, related: &Related) -> Option<SourceRef> {
    let from_project = || related.project.as_ref().map(|p| p.account.clone());
    match record {
        CanonicalRecord::TimeEntries(t) => t.account.clone().or_else(from_project),
        CanonicalRecord::Expenses(e) => e.account.clone().or_else(from_project),
        CanonicalRecord::BillingEvents(_) => from_project(),
        CanonicalRecord::Invoices(i) | CanonicalRecord::CreditMemos(i) => Some(i.account.clone()),
        CanonicalRecord::Customers(a) => Some(a.meta.source.clone()),
        CanonicalRecord::Projects(p) => Some(p.account.clone()),
        _ => None,
    }
}

/// The project a record belongs to.
pub fn project_of(record: &CanonicalRecord) -> Option<&SourceRef> {
    match record {
        CanonicalRecord::TimeEntries(t) => t.project.as_ref(),
        CanonicalRecord::Expenses(e) => e.project.as_ref(),
        CanonicalRecord::BillingEvents(b) => Some(&b.project),
        CanonicalRecord::Invoices(i) | CanonicalRecord::CreditMemos(i) => i.project.as_ref(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::TemplateSource;
    use serde_json::json;

    const TEMPLATE: &str = r#"
[template]
name = "t"
version = "1"
psa = "connectwise"
erp = "xero"
[domains.time_entries]
direction = "psa_to_erp"
item = { from = "record.role", map = "roles" }
[value_maps.roles]
"Consultant" = "CONS"
"#;

    fn time_entry(extra: serde_json::Value) -> CanonicalRecord {
        let mut record = json!({
            "meta": {
                "tenant": "t1",
                "source": {"system": "connectwise", "id": "7"},
                "source_version": {"updated_at": "2026-11-02T10:00:00Z"}
            },
            "resource": {"system": "connectwise", "id": "m1"},
            "date": "2026-11-02", "hours": "2", "billable": true, "approval": "approved",
            "bill_rate": {"amount": "150", "currency": "USD"},
        });
        for (k, v) in extra.as_object().expect("object") {
            record[k] = v.clone();
        }
        serde_json::from_value(json!({"domain": "time_entries", "record": record}))
            .expect("a canonical time entry")
    }

    fn line_of(record: &CanonicalRecord) -> Result<StagedLine, Violation> {
        let t = Template::load(&TemplateSource::new("t.toml", TEMPLATE), None).expect("loads");
        let rule = t.rule(Domain::TimeEntries).expect("rule");
        let related = Related::default();
        line(&t, rule, record, &related, &related.scope(record))
    }

    #[test]
    fn a_line_whose_item_source_gives_nothing_is_refused_not_posted_without_an_item() {
        let ok = line_of(&time_entry(json!({"role": "Consultant"}))).expect("maps");
        assert_eq!(ok.item_code.as_deref(), Some("CONS"));
        let v = line_of(&time_entry(json!({}))).expect_err("no role, no default");
        assert_eq!(v.reason, "validation.unmapped_value");
        assert_eq!(v.field.as_deref(), Some("record.role"));
        assert_eq!(v.rule.as_deref(), Some("domains.time_entries.item"));
    }

    #[test]
    fn expected_tax_follows_the_erps_rounding_and_names_an_unknown_type() {
        use crate::ports::{TaxRounding, TaxRules};
        let usd = Currency::parse("USD").unwrap();
        let mut rules = TaxRules {
            rates: [("OUTPUT".to_string(), "8.875".parse::<Decimal>().unwrap())].into(),
            rounding: TaxRounding::PerTaxType,
        };
        let out = || Some("OUTPUT".to_string());
        // 3 × 0.05 at 8.875%: 0.0133125 (→ 0.01) per tax type, 3 × 0.00 per line.
        let lines = vec![
            (out(), "0.05".parse().unwrap()),
            (out(), "0.05".parse().unwrap()),
            (out(), "0.05".parse().unwrap()),
        ];
        assert_eq!(
            expected_tax(&lines, &rules, usd),
            Ok("0.01".parse().unwrap())
        );
        rules.rounding = TaxRounding::PerLine;
        assert_eq!(expected_tax(&lines, &rules, usd), Ok(Decimal::ZERO));
        let one = vec![(out(), "1000".parse().unwrap())];
        assert_eq!(
            expected_tax(&one, &rules, usd),
            Ok("88.75".parse().unwrap())
        );
        let unknown = vec![(Some("GST".to_string()), Decimal::ONE)];
        assert!(
            expected_tax(&unknown, &rules, usd)
                .unwrap_err()
                .contains("GST")
        );
        assert!(expected_tax(&[(None, Decimal::ONE)], &rules, usd).is_err());
    }

    mod properties {
        use super::*;
        use ferry_canon::Rounding;
        use proptest::prelude::*;

        fn amount() -> impl Strategy<Value = Decimal> {
            (-1_000_000_000i64..1_000_000_000, 0u32..6).prop_map(|(m, s)| Decimal::new(m, s))
        }

        fn rule() -> impl Strategy<Value = Rounding> {
            prop_oneof![
                Just(Rounding::HalfAwayFromZero),
                Just(Rounding::HalfEven),
                Just(Rounding::Truncate)
            ]
        }

        fn staged(label: usize, hundredths: i64, rate: usize, tax: usize) -> StagedLine {
            let rates = ["150", "172.5", "12.3456"];
            StagedLine {
                source_key: format!("time_entries/cw:{label}-{hundredths}"),
                domain: Domain::TimeEntries,
                kind: LineKind::Time,
                label: ["Consultant", "Architect", "Analyst"][label].into(),
                description: "work".into(),
                quantity: Decimal::new(hundredths, 2),
                unit_amount: rates[rate].parse().unwrap(),
                currency: Currency::parse("USD").unwrap(),
                item_code: Some(format!("ITEM-{label}")),
                account_code: None,
                tax_type: Some(["OUTPUT", "EXEMPT"][tax].into()),
                tracking: Vec::new(),
                date: NaiveDate::from_ymd_opt(2026, 10, 5).unwrap(),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn rounding_moves_an_amount_by_less_than_one_unit_and_is_stable(
                x in amount(), dp in 0u32..5, r in rule()
            ) {
                let y = r.round(x, dp);
                let unit = Decimal::new(1, dp);
                prop_assert!((y - x).abs() < unit, "{x} -> {y}");
                if r != Rounding::Truncate {
                    prop_assert!((y - x).abs() * Decimal::TWO <= unit, "{x} -> {y}");
                }
                prop_assert_eq!(r.round(y, dp), y, "rounding twice changes nothing");
                prop_assert_eq!(r.round(-x, dp), -y, "every rule is symmetric about zero");
                prop_assert!(y.scale() <= dp);
            }

            #[test]
            fn summarising_is_order_free_exact_per_line_and_rounds_each_merged_line_once(
                lines in proptest::collection::vec((0usize..3, 1i64..2400, 0usize..3, 0usize..2), 0..40),
                r in rule(),
                seed in any::<u64>(),
            ) {
                let t = Template::load(&TemplateSource::new("t.toml", format!(
                    "{TEMPLATE}\n[defaults]\nrounding = {:?}\n",
                    match r { Rounding::HalfAwayFromZero => "half_away_from_zero", Rounding::HalfEven => "half_even", Rounding::Truncate => "truncate" }
                )), None).expect("loads");
                let usd = Currency::parse("USD").unwrap();
                let end = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
                let members: Vec<StagedLine> =
                    lines.iter().map(|(l, h, rt, tx)| staged(*l, *h, *rt, *tx)).collect();
                let (out, subtotal) = summarise_lines(&t, &members, usd, end);

                // The subtotal is its lines; each line is its merged quantity at its
                // unit price, rounded once by the template's rule.
                prop_assert_eq!(subtotal, out.iter().map(|l| l.line_amount).sum::<Decimal>());
                for l in &out {
                    prop_assert_eq!(l.line_amount, r.round(l.quantity * l.unit_amount, 2));
                }
                // Nothing lost or doubled: every input's hours are on exactly one line.
                prop_assert_eq!(
                    out.iter().map(|l| l.quantity).sum::<Decimal>(),
                    members.iter().map(|m| m.quantity).sum::<Decimal>()
                );
                let merged: std::collections::BTreeSet<_> = members
                    .iter()
                    .map(|m| (m.label.clone(), m.unit_amount.normalize(), m.tax_type.clone()))
                    .collect();
                prop_assert_eq!(out.len(), merged.len(), "one line per label, rate and tax");
                // Within one rounding step per line of the exact amount.
                let exact: Decimal = members.iter().map(|m| m.quantity * m.unit_amount).sum();
                prop_assert!((subtotal - exact).abs() <= Decimal::new(out.len() as i64, 2));
                // The order records arrive in changes nothing.
                let mut shuffled = members.clone();
                fastrand::Rng::with_seed(seed).shuffle(&mut shuffled);
                let again = summarise_lines(&t, &shuffled, usd, end);
                prop_assert_eq!(again, (out, subtotal));
            }

            #[test]
            fn tax_per_tax_type_is_the_rounded_tax_of_the_sum_and_per_line_the_sum_of_rounded(
                amounts in proptest::collection::vec((0usize..2, 0i64..10_000_000), 0..30)
            ) {
                use crate::ports::{TaxRounding, TaxRules};
                let usd = Currency::parse("USD").unwrap();
                let rates: BTreeMap<String, Decimal> = [
                    ("OUTPUT".to_string(), "8.875".parse().unwrap()),
                    ("EXEMPT".to_string(), Decimal::ZERO),
                ].into();
                let lines: Vec<(Option<String>, Decimal)> = amounts
                    .iter()
                    .map(|(t, a)| (Some(["OUTPUT", "EXEMPT"][*t].to_string()), Decimal::new(*a, 2)))
                    .collect();
                let round = |d: Decimal| d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
                let output: Decimal = lines.iter().filter(|l| l.0.as_deref() == Some("OUTPUT")).map(|l| l.1).sum();
                let per_type = TaxRules { rates: rates.clone(), rounding: TaxRounding::PerTaxType };
                prop_assert_eq!(
                    expected_tax(&lines, &per_type, usd),
                    Ok(round(output * rates["OUTPUT"] / Decimal::from(100)))
                );
                let per_line = TaxRules { rates: rates.clone(), rounding: TaxRounding::PerLine };
                let tax = expected_tax(&lines, &per_line, usd).expect("known types");
                let by_line: Decimal = lines
                    .iter()
                    .map(|(t, a)| round(*a * rates[t.as_deref().unwrap()] / Decimal::from(100)))
                    .sum();
                prop_assert_eq!(tax, by_line);
                // The two rules differ by at most half a cent per line.
                let whole = expected_tax(&lines, &per_type, usd).unwrap();
                prop_assert!((tax - whole).abs() <= Decimal::new(lines.len() as i64 + 1, 2));
            }
        }
    }
}
