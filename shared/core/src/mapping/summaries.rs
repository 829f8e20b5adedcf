//! Lines folded into summary documents (one per group), and a record as its
//! own single-line invoice.

use super::*;

/// Where a record's line is summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryGroup {
    /// Staging group id: `<document>/<project key>/<YYYY-MM>`.
    pub group: String,
    pub doc_key: DocKey,
    pub reference: String,
    pub project: Option<SourceRef>,
    pub account: SourceRef,
    pub period_end: NaiveDate,
    pub currency: Currency,
}

pub(crate) fn month_end(d: NaiveDate) -> NaiveDate {
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
        doc_key: DocKey::summary(&group),
        reference: refs.make(&format!("S-{}", summary.document), &ref_parts.join("-")),
        group,
        project: project.cloned(),
        account: account.clone(),
        period_end: month_end(line.date),
        currency: line.currency,
    })
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
    let key = DocKey::line_invoice(rule.domain, &line.source_key);
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
