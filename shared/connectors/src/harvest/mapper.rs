//! Pure conversions from Harvest records to the canonical model.
//!
//! Harvest keeps money per client: a client's `currency` is the currency of its
//! projects' rates, time, expenses and invoices (the connector adds it to each
//! record as `ferry_currency`). Its approval workflow closes approved time and
//! expenses (`is_closed`). Projects carry their task assignments (added as
//! `ferry_tasks`), which are the tasks time is logged against.
//!
//! Size: about 500 lines of conversions, one per Harvest record kind, then
//! their tests.

use chrono::NaiveDate;
use ferry_canon::{
    Account, ActiveStatus, Address, ApprovalStatus, BillingType, CanonicalRecord, Currency,
    Dimensions, Domain, Expense, Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, LineKind, Money,
    Phase, Project, ProjectStatus, RecordMeta, Resource, SourceRef, SystemId, Task, TenantId,
    TimeEntry,
};
use ferry_core::MappingError;
use ferry_core::ports::SourceRecord;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::config::HarvestConfig;
use super::raw;

/// What mapping needs besides the record.
pub struct MapContext<'a> {
    pub tenant: &'a TenantId,
    pub system: &'a SystemId,
    pub home_currency: Currency,
    pub cfg: &'a HarvestConfig,
}

pub use crate::psa::instant;

fn date(s: Option<&str>, field: &str) -> Result<NaiveDate, MappingError> {
    let s = s.ok_or_else(|| MappingError::new(field, "is required"))?;
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| MappingError::new(field, "must be a date (YYYY-MM-DD)").with_value(s))
}

fn meta(
    cx: &MapContext<'_>,
    id: i64,
    updated_at: &str,
    deleted: bool,
) -> Result<RecordMeta, MappingError> {
    let at = instant(updated_at, "updated_at")?;
    Ok(crate::psa::meta(cx.tenant, cx.system, id, at, deleted))
}

fn parse<T: DeserializeOwned>(v: &Value, what: &str) -> Result<T, MappingError> {
    crate::psa::parse(v, what, "Harvest")
}

fn named(cx: &MapContext<'_>, n: &raw::Named) -> SourceRef {
    crate::psa::named(cx.system, n)
}

fn required(
    cx: &MapContext<'_>,
    n: &Option<raw::Named>,
    field: &str,
) -> Result<SourceRef, MappingError> {
    n.as_ref()
        .map(|n| named(cx, n))
        .ok_or_else(|| MappingError::new(field, "is required"))
}

/// The record's currency: its client's (added by the connector), the firm's
/// when the client names none. A code Ferry does not know is an error, never
/// the home currency.
fn currency(
    cx: &MapContext<'_>,
    code: Option<&str>,
    field: &str,
) -> Result<Currency, MappingError> {
    match code.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(cx.home_currency),
        Some(c) => {
            Currency::parse(c).map_err(|e| MappingError::new(field, e.to_string()).with_value(c))
        }
    }
}

fn active(is_active: Option<bool>) -> ActiveStatus {
    match is_active {
        Some(false) => ActiveStatus::Inactive,
        _ => ActiveStatus::Active,
    }
}

fn approval(cx: &MapContext<'_>, is_closed: Option<bool>) -> ApprovalStatus {
    match (cx.cfg.approvals, is_closed) {
        (false, _) | (true, Some(true)) => ApprovalStatus::Approved,
        (true, _) => ApprovalStatus::Submitted,
    }
}

/// Maps any Harvest record to its canonical form.
pub fn to_canonical(
    cx: &MapContext<'_>,
    rec: &SourceRecord,
) -> Result<CanonicalRecord, MappingError> {
    if let Some(c) = crate::tombstone::read(rec) {
        return c;
    }
    let deleted = rec.deleted;
    match rec.domain {
        Domain::Customers => {
            client(cx, &parse(&rec.raw, "client")?, deleted).map(CanonicalRecord::Customers)
        }
        Domain::Projects => {
            project(cx, &parse(&rec.raw, "project")?, deleted).map(CanonicalRecord::Projects)
        }
        Domain::Resources => {
            user(cx, &parse(&rec.raw, "user")?, deleted).map(CanonicalRecord::Resources)
        }
        Domain::TimeEntries => time_entry(cx, &parse(&rec.raw, "time entry")?, deleted)
            .map(CanonicalRecord::TimeEntries),
        Domain::Expenses => {
            expense(cx, &parse(&rec.raw, "expense")?, deleted).map(CanonicalRecord::Expenses)
        }
        Domain::Invoices => {
            invoice(cx, &parse(&rec.raw, "invoice")?, deleted).map(CanonicalRecord::Invoices)
        }
        other => Err(MappingError::new(
            "domain",
            format!("Harvest has no {other}"),
        )),
    }
}

