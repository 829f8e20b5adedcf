//! ConnectWise raw records → canonical records. Pure and fallible: a missing
//! required field is a [`MappingError`] naming the field, never a default.
//!
//! Size: about 470 lines of conversions, one per ConnectWise record kind, then
//! their tests.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::*;
use ferry_core::MappingError;
use ferry_core::ports::SourceRecord;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;

use super::raw;

/// What the mapper needs besides the record.
#[derive(Debug, Clone)]
pub struct MapContext<'a> {
    pub tenant: &'a TenantId,
    pub system: &'a SystemId,
    /// The PSA company's home currency, for records that carry none (time rates).
    pub home_currency: Currency,
}

fn req<T>(v: Option<T>, field: &str) -> Result<T, MappingError> {
    v.ok_or_else(|| MappingError::new(field, "is required"))
}

/// Parses a ConnectWise instant (`2026-11-02T09:00:00Z`).
pub fn instant(s: &str, field: &str) -> Result<DateTime<Utc>, MappingError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| MappingError::new(field, "must be an ISO 8601 timestamp").with_value(s))
}

/// The accounting date of a ConnectWise timestamp or date.
pub fn date(s: &str, field: &str) -> Result<NaiveDate, MappingError> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d);
    }
    instant(s, field).map(|t| t.date_naive())
}

fn currency(
    r: &Option<raw::CurrencyReference>,
    fallback: Currency,
    field: &str,
) -> Result<Currency, MappingError> {
    match r.as_ref().and_then(|c| c.currency_code.as_deref()) {
        Some(code) => Currency::parse(code)
            .map_err(|e| MappingError::new(field, e.to_string()).with_value(code)),
        None => Ok(fallback),
    }
}

/// The record's version from `_info.lastUpdated`.
pub fn version(info: &Option<raw::Info>) -> Result<SourceVersion, MappingError> {
    let s = req(
        info.as_ref().and_then(|i| i.last_updated.as_deref()),
        "_info.lastUpdated",
    )?;
    Ok(SourceVersion::at(instant(s, "_info.lastUpdated")?))
}

fn id(v: Option<i64>, field: &str) -> Result<String, MappingError> {
    req(v, field).map(|i| i.to_string())
}

fn reference(
    cx: &MapContext<'_>,
    r: &Option<raw::Reference>,
    field: &str,
) -> Result<Option<SourceRef>, MappingError> {
    let Some(r) = r else { return Ok(None) };
    let id = match (r.id, &r.identifier) {
        (Some(i), _) => i.to_string(),
        (None, Some(ident)) => ident.clone(),
        (None, None) => return Err(MappingError::new(format!("{field}.id"), "is required")),
    };
    let mut s = SourceRef::new(cx.system.clone(), id);
    s.name = r.name.clone();
    Ok(Some(s))
}

fn dimension(r: &Option<raw::Reference>) -> Option<DimensionValue> {
    r.as_ref().and_then(|r| {
        let code = r.identifier.clone().or_else(|| r.name.clone())?;
        Some(DimensionValue {
            code,
            name: r.name.clone(),
        })
    })
}

fn meta(cx: &MapContext<'_>, id: String, version: SourceVersion, deleted: bool) -> RecordMeta {
    RecordMeta {
        tenant: cx.tenant.clone(),
        source: SourceRef::new(cx.system.clone(), id),
        refs: ExternalRefs::new(),
        source_version: version,
        deleted,
    }
}

fn parse<T: DeserializeOwned>(v: &serde_json::Value, what: &str) -> Result<T, MappingError> {
    T::deserialize(v)
        .map_err(|e| MappingError::new(what, format!("does not match the ConnectWise shape: {e}")))
}

/// Approval state from the ConnectWise time/expense status workflow.
pub fn approval(status: Option<&str>) -> Result<ApprovalStatus, MappingError> {
    Ok(match status.unwrap_or("Open") {
        "Open" => ApprovalStatus::Draft,
        "PendingApproval" | "PendingProjectApproval" | "ApprovedByTierOne" | "ErrorsCorrected" => {
            ApprovalStatus::Submitted
        }
        "ApprovedByTierTwo" | "ReadyToBill" | "Billed" | "BilledAgreement" => {
            ApprovalStatus::Approved
        }
        "Rejected" | "RejectBySecondTier" | "WrittenOff" => ApprovalStatus::Rejected,
        other => {
            return Err(
                MappingError::new("status", "is not a known ConnectWise approval status")
                    .with_value(other),
            );
        }
    })
}

