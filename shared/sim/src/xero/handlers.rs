//! Reads and writes of the organisation's records, and payments.

use super::*;

pub(super) fn apply_payment(
    org: &mut Org,
    invoice_id: &str,
    amount: Decimal,
    date: NaiveDate,
    account: &str,
) -> Result<Value, String> {
    let inv = org
        .invoices
        .get_mut(invoice_id)
        .ok_or("Invoice not found")?;
    if inv["Status"] != "AUTHORISED" {
        return Err("Payments can only be made against authorised documents".into());
    }
    let due = dec(&inv["AmountDue"]).unwrap_or_default();
    if amount <= Decimal::ZERO || amount > due {
        return Err(format!(
            "Payment amount {amount} exceeds the amount due {due}"
        ));
    }
    let paid = dec(&inv["AmountPaid"]).unwrap_or_default() + amount;
    inv["AmountPaid"] = num(paid);
    inv["AmountDue"] = num(due - amount);
    if (due - amount).is_zero() {
        inv["Status"] = json!("PAID");
        inv["FullyPaidOnDate"] = json!(ms_date(date));
    }
    inv["UpdatedDateUTC"] = json!(now_ms());
    let payment = json!({
        "PaymentID": uuid(),
        "Date": ms_date(date),
        "Amount": num(amount),
        "Reference": "Customer payment",
        "Status": "AUTHORISED",
        "PaymentType": "ACCRECPAYMENT",
        "IsReconciled": false,
        "UpdatedDateUTC": now_ms(),
        "Account": { "Code": account },
        "Invoice": {
            "InvoiceID": invoice_id,
            "InvoiceNumber": inv["InvoiceNumber"],
            "CurrencyCode": inv["CurrencyCode"],
            "Type": "ACCREC",
        },
    });
    org.payments.insert(
        payment["PaymentID"].as_str().expect("string").to_string(),
        payment.clone(),
    );
    Ok(payment)
}

