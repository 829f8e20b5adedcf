//! What a template's rules resolve for one record: whether it is skipped (the
//! gate), a value source's value, its dimensions and its tax code, and the tax
//! the ERP will add by its own rules.

use super::*;

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

pub(crate) fn map_tax_code(template: &Template, code: &str) -> Result<String, Violation> {
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
