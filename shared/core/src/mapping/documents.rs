//! Records that become documents of their own: customers (contacts), projects,
//! timesheet lines, PSA invoices and credit memos.

use super::*;

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
        key: DocKey::record(&RecordKey::new(Domain::Projects, &project.meta.source)),
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

/// A time entry → a timesheet line on its ERP project.
pub fn timesheet_doc(
    refs: &References,
    t: &ferry_canon::TimeEntry,
    project: Option<&ContactRef>,
    removed: bool,
) -> PostingDoc {
    let entry_key = crate::keys::RecordKey::new(Domain::TimeEntries, &t.meta.source);
    let person = t.resource.name.clone();
    let what = t
        .notes
        .clone()
        .or_else(|| t.work_type.clone())
        .unwrap_or_else(|| "time".to_string());
    PostingDoc {
        kind: DocKind::Timesheet,
        key: DocKey::timesheet(&entry_key),
        reference: refs.make("T", &t.meta.source.id),
        body: DocBody::Timesheet(TimesheetDoc {
            project_erp_id: project.map(|p| p.erp_id.clone()).unwrap_or_default(),
            project_key: project.map(|p| p.key.clone()),
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
    // An ERP that bills only by item (every line needs one) gets the rule's
    // item for a PSA line that names none.
    let default_item = match &rule.item {
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
        let item_code = l.item_code.clone().or_else(|| default_item.clone());
        if account_code.is_none() && item_code.is_none() {
            return Err(Violation::new(
                ReasonCode::UnmappedValue,
                Owner::Finance,
                format!("line {i} has neither an item nor an account, and the template gives no default item or account"),
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
            item_code,
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
        key: DocKey::record(&RecordKey::new(rule.domain, &invoice.meta.source)),
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