pub(super) fn handle(
    inner: &Inner,
    method: &Method,
    path: &str,
    q: &BTreeMap<String, String>,
    body: Option<&Value>,
    modified_since: Option<chrono::DateTime<Utc>>,
) -> (StatusCode, Value) {
    let parts: Vec<&str> = path.split('/').collect();
    match (method.clone(), parts.as_slice()) {
        (Method::GET, ["Organisation"]) => {
            let org = inner.org.lock().expect("not poisoned");
            let mut o = json!({
                "OrganisationID": inner.cfg.tenant_id,
                "Name": inner.cfg.name,
                "BaseCurrency": inner.cfg.base_currency,
                "CountryCode": "US",
                "OrganisationType": "COMPANY",
            });
            if let Some(d) = org.period_lock {
                o["PeriodLockDate"] = json!(ms_date(d));
            }
            (StatusCode::OK, envelope("Organisations", vec![o]))
        }
        (Method::GET, ["TaxRates"]) => {
            let rates = inner
                .cfg
                .tax_rates
                .iter()
                .map(|(kind, rate)| {
                    json!({ "Name": kind, "TaxType": kind, "Status": "ACTIVE",
                            "EffectiveRate": num(*rate), "DisplayTaxRate": num(*rate) })
                })
                .collect();
            (StatusCode::OK, envelope("TaxRates", rates))
        }
        (Method::GET, ["TrackingCategories"]) => {
            let cats = inner
                .cfg
                .tracking
                .iter()
                .map(|(name, opts)| {
                    json!({
                        "TrackingCategoryID": uuid(), "Name": name, "Status": "ACTIVE",
                        "Options": opts.iter().map(|o| json!({"TrackingOptionID": uuid(), "Name": o, "Status": "ACTIVE"})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            (StatusCode::OK, envelope("TrackingCategories", cats))
        }
        (Method::GET, [coll]) | (Method::GET, [coll, _])
            if ["Contacts", "Invoices", "CreditNotes", "Payments"].contains(coll) =>
        {
            list(inner, coll, parts.get(1).copied(), q, modified_since)
        }
        (Method::POST | Method::PUT, [coll])
            if ["Contacts", "Invoices", "CreditNotes"].contains(coll) =>
        {
            write(inner, coll, method == Method::PUT, q, body)
        }
        (Method::PUT, ["Payments"]) => {
            let items = body
                .and_then(|b| b.get("Payments"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut out = Vec::new();
            let mut org = inner.org.lock().expect("not poisoned");
            for p in items {
                let id = p
                    .pointer("/Invoice/InvoiceID")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let amount = dec(&p["Amount"]).unwrap_or_default();
                let date = p["Date"]
                    .as_str()
                    .and_then(|d| {
                        NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d").ok()
                    })
                    .unwrap_or_else(|| crate::vendor_now().date_naive());
                let account = p
                    .pointer("/Account/Code")
                    .and_then(Value::as_str)
                    .unwrap_or("090")
                    .to_string();
                match apply_payment(&mut org, &id, amount, date, &account) {
                    Ok(v) => out.push(v),
                    Err(e) => {
                        return (
                            StatusCode::BAD_REQUEST,
                            xero_error(
                                "A validation exception occurred",
                                vec![json!({"ValidationErrors": [{"Message": e}]})],
                            ),
                        );
                    }
                }
            }
            (StatusCode::OK, envelope("Payments", out))
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({ "Title": "Not Found", "Status": 404, "Detail": format!("no resource {path}") }),
        ),
    }
}

pub(super) fn list(
    inner: &Inner,
    coll: &str,
    id: Option<&str>,
    q: &BTreeMap<String, String>,
    modified_since: Option<chrono::DateTime<Utc>>,
) -> (StatusCode, Value) {
    let filter = match q.get("where").map(|w| where_clause::parse(w)) {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            return (
                StatusCode::BAD_REQUEST,
                xero_error(&format!("where: {e}"), vec![]),
            );
        }
        None => None,
    };
    let org = inner.org.lock().expect("not poisoned");
    let table = match coll {
        "Contacts" => &org.contacts,
        "Invoices" => &org.invoices,
        "CreditNotes" => &org.credit_notes,
        _ => &org.payments,
    };
    let include_archived = q.get("includeArchived").is_some_and(|v| v == "true");
    let ids: Option<BTreeSet<String>> = q
        .get("IDs")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let statuses: Option<BTreeSet<String>> = q
        .get("Statuses")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let mut rows: Vec<Value> = table
        .iter()
        .filter(|(k, _)| id.is_none_or(|i| *k == i))
        .filter(|(k, _)| ids.as_ref().is_none_or(|s| s.contains(*k)))
        .map(|(_, v)| v)
        .filter(|v| coll != "Contacts" || include_archived || v["ContactStatus"] != "ARCHIVED")
        .filter(|v| {
            statuses
                .as_ref()
                .is_none_or(|s| v["Status"].as_str().is_some_and(|x| s.contains(x)))
        })
        .filter(|v| filter.as_ref().is_none_or(|f| where_clause::eval(f, v)))
        .filter(|v| {
            modified_since.is_none_or(|since| {
                v["UpdatedDateUTC"]
                    .as_str()
                    .and_then(ms_instant)
                    .is_some_and(|u| u > since)
            })
        })
        .cloned()
        .collect();
    if id.is_some() && rows.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            json!({ "Title": "Not Found", "Status": 404 }),
        );
    }
    if let Some(page) = q.get("page").and_then(|p| p.parse::<usize>().ok()) {
        let size = q
            .get("pageSize")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(100)
            .clamp(1, 1000);
        rows = rows
            .into_iter()
            .skip(page.saturating_sub(1) * size)
            .take(size)
            .collect();
    }
    (StatusCode::OK, envelope(coll, rows))
}

/// Validates and applies a batch write. With `summarizeErrors=false` each item
/// succeeds or fails alone (200); otherwise any error refuses the whole batch (400).
pub(super) fn write(
    inner: &Inner,
    coll: &str,
    create_only: bool,
    q: &BTreeMap<String, String>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let Some(items) = body.and_then(|b| b.get(coll)).and_then(Value::as_array) else {
        return (
            StatusCode::BAD_REQUEST,
            xero_error(
                &format!("The request body must contain a {coll} array"),
                vec![],
            ),
        );
    };
    let summarize = q
        .get("summarizeErrors")
        .map(|v| v != "false")
        .unwrap_or(false);
    // Xero keeps unit amounts to 2 decimal places unless the call opts in to 4.
    let unit_dp = if q.get("unitdp").map(String::as_str) == Some("4") {
        4
    } else {
        2
    };
    let mut org = inner.org.lock().expect("not poisoned");
    // Validate everything first, so a summarised refusal commits nothing.
    let mut results: Vec<Result<Value, Vec<String>>> = Vec::new();
    let mut staged = Org {
        contacts: org.contacts.clone(),
        invoices: BTreeMap::new(),
        credit_notes: BTreeMap::new(),
        ..Org::default()
    };
    for item in items {
        let r = match coll {
            "Contacts" => validate_contact(&staged, item, create_only),
            _ => validate_document(inner, &org, coll, item, create_only, unit_dp),
        };
        if let (Ok(v), "Contacts") = (&r, coll) {
            staged.contacts.insert(
                v["ContactID"].as_str().unwrap_or_default().to_string(),
                v.clone(),
            );
        }
        results.push(r);
    }
    if summarize && results.iter().any(Result::is_err) {
        let elements = items
            .iter()
            .zip(&results)
            .map(|(item, r)| {
                let mut e = item.clone();
                let errs: Vec<Value> = r
                    .as_ref()
                    .err()
                    .map(|m| m.iter().map(|x| json!({"Message": x})).collect())
                    .unwrap_or_default();
                e["ValidationErrors"] = Value::Array(errs);
                e
            })
            .collect();
        return (
            StatusCode::BAD_REQUEST,
            xero_error("A validation exception occurred", elements),
        );
    }
    let mut out = Vec::new();
    for (item, r) in items.iter().zip(results) {
        match r {
            Ok(mut v) => {
                let table = match coll {
                    "Contacts" => &mut org.contacts,
                    "Invoices" => &mut org.invoices,
                    _ => &mut org.credit_notes,
                };
                let id_field = match coll {
                    "Contacts" => "ContactID",
                    "Invoices" => "InvoiceID",
                    _ => "CreditNoteID",
                };
                let is_new = !table.contains_key(v[id_field].as_str().unwrap_or_default());
                if is_new && coll == "Invoices" && v["InvoiceNumber"].is_null() {
                    org.next_invoice += 1;
                    v["InvoiceNumber"] = json!(format!("INV-{:04}", org.next_invoice));
                }
                if is_new && coll == "CreditNotes" && v["CreditNoteNumber"].is_null() {
                    org.next_credit += 1;
                    v["CreditNoteNumber"] = json!(format!("CN-{:04}", org.next_credit));
                }
                let table = match coll {
                    "Contacts" => &mut org.contacts,
                    "Invoices" => &mut org.invoices,
                    _ => &mut org.credit_notes,
                };
                table.insert(
                    v[id_field].as_str().unwrap_or_default().to_string(),
                    v.clone(),
                );
                v["StatusAttributeString"] = json!("OK");
                out.push(v);
            }
            Err(messages) => {
                let mut e = item.clone();
                e["StatusAttributeString"] = json!("ERROR");
                e["HasErrors"] = json!(true);
                if coll == "Contacts" {
                    e.as_object_mut().expect("object").remove("HasErrors");
                    e["HasValidationErrors"] = json!(true);
                }
                e["ValidationErrors"] =
                    Value::Array(messages.iter().map(|m| json!({"Message": m})).collect());
                out.push(e);
            }
        }
    }
    (StatusCode::OK, envelope(coll, out))
}