fn billable(option: Option<&str>) -> Result<bool, MappingError> {
    match option {
        Some("Billable") => Ok(true),
        Some("DoNotBill") | Some("NoCharge") | Some("NoDefault") => Ok(false),
        Some(other) => Err(
            MappingError::new("billableOption", "is not a known billable option").with_value(other),
        ),
        None => Err(MappingError::new("billableOption", "is required")),
    }
}

/// Maps any ConnectWise record to its canonical form.
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
            company(cx, &parse(&rec.raw, "company")?, deleted).map(CanonicalRecord::Customers)
        }
        Domain::Projects => {
            project(cx, &parse(&rec.raw, "project")?, deleted).map(CanonicalRecord::Projects)
        }
        Domain::TimeEntries => time_entry(cx, &parse(&rec.raw, "time entry")?, deleted)
            .map(CanonicalRecord::TimeEntries),
        Domain::Expenses => {
            expense(cx, &parse(&rec.raw, "expense entry")?, deleted).map(CanonicalRecord::Expenses)
        }
        Domain::Invoices | Domain::CreditMemos => {
            let inv = invoice(cx, &parse(&rec.raw, "invoice")?, deleted)?;
            Ok(match inv.kind {
                InvoiceKind::CreditMemo => CanonicalRecord::CreditMemos(inv),
                InvoiceKind::Invoice => CanonicalRecord::Invoices(inv),
            })
        }
        other => Err(MappingError::new(
            "domain",
            format!("ConnectWise does not provide {other}"),
        )),
    }
}

/// Company → customer account.
pub fn company(
    cx: &MapContext<'_>,
    c: &raw::Company,
    deleted: bool,
) -> Result<Account, MappingError> {
    let name = req(c.name.clone(), "name")?;
    if name.trim().is_empty() {
        return Err(MappingError::new("name", "must not be empty"));
    }
    let status = match c.status.as_ref().and_then(|s| s.name.as_deref()) {
        Some("Inactive") | Some("Not-Approved") | Some("Credit Hold") => ActiveStatus::Inactive,
        _ => ActiveStatus::Active,
    };
    let lines: Vec<String> = [&c.address_line1, &c.address_line2]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let address = (!lines.is_empty() || c.city.is_some()).then(|| Address {
        lines,
        city: c.city.clone(),
        region: c.state.clone(),
        postal_code: c.zip.clone(),
        country: c.country.as_ref().and_then(|r| r.name.clone()),
    });
    let terms = c
        .billing_terms
        .as_ref()
        .and_then(|t| t.name.as_deref())
        .and_then(|n| n.trim_start_matches("Net").trim().parse::<u32>().ok());
    Ok(Account {
        meta: meta(
            cx,
            id(c.id, "id")?,
            version(&c.info)?,
            deleted || c.deleted_flag == Some(true),
        ),
        name: name.trim().to_string(),
        code: c.identifier.clone(),
        status,
        currency: c
            .currency
            .as_ref()
            .map(|_| currency(&c.currency, cx.home_currency, "currency.currencyCode"))
            .transpose()?,
        tax_code: c.tax_code.as_ref().and_then(|t| t.name.clone()),
        billing_address: address,
        email: c.invoice_to_email_address.clone(),
        phone: c.phone_number.clone(),
        website: c.website.clone(),
        payment_terms_days: terms,
        dimensions: Dimensions::default(),
    })
}