/// A client → a customer. Harvest keeps the address as one text block.
pub fn client(
    cx: &MapContext<'_>,
    c: &raw::Client,
    deleted: bool,
) -> Result<Account, MappingError> {
    let name = c.name.clone().unwrap_or_default();
    if name.trim().is_empty() {
        return Err(MappingError::new("name", "must not be empty"));
    }
    let address = c
        .address
        .as_deref()
        .map(|a| {
            a.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .map(|lines| Address {
            lines,
            ..Address::default()
        });
    Ok(Account {
        meta: meta(cx, c.id, &c.updated_at, deleted)?,
        name,
        code: None,
        status: active(c.is_active),
        currency: Some(currency(cx, c.currency.as_deref(), "currency")?),
        tax_code: None,
        billing_address: address,
        email: None,
        phone: None,
        website: None,
        payment_terms_days: None,
        dimensions: Dimensions::default(),
    })
}

/// A project, with its task assignments as its tasks.
pub fn project(
    cx: &MapContext<'_>,
    p: &raw::Project,
    deleted: bool,
) -> Result<Project, MappingError> {
    let name = p.name.clone().unwrap_or_default();
    if name.trim().is_empty() {
        return Err(MappingError::new("name", "must not be empty"));
    }
    let cur = currency(cx, p.ferry_currency.as_deref(), "client.currency")?;
    let billing_type = match (p.is_billable, p.is_fixed_fee) {
        (Some(false), _) => BillingType::NonBillable,
        (_, Some(true)) => BillingType::FixedFee,
        _ => BillingType::TimeAndMaterials,
    };
    // A budget in money ("project_cost"); hour budgets are not money.
    let budget = match p.budget_by.as_deref() {
        Some("project_cost") => p.budget.map(|b| Money::new(b, cur)),
        _ => None,
    }
    .or_else(|| {
        (billing_type == BillingType::FixedFee)
            .then(|| p.fee.map(|f| Money::new(f, cur)))
            .flatten()
    });
    let tasks: Vec<Task> = p
        .ferry_tasks
        .iter()
        .map(|a| Task {
            id: a.task.id.to_string(),
            name: a.task.name.clone().unwrap_or_default(),
            billable: a.billable.unwrap_or(true),
        })
        .collect();
    let phases = if tasks.is_empty() {
        Vec::new()
    } else {
        vec![Phase {
            id: "tasks".into(),
            name: "Tasks".into(),
            tasks,
        }]
    };
    // The project's version is the latest change of it or its task
    // assignments, which the connector works out when it adds them.
    let updated = p.ferry_updated_at.as_deref().unwrap_or(&p.updated_at);
    Ok(Project {
        meta: meta(cx, p.id, updated, deleted)?,
        name,
        code: p.code.clone().filter(|c| !c.is_empty()),
        account: required(cx, &p.client, "client")?,
        billing_type,
        status: match p.is_active {
            Some(false) => ProjectStatus::Closed,
            _ => ProjectStatus::Open,
        },
        currency: cur,
        budget,
        start: p
            .starts_on
            .as_deref()
            .map(|d| date(Some(d), "starts_on"))
            .transpose()?,
        end: p
            .ends_on
            .as_deref()
            .map(|d| date(Some(d), "ends_on"))
            .transpose()?,
        manager: None,
        dimensions: Dimensions::default(),
        phases,
        milestones: Vec::new(),
        custom_fields: Default::default(),
    })
}

/// A user → a resource. Rates are in the firm's currency.
pub fn user(cx: &MapContext<'_>, u: &raw::User, deleted: bool) -> Result<Resource, MappingError> {
    let name = [&u.first_name, &u.last_name]
        .into_iter()
        .flatten()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let name = if name.is_empty() {
        u.email.clone().unwrap_or_default()
    } else {
        name
    };
    if name.is_empty() {
        return Err(MappingError::new(
            "first_name",
            "a user needs a name or an email",
        ));
    }
    let money = |d: Decimal| Money::new(d, cx.home_currency);
    Ok(Resource {
        meta: meta(cx, u.id, &u.updated_at, deleted)?,
        name,
        email: u.email.clone(),
        default_role: None,
        cost_rate: u.cost_rate.map(money),
        bill_rate: u.default_hourly_rate.map(money),
        status: active(u.is_active),
        dimensions: Dimensions::default(),
    })
}

/// A time entry. The task is the work type; the rate is in the client's currency.
pub fn time_entry(
    cx: &MapContext<'_>,
    t: &raw::TimeEntry,
    deleted: bool,
) -> Result<TimeEntry, MappingError> {
    let cur = currency(cx, t.ferry_currency.as_deref(), "client.currency")?;
    let hours = t
        .hours
        .ok_or_else(|| MappingError::new("hours", "is required"))?;
    let approval = if t.is_running == Some(true) {
        // A running timer's hours are still growing: never approved.
        ApprovalStatus::Draft
    } else {
        approval(cx, t.is_closed)
    };
    Ok(TimeEntry {
        meta: meta(cx, t.id, &t.updated_at, deleted)?,
        resource: required(cx, &t.user, "user")?,
        project: t.project.as_ref().map(|p| named(cx, p)),
        task: t.task.as_ref().map(|x| named(cx, x)),
        account: t.client.as_ref().map(|c| named(cx, c)),
        role: None,
        work_type: t.task.as_ref().and_then(|x| x.name.clone()),
        // Harvest's spent_date is already the day the person logged it for.
        date: date(t.spent_date.as_deref(), "spent_date")?,
        started_at: None,
        hours,
        billable: t.billable.unwrap_or(false),
        approval,
        bill_rate: t.billable_rate.map(|r| Money::new(r, cur)),
        cost_rate: t.cost_rate.map(|r| Money::new(r, cx.home_currency)),
        notes: t.notes.clone().filter(|n| !n.is_empty()),
        invoice: t
            .invoice
            .as_ref()
            .and_then(|i| i.get("id"))
            .and_then(Value::as_i64)
            .map(|id| SourceRef::new(cx.system.clone(), id.to_string())),
        dimensions: Dimensions::default(),
    })
}

/// An expense, in its client's currency.
pub fn expense(
    cx: &MapContext<'_>,
    e: &raw::Expense,
    deleted: bool,
) -> Result<Expense, MappingError> {
    let cur = currency(cx, e.ferry_currency.as_deref(), "client.currency")?;
    let amount = e
        .total_cost
        .ok_or_else(|| MappingError::new("total_cost", "is required"))?;
    Ok(Expense {
        meta: meta(cx, e.id, &e.updated_at, deleted)?,
        resource: required(cx, &e.user, "user")?,
        project: e.project.as_ref().map(|p| named(cx, p)),
        account: e.client.as_ref().map(|c| named(cx, c)),
        date: date(e.spent_date.as_deref(), "spent_date")?,
        category: e
            .expense_category
            .as_ref()
            .and_then(|c| c.name.clone())
            .ok_or_else(|| MappingError::new("expense_category.name", "is required"))?,
        amount: Money::new(amount, cur),
        tax: None,
        billable: e.billable.unwrap_or(false),
        approval: approval(cx, e.is_closed),
        notes: e.notes.clone().filter(|n| !n.is_empty()),
        dimensions: Dimensions::default(),
    })
}

/// Harvest's invoice states onto the canonical lifecycle. `closed` is an
/// invoice written off: it no longer counts.
fn invoice_status(state: Option<&str>) -> Result<InvoiceStatus, MappingError> {
    Ok(match state {
        Some("draft") => InvoiceStatus::Draft,
        Some("open") => InvoiceStatus::Authorised,
        Some("paid") => InvoiceStatus::Paid,
        Some("closed") => InvoiceStatus::Voided,
        other => {
            return Err(
                MappingError::new("state", "must be draft, open, paid or closed")
                    .with_value(other.unwrap_or("(none)")),
            );
        }
    })
}

/// The tax a line is subject to: Harvest's first tax, its second, both, or
/// none (a template maps each to an ERP tax type).
fn line_tax(l: &raw::LineItem) -> String {
    match (l.taxed == Some(true), l.taxed2 == Some(true)) {
        (true, true) => "tax+tax2",
        (true, false) => "tax",
        (false, true) => "tax2",
        (false, false) => "none",
    }
    .to_string()
}

/// An invoice. `amount` is Harvest's total (after discount, with tax); the
/// discount becomes a line of its own so the lines add up to the subtotal.
pub fn invoice(
    cx: &MapContext<'_>,
    i: &raw::Invoice,
    deleted: bool,
) -> Result<Invoice, MappingError> {
    let cur = currency(cx, i.currency.as_deref(), "currency")?;
    let money = |d: Decimal| Money::new(d, cur);
    let mut lines = Vec::with_capacity(i.line_items.len() + 1);
    for (n, l) in i.line_items.iter().enumerate() {
        let field = |f: &str| format!("line_items[{n}].{f}");
        let amount = l
            .amount
            .ok_or_else(|| MappingError::new(field("amount"), "is required"))?;
        let quantity = l.quantity.unwrap_or(Decimal::ONE);
        lines.push(InvoiceLine {
            kind: match l.kind.as_deref() {
                Some("Service") => LineKind::Time,
                Some("Product") => LineKind::Product,
                _ => LineKind::Other,
            },
            description: l.description.clone().unwrap_or_default(),
            quantity,
            unit_price: money(l.unit_price.unwrap_or(amount)),
            amount: money(amount),
            // Harvest's kinds (Service, Product, …) are not ERP items.
            item_code: None,
            account_code: None,
            tax_code: Some(line_tax(l)),
            tax_amount: None,
            dimensions: Dimensions::default(),
        });
    }
    let discount = i.discount_amount.unwrap_or_default();
    if !discount.is_zero() {
        lines.push(InvoiceLine {
            kind: LineKind::Other,
            description: "Discount".into(),
            quantity: Decimal::ONE,
            unit_price: money(-discount),
            amount: money(-discount),
            item_code: None,
            account_code: None,
            tax_code: None,
            tax_amount: None,
            dimensions: Dimensions::default(),
        });
    }
    let total = i
        .amount
        .ok_or_else(|| MappingError::new("amount", "is required"))?;
    let tax = i.tax_amount.unwrap_or_default() + i.tax2_amount.unwrap_or_default();
    let subtotal = total - tax;
    let sum: Decimal = lines.iter().map(|l| l.amount.amount).sum();
    if sum != subtotal {
        return Err(MappingError::new(
            "line_items",
            format!("lines add up to {sum} but the invoice's amount before tax is {subtotal}"),
        ));
    }
    let status = if deleted {
        InvoiceStatus::Voided
    } else {
        invoice_status(i.state.as_deref())?
    };
    let due = i.due_amount;
    Ok(Invoice {
        meta: meta(cx, i.id, &i.updated_at, deleted)?,
        kind: InvoiceKind::Invoice,
        number: i.number.clone(),
        account: required(cx, &i.client, "client")?,
        project: i
            .line_items
            .iter()
            .find_map(|l| l.project.as_ref())
            .map(|p| named(cx, p)),
        issue_date: date(i.issue_date.as_deref(), "issue_date")?,
        due_date: i
            .due_date
            .as_deref()
            .map(|d| date(Some(d), "due_date"))
            .transpose()?,
        currency: cur,
        lines,
        subtotal: money(subtotal),
        tax_total: money(tax),
        total: money(total),
        status,
        reference: i
            .purchase_order
            .clone()
            .or_else(|| i.subject.clone())
            .filter(|r| !r.is_empty()),
        amount_paid: due.map(|d| money(total - d)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(approvals: bool) -> HarvestConfig {
        toml::from_str::<HarvestConfig>(&format!(
            "account_id = \"1\"\nhome_currency = \"USD\"\napprovals = {approvals}"
        ))
        .expect("config")
    }

    fn map(approvals: bool, domain: Domain, raw: Value) -> Result<CanonicalRecord, MappingError> {
        let tenant = TenantId::parse("t").expect("t");
        let system = SystemId::parse("harvest").expect("s");
        let cfg = cfg(approvals);
        let cx = MapContext {
            tenant: &tenant,
            system: &system,
            home_currency: Currency::parse("USD").expect("usd"),
            cfg: &cfg,
        };
        let rec = SourceRecord {
            domain,
            id: raw["id"].to_string(),
            version: ferry_canon::SourceVersion::at(
                instant("2031-01-01T00:00:00Z", "t").expect("t"),
            ),
            deleted: false,
            raw,
        };
        to_canonical(&cx, &rec)
    }

    fn entry(patch: Value) -> Value {
        let mut e = json!({ "id": 9, "spent_date": "2031-03-02", "user": { "id": 1, "name": "Kim" },
            "client": { "id": 5, "name": "ABC" }, "project": { "id": 7, "name": "Web" },
            "task": { "id": 3, "name": "Design" }, "hours": 2.11, "is_closed": true,
            "is_running": false, "billable": true, "billable_rate": 100.0,
            "updated_at": "2031-03-02T10:00:00Z", "ferry_currency": "EUR" });
        e.as_object_mut()
            .expect("object")
            .extend(patch.as_object().expect("object").clone());
        e
    }

    fn time(r: Result<CanonicalRecord, MappingError>) -> TimeEntry {
        match r.expect("maps") {
            CanonicalRecord::TimeEntries(t) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn time_is_priced_in_its_clients_currency_with_exact_hours() {
        let t = time(map(true, Domain::TimeEntries, entry(json!({}))));
        assert_eq!(t.hours, Decimal::new(211, 2));
        assert_eq!(t.bill_rate.expect("rate").currency.code(), "EUR");
        assert_eq!(t.work_type.as_deref(), Some("Design"));
        assert_eq!(t.approval, ApprovalStatus::Approved);
        let t = time(map(
            true,
            Domain::TimeEntries,
            entry(json!({ "ferry_currency": null })),
        ));
        assert_eq!(
            t.bill_rate.expect("rate").currency.code(),
            "USD",
            "no client currency: the firm's"
        );
        let bad = map(
            true,
            Domain::TimeEntries,
            entry(json!({ "ferry_currency": "XYZ" })),
        );
        assert!(
            bad.is_err(),
            "an unknown currency is an error, never the home currency"
        );
    }

    #[test]
    fn only_approved_stopped_time_counts_as_approved_where_the_account_approves() {
        let open = entry(json!({ "is_closed": false }));
        assert_eq!(
            time(map(true, Domain::TimeEntries, open.clone())).approval,
            ApprovalStatus::Submitted
        );
        assert_eq!(
            time(map(false, Domain::TimeEntries, open)).approval,
            ApprovalStatus::Approved
        );
        let running = entry(json!({ "is_running": true }));
        assert_eq!(
            time(map(false, Domain::TimeEntries, running)).approval,
            ApprovalStatus::Draft
        );
        assert!(map(true, Domain::TimeEntries, entry(json!({ "hours": null }))).is_err());
        assert!(
            map(
                true,
                Domain::TimeEntries,
                entry(json!({ "spent_date": "03/02/2031" }))
            )
            .is_err()
        );
    }

    fn invoice(patch: Value) -> Value {
        let mut i = json!({ "id": 4, "client": { "id": 5, "name": "ABC" }, "number": "1001",
            "amount": 1045.0, "due_amount": 1045.0, "tax_amount": 95.0, "tax2_amount": 0.0,
            "discount_amount": 50.0, "currency": "EUR", "state": "open", "issue_date": "2031-03-31",
            "due_date": "2031-04-30", "updated_at": "2031-03-31T10:00:00Z",
            "line_items": [{ "kind": "Service", "description": "Design", "quantity": 10.0,
                "unit_price": 100.0, "amount": 1000.0, "taxed": true, "taxed2": false,
                "project": { "id": 7, "name": "Web" } }] });
        i.as_object_mut()
            .expect("object")
            .extend(patch.as_object().expect("object").clone());
        i
    }

    fn inv(r: Result<CanonicalRecord, MappingError>) -> Invoice {
        match r.expect("maps") {
            CanonicalRecord::Invoices(i) => i,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_invoices_discount_is_a_line_and_its_lines_add_up_to_its_amount_before_tax() {
        let i = inv(map(true, Domain::Invoices, invoice(json!({}))));
        assert_eq!(i.lines.len(), 2);
        assert_eq!(i.lines[1].amount.amount, Decimal::new(-50, 0));
        assert_eq!(i.subtotal.amount, Decimal::new(950, 0));
        assert_eq!(i.tax_total.amount, Decimal::new(95, 0));
        assert_eq!(i.total.currency.code(), "EUR");
        assert_eq!(i.lines[0].tax_code.as_deref(), Some("tax"));
        assert_eq!(i.status, InvoiceStatus::Authorised);
        let short = invoice(json!({ "amount": 1046.0 }));
        assert!(
            map(true, Domain::Invoices, short).is_err(),
            "a cent out is an error, not a guess"
        );
        let closed = inv(map(
            true,
            Domain::Invoices,
            invoice(json!({ "state": "closed" })),
        ));
        assert_eq!(closed.status, InvoiceStatus::Voided);
        assert!(
            map(
                true,
                Domain::Invoices,
                invoice(json!({ "state": "archived" }))
            )
            .is_err()
        );
        let paid = inv(map(
            true,
            Domain::Invoices,
            invoice(json!({ "due_amount": 45.0 })),
        ));
        assert_eq!(
            paid.amount_paid.expect("paid").amount,
            Decimal::new(1000, 0)
        );
    }
}
