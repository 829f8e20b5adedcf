//! A record as an invoice line: its quantity, rate and amount in the currency
//! it is billed in, with the checks every line passes (hours, bounds, dates,
//! unit-price precision).

use super::*;

/// A record mapped to one ERP line, before summarising. Stored in staging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedLine {
    pub source_key: crate::keys::RecordKey,
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
pub(crate) fn check_hours(hours: Decimal) -> Result<(), Violation> {
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
pub(crate) fn customer_currency(related: &Related) -> Option<Currency> {
    related.account.as_ref().and_then(|a| a.currency)
}

/// A PSA amount in the currency it is billed in (`defaults.billing_currency`):
/// with `customer`, the customer's currency where it has one (the PSA's prices
/// are in it); with `record`, the amount's own, which must then be the customer's.
pub(crate) fn billed(
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
pub(crate) fn in_customer_currency(
    amount: Money,
    related: &Related,
    field: &str,
) -> Result<Money, Violation> {
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
pub(crate) fn check_amount(
    template: &Template,
    amount: Money,
    field: &str,
) -> Result<(), Violation> {
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

/// The template's rate for a time entry that carries none, in the template's currency.
pub(crate) fn template_rate(
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
    let source_key = crate::keys::RecordKey::new(record.domain(), &record.meta().source);
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