/// Project → project.
pub fn project(
    cx: &MapContext<'_>,
    p: &raw::Project,
    deleted: bool,
) -> Result<Project, MappingError> {
    let billing_type = match (
        p.r#type.as_ref().and_then(|t| t.name.as_deref()),
        p.billing_method.as_deref(),
    ) {
        (Some("Milestone"), _) => BillingType::Milestone,
        (Some("Internal"), _) => BillingType::NonBillable,
        (_, Some("ActualRates")) | (_, Some("OverrideRate")) | (_, Some("NotToExceed")) => {
            BillingType::TimeAndMaterials
        }
        (_, Some("FixedFee")) => BillingType::FixedFee,
        (_, Some(other)) => {
            return Err(
                MappingError::new("billingMethod", "is not a known billing method")
                    .with_value(other),
            );
        }
        (_, None) => return Err(MappingError::new("billingMethod", "is required")),
    };
    let status = if p.closed_flag == Some(true) {
        ProjectStatus::Closed
    } else if p.status.as_ref().and_then(|s| s.name.as_deref()) == Some("On-Hold") {
        ProjectStatus::OnHold
    } else {
        ProjectStatus::Open
    };
    let cur = currency(&p.currency, cx.home_currency, "currency.currencyCode")?;
    let mut custom_fields = BTreeMap::new();
    for f in p.custom_fields.iter().flatten() {
        if let (Some(caption), Some(value)) = (&f.caption, &f.value) {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            custom_fields.insert(caption.clone(), text);
        }
    }
    Ok(Project {
        meta: meta(cx, id(p.id, "id")?, version(&p.info)?, deleted),
        name: req(p.name.clone(), "name")?,
        code: None,
        account: req(reference(cx, &p.company, "company")?, "company")?,
        billing_type,
        status,
        currency: cur,
        budget: p.billing_amount.map(|a| Money::new(a, cur)),
        start: p
            .estimated_start
            .as_deref()
            .map(|s| date(s, "estimatedStart"))
            .transpose()?,
        end: p
            .estimated_end
            .as_deref()
            .map(|s| date(s, "estimatedEnd"))
            .transpose()?,
        manager: reference(cx, &p.manager, "manager")?,
        dimensions: Dimensions {
            department: dimension(&p.department),
            location: dimension(&p.location),
            ..Dimensions::default()
        },
        phases: Vec::new(),
        milestones: Vec::new(),
        custom_fields,
    })
}

/// Time entry → time entry.
pub fn time_entry(
    cx: &MapContext<'_>,
    t: &raw::TimeEntry,
    deleted: bool,
) -> Result<TimeEntry, MappingError> {
    let start = req(t.time_start.as_deref(), "timeStart")?;
    let hours = req(t.actual_hours, "actualHours")?;
    let cur = currency(&t.currency, cx.home_currency, "currency.currencyCode")?;
    let resource = req(reference(cx, &t.member, "member")?, "member")?;
    let project = match (&t.project, t.charge_to_type.as_deref()) {
        (Some(_), _) => reference(cx, &t.project, "project")?,
        (None, Some("ProjectTicket")) => {
            return Err(MappingError::new(
                "project",
                "is required when chargeToType is ProjectTicket",
            ));
        }
        _ => None,
    };
    Ok(TimeEntry {
        meta: meta(cx, id(t.id, "id")?, version(&t.info)?, deleted),
        resource,
        project,
        task: None,
        account: reference(cx, &t.company, "company")?,
        role: t.work_role.as_ref().and_then(|r| r.name.clone()),
        work_type: t.work_type.as_ref().and_then(|r| r.name.clone()),
        // The UTC date until the template's time zone makes it the firm's.
        date: date(start, "timeStart")?,
        started_at: instant(start, "timeStart").ok(),
        hours,
        billable: billable(t.billable_option.as_deref())?,
        approval: approval(t.status.as_deref())?,
        bill_rate: t.hourly_rate.map(|r| Money::new(r, cur)),
        cost_rate: None,
        notes: t.notes.clone(),
        invoice: reference(cx, &t.invoice, "invoice")?,
        dimensions: Dimensions::default(),
    })
}

