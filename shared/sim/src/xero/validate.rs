//! Xero's validation of contacts, invoices and credit notes against the
//! organisation's setup (accounts, items, tax, tracking, currencies, lock date).

use super::*;

pub(super) fn validate_contact(
    org: &Org,
    item: &Value,
    create_only: bool,
) -> Result<Value, Vec<String>> {
    let mut errors = Vec::new();
    let existing_id = item["ContactID"].as_str().filter(|s| !s.is_empty());
    if create_only && existing_id.is_some() {
        errors.push("A contact cannot be updated with PUT; use POST".to_string());
    }
    let existing = existing_id.and_then(|id| org.contacts.get(id));
    if existing_id.is_some() && existing.is_none() {
        errors.push(format!(
            "Contact {} does not exist",
            existing_id.unwrap_or_default()
        ));
    }
    let mut c = existing.cloned().unwrap_or_else(
        || json!({ "ContactID": uuid(), "ContactStatus": "ACTIVE", "IsCustomer": true }),
    );
    if let Value::Object(fields) = item {
        for (k, v) in fields {
            c[k] = v.clone();
        }
    }
    let name = c["Name"].as_str().unwrap_or_default().trim().to_string();
    if name.is_empty() {
        errors.push("The contact name must be specified".into());
    }
    if name.len() > 255 {
        errors.push("The contact name must be 255 characters or fewer".into());
    }
    if c["ContactNumber"].as_str().is_some_and(|n| n.len() > 50) {
        errors.push("The contact number must be 50 characters or fewer".into());
    }
    let id = c["ContactID"].as_str().unwrap_or_default().to_string();
    if c["ContactStatus"] == "ACTIVE"
        && org.contacts.values().any(|o| {
            o["ContactID"].as_str() != Some(&id)
                && o["ContactStatus"] == "ACTIVE"
                && o["Name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&name))
        })
    {
        errors.push(format!("The contact name {name} is already assigned to another contact. The contact name must be unique across all active contacts."));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    c["UpdatedDateUTC"] = json!(now_ms());
    c["HasValidationErrors"] = json!(false);
    Ok(c)
}

pub(super) fn validate_document(
    inner: &Inner,
    org: &Org,
    coll: &str,
    item: &Value,
    create_only: bool,
    unit_dp: u32,
) -> Result<Value, Vec<String>> {
    let credit = coll == "CreditNotes";
    let id_field = if credit { "CreditNoteID" } else { "InvoiceID" };
    let table = if credit {
        &org.credit_notes
    } else {
        &org.invoices
    };
    let mut errors = Vec::new();
    let existing_id = item[id_field].as_str().filter(|s| !s.is_empty());
    if create_only && existing_id.is_some() {
        errors.push(format!(
            "{id_field} cannot be given when creating with PUT; use POST to update"
        ));
    }
    let existing = existing_id.and_then(|id| table.get(id));
    if existing_id.is_some() && existing.is_none() {
        return Err(vec![format!(
            "{} {} does not exist",
            if credit { "Credit note" } else { "Invoice" },
            existing_id.unwrap_or_default()
        )]);
    }
    let old_status = existing.map(|e| e["Status"].as_str().unwrap_or_default().to_string());
    let mut d = existing.cloned().unwrap_or_else(
        || json!({ id_field: uuid(), "Status": "DRAFT", "AmountPaid": num(Decimal::ZERO) }),
    );
    let new_status = item["Status"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| d["Status"].as_str().unwrap_or("DRAFT").to_string());
    // Status rules.
    match (old_status.as_deref(), new_status.as_str()) {
        (Some("PAID"), s) if s != "PAID" => errors.push(
            "This document cannot be edited as it has a payment or credit note allocated to it."
                .into(),
        ),
        (Some("DELETED") | Some("VOIDED"), _) => {
            errors.push("A deleted or voided document cannot be changed".into())
        }
        (Some("AUTHORISED"), "DELETED") => {
            errors.push("An authorised document cannot be deleted; void it instead".into())
        }
        // Xero's status changes: DRAFT -> SUBMITTED/AUTHORISED/DELETED,
        // SUBMITTED -> DRAFT/AUTHORISED/DELETED, AUTHORISED -> VOIDED; an approved
        // document never goes back (Xero's words for any other change).
        (Some("AUTHORISED"), "DRAFT" | "SUBMITTED") => {
            errors.push("Invoice not of valid status for modification".into())
        }
        (Some("DRAFT") | Some("SUBMITTED") | None, "VOIDED") => {
            errors.push("Only authorised documents can be voided; delete a draft instead".into())
        }
        _ => {}
    }
    if old_status.as_deref() == Some("AUTHORISED")
        && dec(&d["AmountPaid"]).is_some_and(|p| !p.is_zero())
        && new_status != "VOIDED"
        && item.get("LineItems").is_some()
    {
        errors.push(
            "This document cannot be edited as it has a payment or credit note allocated to it."
                .into(),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if matches!(new_status.as_str(), "DELETED" | "VOIDED") {
        if existing.is_none() {
            return Err(vec![
                "A document must exist before it can be deleted or voided".into(),
            ]);
        }
        d["Status"] = json!(new_status);
        d["UpdatedDateUTC"] = json!(now_ms());
        return Ok(d);
    }
    if let Value::Object(fields) = item {
        for (k, v) in fields {
            d[k] = v.clone();
        }
    }
    let ty = d["Type"].as_str().unwrap_or_default().to_string();
    let expected = if credit {
        ["ACCRECCREDIT", "ACCPAYCREDIT"].as_slice()
    } else {
        ["ACCREC", "ACCPAY"].as_slice()
    };
    if !expected.contains(&ty.as_str()) {
        errors.push(format!("Type must be one of {expected:?}"));
    }
    let contact = d
        .pointer("/Contact/ContactID")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match org.contacts.get(contact) {
        Some(c) if c["ContactStatus"] == "ACTIVE" => {
            d["Contact"] = json!({ "ContactID": contact, "Name": c["Name"] })
        }
        Some(_) => errors.push(
            "The contact is archived; documents cannot be created for archived contacts".into(),
        ),
        None => errors.push("A valid contact must be specified".into()),
    }
    if d["Reference"].as_str().is_some_and(|r| {
        inner
            .faults
            .lock()
            .expect("not poisoned")
            .refuse_references
            .contains(r)
    }) {
        errors.push(
            "Account code '200' has been archived, or has been deleted. Each line item must reference a valid account."
                .into(),
        );
    }
    let date = d["Date"]
        .as_str()
        .and_then(|s| where_clause::date_of(&json!(s)));
    match date {
        None => errors.push("Date must be a valid date".into()),
        Some(date) => {
            if org.period_lock.is_some_and(|l| date <= l) {
                errors.push(format!(
                    "The document date cannot be on or before the period lock date ({})",
                    org.period_lock.expect("checked").format("%d %b %Y")
                ));
            }
            d["Date"] = json!(ms_date(date));
            d["DateString"] = json!(format!("{date}T00:00:00"));
        }
    }
    if let Some(due) = d["DueDate"]
        .as_str()
        .and_then(|s| where_clause::date_of(&json!(s)))
    {
        d["DueDate"] = json!(ms_date(due));
        d["DueDateString"] = json!(format!("{due}T00:00:00"));
    }
    let currency = d["CurrencyCode"]
        .as_str()
        .unwrap_or(&inner.cfg.base_currency)
        .to_string();
    if !inner.cfg.currencies.contains(&currency) {
        errors.push(format!(
            "The currency {currency} is not enabled for this organisation"
        ));
    }
    d["CurrencyCode"] = json!(currency);
    if d["LineAmountTypes"]
        .as_str()
        .is_some_and(|l| l != "Exclusive")
    {
        errors.push("This simulator supports LineAmountTypes Exclusive only".into());
    }
    d["LineAmountTypes"] = json!("Exclusive");
    let lines = d["LineItems"].as_array().cloned().unwrap_or_default();
    if lines.is_empty() && new_status == "AUTHORISED" {
        errors.push("An authorised document must have at least one line item".into());
    }
    let mut subtotal = Decimal::ZERO;
    let mut by_tax: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut out_lines = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let n = i + 1;
        let qty = dec(&l["Quantity"]).unwrap_or(Decimal::ONE);
        let unit = match dec(&l["UnitAmount"]) {
            Some(u) => u.round_dp_with_strategy(
                unit_dp,
                rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            ),
            None => {
                errors.push(format!("Line {n}: UnitAmount must be a number"));
                continue;
            }
        };
        let amount = round2(qty * unit);
        if let Some(given) = dec(&l["LineAmount"])
            && given != amount
        {
            errors.push(format!(
                "Line {n}: the line amount {given} does not equal quantity × unit amount ({amount})"
            ));
        }
        let item_code = l["ItemCode"].as_str();
        let account = l["AccountCode"].as_str();
        if let Some(code) = item_code
            && !inner.cfg.items.contains(code)
        {
            errors.push(format!("Item code '{code}' is not valid"));
        }
        if let Some(code) = account
            && !inner.cfg.accounts.contains(code)
        {
            errors.push(format!(
                "Account code '{code}' is not a valid code for this document."
            ));
        }
        if item_code.is_none() && account.is_none() && new_status == "AUTHORISED" {
            errors.push(format!("Line {n}: an account code must be specified"));
        }
        let tax = l["TaxType"].as_str().unwrap_or("NONE").to_string();
        let rate = match inner.cfg.tax_rates.get(&tax) {
            Some(r) => *r,
            None => {
                errors.push(format!("The TaxType code '{tax}' does not exist or cannot be used for this type of transaction."));
                Decimal::ZERO
            }
        };
        for t in l["Tracking"].as_array().into_iter().flatten() {
            let (cat, opt) = (
                t["Name"].as_str().unwrap_or_default(),
                t["Option"].as_str().unwrap_or_default(),
            );
            if !inner.cfg.tracking.get(cat).is_some_and(|o| o.contains(opt)) {
                errors.push(format!(
                    "The tracking option '{opt}' for category '{cat}' could not be found"
                ));
            }
        }
        subtotal += amount;
        *by_tax.entry(tax.clone()).or_default() += amount;
        let mut ol = l.clone();
        ol["LineItemID"] = json!(
            l["LineItemID"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(uuid)
        );
        ol["Quantity"] = num(qty);
        ol["UnitAmount"] = num(unit);
        ol["LineAmount"] = num(amount);
        ol["TaxType"] = json!(tax);
        ol["TaxAmount"] = num(round2(amount * rate / Decimal::from(100)));
        out_lines.push(ol);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Tax rounded per tax type on the document total (the "round at the total" org setting).
    let tax: Decimal = by_tax
        .iter()
        .map(|(t, amt)| {
            round2(
                *amt * inner.cfg.tax_rates.get(t).copied().unwrap_or_default() / Decimal::from(100),
            )
        })
        .sum();
    let total = subtotal + tax;
    let paid = dec(&d["AmountPaid"]).unwrap_or_default();
    d["LineItems"] = Value::Array(out_lines);
    d["SubTotal"] = num(subtotal);
    d["TotalTax"] = num(tax);
    d["Total"] = num(total);
    d["Status"] = json!(new_status);
    if credit {
        d["RemainingCredit"] = num(total);
        if let Value::Object(m) = &mut d {
            m.remove("AmountPaid");
        }
    } else {
        d["AmountDue"] = num(total - paid);
        d["AmountPaid"] = num(paid);
    }
    d["UpdatedDateUTC"] = json!(now_ms());
    d["HasErrors"] = json!(false);
    Ok(d)
}