/// Expense entry → expense.
pub fn expense(
    cx: &MapContext<'_>,
    e: &raw::ExpenseEntry,
    deleted: bool,
) -> Result<Expense, MappingError> {
    let cur = currency(&e.currency, cx.home_currency, "currency.currencyCode")?;
    let amount = req(e.amount, "amount")?;
    let tax: Decimal = e.taxes.iter().flatten().filter_map(|t| t.amount).sum();
    Ok(Expense {
        meta: meta(cx, id(e.id, "id")?, version(&e.info)?, deleted),
        resource: req(reference(cx, &e.member, "member")?, "member")?,
        project: reference(cx, &e.project, "project")?,
        account: reference(cx, &e.company, "company")?,
        date: date(req(e.date.as_deref(), "date")?, "date")?,
        category: req(e.r#type.as_ref().and_then(|t| t.name.clone()), "type.name")?,
        amount: Money::new(amount, cur),
        tax: (!tax.is_zero()).then(|| Money::new(tax, cur)),
        billable: billable(e.billable_option.as_deref())?,
        approval: approval(e.status.as_deref())?,
        notes: e.notes.clone(),
        dimensions: Dimensions::default(),
    })
}

/// Invoice (or credit memo) → invoice. ConnectWise invoices carry totals by
/// category rather than lines; each non-zero category becomes a line.
pub fn invoice(
    cx: &MapContext<'_>,
    i: &raw::Invoice,
    deleted: bool,
) -> Result<Invoice, MappingError> {
    let kind = match i.r#type.as_deref() {
        Some("CreditMemo") => InvoiceKind::CreditMemo,
        Some(_) => InvoiceKind::Invoice,
        None => return Err(MappingError::new("type", "is required")),
    };
    let cur = currency(&i.currency, cx.home_currency, "currency.currencyCode")?;
    // ConnectWise keeps a credit memo's amounts below zero; canonical amounts
    // read as the document does (a credit of 50 is 50). Nothing else changes
    // sign: a standard invoice below zero stays below zero.
    let sign = match kind {
        InvoiceKind::CreditMemo => -Decimal::ONE,
        InvoiceKind::Invoice => Decimal::ONE,
    };
    let money = |d: Decimal| Money::new(sign * d, cur);
    let tax_code = i.tax_code.as_ref().and_then(|t| t.name.clone());
    let mut lines = Vec::new();
    let categories = [
        (i.agreement_amount, LineKind::Fee, "Agreement"),
        (i.service_total, LineKind::Fee, "Services"),
        (i.expense_total, LineKind::Expense, "Expenses"),
        (i.product_total, LineKind::Product, "Products"),
    ];
    for (amount, kind, label) in categories {
        if let Some(a) = amount.filter(|a| !a.is_zero()) {
            lines.push(InvoiceLine {
                kind,
                description: format!(
                    "{label} — {}",
                    i.invoice_number.as_deref().unwrap_or("invoice")
                ),
                quantity: Decimal::ONE,
                unit_price: money(a),
                amount: money(a),
                item_code: None,
                account_code: None,
                tax_code: tax_code.clone(),
                tax_amount: None,
                dimensions: Dimensions::default(),
            });
        }
    }
    let subtotal = req(i.subtotal, "subtotal")?;
    let sales_tax = i.sales_tax.unwrap_or_default();
    let total = req(i.total, "total")?;
    if lines.is_empty() && !subtotal.is_zero() {
        return Err(MappingError::new(
            "serviceTotal",
            "invoice has a subtotal but no category totals to build lines from",
        )
        .with_value(subtotal));
    }
    let paid = i.payments.unwrap_or_default();
    let status = if deleted {
        InvoiceStatus::Voided
    } else if i.balance.is_some_and(|b| b.is_zero()) && !total.is_zero() {
        InvoiceStatus::Paid
    } else {
        InvoiceStatus::Authorised
    };
    let project = match (i.apply_to_type.as_deref(), i.apply_to_id, &i.project) {
        (_, _, Some(_)) => reference(cx, &i.project, "project")?,
        (Some("Project"), Some(pid), None) => {
            Some(SourceRef::new(cx.system.clone(), pid.to_string()))
        }
        _ => None,
    };
    Ok(Invoice {
        meta: meta(cx, id(i.id, "id")?, version(&i.info)?, deleted),
        kind,
        number: i.invoice_number.clone(),
        account: req(reference(cx, &i.company, "company")?, "company")?,
        project,
        issue_date: date(req(i.date.as_deref(), "date")?, "date")?,
        due_date: i
            .due_date
            .as_deref()
            .map(|d| date(d, "dueDate"))
            .transpose()?,
        currency: cur,
        lines,
        subtotal: money(subtotal),
        tax_total: money(sales_tax),
        total: money(total),
        status,
        reference: i.reference.clone(),
        // Payments applied, as ConnectWise counts them (positive for either kind).
        amount_paid: Some(Money::new(paid, cur)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx<'a>(t: &'a TenantId, s: &'a SystemId) -> MapContext<'a> {
        MapContext {
            tenant: t,
            system: s,
            home_currency: Currency::parse("USD").unwrap(),
        }
    }

    fn rec(domain: Domain, raw: serde_json::Value) -> SourceRecord {
        SourceRecord {
            domain,
            id: raw["id"].to_string(),
            version: SourceVersion::at(
                DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z")
                    .expect("valid")
                    .with_timezone(&Utc),
            ),
            deleted: false,
            raw,
        }
    }

    #[test]
    fn a_time_entry_maps_hours_rate_and_approval_exactly() {
        let t = TenantId::parse("acme").unwrap();
        let s = SystemId::parse("connectwise").unwrap();
        let raw = json!({
            "id": 501, "member": {"id": 7, "identifier": "jdoe", "name": "Jane Doe"},
            "company": {"id": 19, "identifier": "Globex", "name": "Globex"},
            "project": {"id": 3, "name": "ERP rollout"}, "chargeToType": "ProjectTicket",
            "workRole": {"id": 2, "name": "Senior Consultant"},
            "timeStart": "2026-11-03T14:00:00Z", "actualHours": 7.75, "hourlyRate": 187.50,
            "billableOption": "Billable", "status": "ApprovedByTierTwo",
            "_info": {"lastUpdated": "2026-11-03T18:00:00Z"}
        });
        let CanonicalRecord::TimeEntries(e) =
            to_canonical(&cx(&t, &s), &rec(Domain::TimeEntries, raw)).unwrap()
        else {
            panic!("time entry expected")
        };
        assert_eq!(e.hours, Decimal::new(775, 2));
        assert_eq!(e.bill_rate.unwrap().amount, Decimal::new(18750, 2));
        assert_eq!(e.approval, ApprovalStatus::Approved);
        assert_eq!(e.date, NaiveDate::from_ymd_opt(2026, 11, 3).unwrap());
        assert_eq!(e.project.unwrap().key(), "connectwise:3");
        assert_eq!(e.role.as_deref(), Some("Senior Consultant"));
    }

    #[test]
    fn missing_or_unknown_fields_name_the_field() {
        let t = TenantId::parse("acme").unwrap();
        let s = SystemId::parse("connectwise").unwrap();
        let raw = json!({"id": 1, "member": {"id": 7}, "timeStart": "2026-11-03T14:00:00Z",
            "billableOption": "Billable", "_info": {"lastUpdated": "2026-11-03T18:00:00Z"}});
        let e = to_canonical(&cx(&t, &s), &rec(Domain::TimeEntries, raw)).unwrap_err();
        assert_eq!(e.field, "actualHours");
        let raw = json!({"id": 1, "member": {"id": 7}, "timeStart": "2026-11-03T14:00:00Z", "actualHours": 1,
            "billableOption": "Sometimes", "_info": {"lastUpdated": "2026-11-03T18:00:00Z"}});
        let e = to_canonical(&cx(&t, &s), &rec(Domain::TimeEntries, raw)).unwrap_err();
        assert_eq!(e.field, "billableOption");
        assert_eq!(e.value.as_deref(), Some("Sometimes"));
    }

    #[test]
    fn a_credit_memo_invoice_becomes_a_positive_credit_memo() {
        let t = TenantId::parse("acme").unwrap();
        let s = SystemId::parse("connectwise").unwrap();
        let raw = json!({"id": 90, "invoiceNumber": "CM-3", "type": "CreditMemo",
            "company": {"id": 19}, "date": "2026-11-20T00:00:00Z", "serviceTotal": -500.00,
            "subtotal": -500.00, "salesTax": 0, "total": -500.00, "balance": -500.00,
            "currency": {"currencyCode": "EUR"}, "_info": {"lastUpdated": "2026-11-20T10:00:00Z"}});
        let CanonicalRecord::CreditMemos(i) =
            to_canonical(&cx(&t, &s), &rec(Domain::Invoices, raw)).unwrap()
        else {
            panic!("credit memo expected")
        };
        assert_eq!(i.total.amount, Decimal::new(50000, 2));
        assert_eq!(i.currency.code(), "EUR");
        assert_eq!(i.lines.len(), 1);
    }

    #[test]
    fn a_standard_invoice_below_zero_keeps_its_sign() {
        let t = TenantId::parse("acme").unwrap();
        let s = SystemId::parse("connectwise").unwrap();
        let raw = json!({"id": 91, "invoiceNumber": "CW-91", "type": "Standard",
            "company": {"id": 19}, "date": "2026-11-20T00:00:00Z", "serviceTotal": -50.00,
            "subtotal": -50.00, "salesTax": -4.44, "total": -54.44, "balance": -54.44,
            "_info": {"lastUpdated": "2026-11-20T10:00:00Z"}});
        let CanonicalRecord::Invoices(i) =
            to_canonical(&cx(&t, &s), &rec(Domain::Invoices, raw)).unwrap()
        else {
            panic!("invoice expected")
        };
        assert_eq!(i.subtotal.amount, Decimal::new(-5000, 2));
        assert_eq!(i.tax_total.amount, Decimal::new(-444, 2));
        assert_eq!(i.total.amount, Decimal::new(-5444, 2));
        assert_eq!(i.lines[0].amount.amount, Decimal::new(-5000, 2));
    }
}
