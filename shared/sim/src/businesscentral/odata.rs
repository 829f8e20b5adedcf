//! The company's entities over OData: reads with `$filter`, `$expand`,
//! `$select` and paging; writes checked as Business Central checks them
//! (etags, drafts only, known items, accounts, tax groups and dimension
//! values); the post and cancel actions. Shared by single requests and `$batch`.
//!
//! Size: every entity operation the simulator serves, with Business Central's
//! checks; one dispatcher shared by single requests and `$batch`.

use super::*;

/// (status, body, the sales invoice a person-visible change touched).
pub(super) type Handled = (u16, Value, Option<String>);

fn done(status: u16, body: Value) -> Handled {
    (status, body, None)
}

fn refuse(code: &str, message: &str) -> Handled {
    done(400, error(code, message))
}

fn not_found() -> Handled {
    done(
        404,
        error("BadRequest_NotFound", "The specified entity was not found."),
    )
}

/// `name(key)` → (name, key).
fn segment(s: &str) -> (&str, Option<&str>) {
    match s.split_once('(') {
        Some((name, rest)) => (name, rest.strip_suffix(')')),
        None => (s, None),
    }
}

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

fn lines_nav(entity: &str) -> &'static str {
    if entity == "salesCreditMemos" {
        "salesCreditMemoLines"
    } else {
        "salesInvoiceLines"
    }
}

fn date_field(entity: &str) -> &'static str {
    if entity == "salesCreditMemos" {
        "creditMemoDate"
    } else {
        "invoiceDate"
    }
}

/// One `field op value` term of a `$filter`, evaluated on an entity.
fn term(t: &str, v: &Value) -> Result<bool, String> {
    let mut parts = t.trim().splitn(3, ' ');
    let (Some(field), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("cannot read the filter term {t:?}"));
    };
    let want = match value.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(q) => q.replace("''", "'"),
        None => value.to_string(),
    };
    let have = match v.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    };
    Ok(match op {
        "eq" => have == want,
        "ne" => have != want,
        "gt" => have > want,
        "ge" => have >= want,
        "lt" => have < want,
        "le" => have <= want,
        other => return Err(format!("the operator {other:?} is not supported")),
    })
}

fn filtered(items: Vec<Value>, filter: Option<&str>) -> Result<Vec<Value>, String> {
    let Some(f) = filter else { return Ok(items) };
    let terms: Vec<&str> = f.split(" and ").collect();
    let mut out = Vec::new();
    for v in items {
        let mut keep = true;
        for t in &terms {
            keep &= term(t, &v)?;
        }
        if keep {
            out.push(v);
        }
    }
    Ok(out)
}

/// What a read shows of an entity: its lines only when expanded, only the
/// selected fields when `$select` names them.
fn shaped(mut v: Value, entity: &str, q: &BTreeMap<String, String>) -> Value {
    let nav = lines_nav(entity);
    if q.get("$expand").map(String::as_str) != Some(nav)
        && let Some(o) = v.as_object_mut()
    {
        o.remove(nav);
    }
    if let Some(sel) = q.get("$select") {
        let keep: Vec<&str> = sel.split(',').collect();
        if let Some(o) = v.as_object_mut() {
            o.retain(|k, _| keep.contains(&k.as_str()) || k == "@odata.etag");
        }
    }
    v
}

fn matches_etag(v: &Value, if_match: Option<&str>) -> bool {
    if_match.is_some_and(|e| e == "*" || v["@odata.etag"] == e)
}

/// Recomputes a document's lines and totals.
fn totals(cfg: &BcSimConfig, doc: &mut Value, entity: &str) -> Result<(), String> {
    let nav = lines_nav(entity);
    let mut net = Decimal::ZERO;
    let mut tax = Decimal::ZERO;
    let lines = doc[nav].as_array_mut().ok_or("a document without lines")?;
    for (n, l) in lines.iter_mut().enumerate() {
        let kind = l["lineType"].as_str().unwrap_or("Comment").to_string();
        let object = l["lineObjectNumber"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match kind.as_str() {
            "Item" if !cfg.items.contains(&object) => {
                return Err(format!(
                    "The Item does not exist. Identification fields and values: No.='{object}'"
                ));
            }
            "Account" if !cfg.accounts.contains(&object) => {
                return Err(format!(
                    "The G/L Account does not exist. Identification fields and values: No.='{object}'"
                ));
            }
            "Item" | "Account" | "Comment" => {}
            other => return Err(format!("lineType {other} is not valid")),
        }
        for d in l["dimensionSetLines"].as_array().into_iter().flatten() {
            let (code, value) = (
                d["code"].as_str().unwrap_or_default(),
                d["valueCode"].as_str().unwrap_or_default(),
            );
            if !cfg
                .dimensions
                .get(code)
                .is_some_and(|vs| vs.contains(value))
            {
                return Err(format!(
                    "The Dimension Value does not exist. Identification fields and values: Dimension Code='{code}',Code='{value}'"
                ));
            }
        }
        let rate = match l["taxCode"].as_str() {
            None => Decimal::ZERO,
            Some(t) => *cfg.tax_groups.get(t).ok_or_else(|| {
                format!(
                    "The Tax Group does not exist. Identification fields and values: Code='{t}'"
                )
            })?,
        };
        let amount = round2(dec(&l["quantity"]) * dec(&l["unitPrice"]));
        if l.get("id").is_none_or(Value::is_null) {
            l["id"] = json!(crate::uuid());
        }
        l["sequence"] = json!((n + 1) * 10000);
        l["netAmount"] = num(amount);
        if l.get("@odata.etag").is_none_or(Value::is_null) {
            l["@odata.etag"] = json!(etag(fastrand::u64(1..u64::MAX / 2)));
        }
        net += amount;
        tax += round2(amount * rate / Decimal::from(100));
    }
    let paid = dec(&doc["totalAmountIncludingTax"]) - dec(&doc["remainingAmount"]);
    doc["totalAmountExcludingTax"] = num(net);
    doc["totalTaxAmount"] = num(tax);
    doc["totalAmountIncludingTax"] = num(net + tax);
    doc["remainingAmount"] = num(net + tax - paid.max(Decimal::ZERO));
    Ok(())
}

fn stamp(inner: &Inner, d: &mut Data, v: &mut Value) {
    d.version += 1;
    v["@odata.etag"] = json!(etag(d.version));
    v["lastModifiedDateTime"] = json!(now(inner));
}

/// Posts a draft document (`Microsoft.NAV.post`).
pub(super) fn post_document(inner: &Inner, entity: &str, id: &str) -> Handled {
    let mut d = inner.data.lock().expect("not poisoned");
    let Some(mut doc) = d.documents.get(entity).and_then(|t| t.get(id)).cloned() else {
        return not_found();
    };
    if doc["status"] != "Draft" {
        return refuse(
            "Application_DialogException",
            "The document has already been posted.",
        );
    }
    let date = doc[date_field(entity)]
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
    if inner
        .cfg
        .closed_through
        .zip(date)
        .is_some_and(|(c, x)| x <= c)
    {
        return refuse(
            "Application_DialogException",
            "Posting Date is not within your range of allowed posting dates.",
        );
    }
    doc["status"] = json!("Open");
    stamp(inner, &mut d, &mut doc);
    d.documents
        .entry(if entity == "salesCreditMemos" {
            "salesCreditMemos"
        } else {
            "salesInvoices"
        })
        .or_default()
        .insert(id.to_string(), doc);
    done(204, Value::Null)
}

fn entity_name(e: &str) -> Option<&'static str> {
    match e {
        "salesInvoices" => Some("salesInvoices"),
        "salesCreditMemos" => Some("salesCreditMemos"),
        _ => None,
    }
}

/// One OData request against the company.
pub(super) fn handle(
    inner: &Inner,
    method: &str,
    path: &str,
    query: &str,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> Handled {
    let q: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let prefix = format!("companies({})/", inner.cfg.company_id);
    let Some(rest) = path.strip_prefix(&prefix) else {
        return not_found();
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let (name, key) = segment(segs[0]);
    match (method, name, key, segs.get(1).copied()) {
        ("GET", "accountingPeriods", None, None) => done(200, json!({ "value": periods(inner) })),
        ("GET", "customers", None, None) => list(inner, "customers", &q),
        ("GET", "customers", Some(id), None) => get(inner, "customers", id, &q),
        ("POST", "customers", None, None) => create_customer(inner, body),
        ("PATCH", "customers", Some(id), None) => patch_customer(inner, id, if_match, body),
        ("GET", e, None, None) if entity_name(e).is_some() => list(inner, e, &q),
        ("GET", e, Some(id), None) if entity_name(e).is_some() => get(inner, e, id, &q),
        ("POST", e, None, None) if entity_name(e).is_some() => {
            create_document(inner, entity_name(e).expect("known"), body)
        }
        ("PATCH", e, Some(id), None) if entity_name(e).is_some() => {
            patch_document(inner, entity_name(e).expect("known"), id, if_match, body)
        }
        ("DELETE", e, Some(id), None) if entity_name(e).is_some() => {
            delete_document(inner, entity_name(e).expect("known"), id, if_match)
        }
        ("POST", e, Some(id), Some("Microsoft.NAV.post")) if entity_name(e).is_some() => {
            post_document(inner, entity_name(e).expect("known"), id)
        }
        ("POST", e, Some(id), Some("Microsoft.NAV.cancel")) if entity_name(e).is_some() => {
            cancel_document(inner, entity_name(e).expect("known"), id)
        }
        (m, e, Some(id), Some(nav))
            if entity_name(e).is_some() && segment(nav).0 == lines_nav(e) =>
        {
            line_op(
                inner,
                entity_name(e).expect("known"),
                id,
                m,
                segment(nav).1,
                if_match,
                body,
            )
        }
        _ => not_found(),
    }
}

fn periods(inner: &Inner) -> Vec<Value> {
    let Some(closed) = inner.cfg.closed_through else {
        return Vec::new();
    };
    // Monthly periods from a year before the closed date to a year after.
    let first = NaiveDate::from_ymd_opt(chrono::Datelike::year(&closed) - 1, 1, 1).expect("valid");
    (0..36)
        .filter_map(|m| first.checked_add_months(chrono::Months::new(m)))
        .map(|start| json!({ "startingDate": start.to_string(), "closed": start <= closed, "dateLocked": start <= closed }))
        .collect()
}

fn table<'a>(d: &'a Data, entity: &str) -> Option<&'a BTreeMap<String, Value>> {
    if entity == "customers" {
        Some(&d.customers)
    } else {
        d.documents.get(entity)
    }
}

fn list(inner: &Inner, entity: &str, q: &BTreeMap<String, String>) -> Handled {
    let all: Vec<Value> = {
        let d = inner.data.lock().expect("not poisoned");
        table(&d, entity)
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    };
    let items = match filtered(all, q.get("$filter").map(String::as_str)) {
        Ok(v) => v,
        Err(e) => return refuse("BadRequest", &e),
    };
    let skip: usize = q
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let page = inner.cfg.page_size.max(1);
    let slice: Vec<Value> = items
        .iter()
        .skip(skip)
        .take(page)
        .cloned()
        .map(|v| shaped(v, entity, q))
        .collect();
    let mut answer = json!({ "value": slice });
    if skip + page < items.len() {
        let mut next = q.clone();
        next.insert("$skiptoken".into(), (skip + page).to_string());
        let origin = inner.origin.lock().expect("not poisoned").clone();
        let mut u = reqwest::Url::parse(&format!(
            "{origin}/api/v2.0/companies({})/{entity}",
            inner.cfg.company_id
        ))
        .expect("valid URL");
        for (k, v) in &next {
            u.query_pairs_mut().append_pair(k, v);
        }
        answer["@odata.nextLink"] = json!(u.to_string());
    }
    done(200, answer)
}

fn get(inner: &Inner, entity: &str, id: &str, q: &BTreeMap<String, String>) -> Handled {
    let d = inner.data.lock().expect("not poisoned");
    match table(&d, entity).and_then(|t| t.get(id)) {
        Some(v) => done(200, shaped(v.clone(), entity, q)),
        None => not_found(),
    }
}

fn create_customer(inner: &Inner, body: Option<&Value>) -> Handled {
    let Some(b) = body.filter(|b| b.is_object()) else {
        return refuse("BadRequest", "a customer body is required");
    };
    let number = b["number"].as_str().unwrap_or_default();
    if number.is_empty() || number.len() > 20 {
        return refuse(
            "BadRequest_InvalidRequestBody",
            "number must be 1 to 20 characters (Code[20])",
        );
    }
    if b["displayName"]
        .as_str()
        .is_none_or(|n| n.trim().is_empty())
    {
        return refuse(
            "Application_FieldValidationException",
            "Name must have a value in Customer.",
        );
    }
    let mut d = inner.data.lock().expect("not poisoned");
    if d.customers.values().any(|c| c["number"] == number) {
        return refuse(
            "Application_DialogException",
            &format!(
                "The record in table Customer already exists. Identification fields and values: No.='{number}'"
            ),
        );
    }
    let mut c = b.clone();
    let id = crate::uuid();
    c["id"] = json!(id);
    stamp(inner, &mut d, &mut c);
    d.customers.insert(id, c.clone());
    done(201, c)
}

fn patch_customer(
    inner: &Inner,
    id: &str,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> Handled {
    let mut d = inner.data.lock().expect("not poisoned");
    let Some(mut c) = d.customers.get(id).cloned() else {
        return not_found();
    };
    if !matches_etag(&c, if_match) {
        return done(
            412,
            error(
                "Request_EntityChanged",
                "Another user has already changed the record.",
            ),
        );
    }
    if let (Some(o), Some(Value::Object(p))) = (c.as_object_mut(), body) {
        for (k, v) in p {
            if k != "id" {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    stamp(inner, &mut d, &mut c);
    d.customers.insert(id.to_string(), c.clone());
    done(200, c)
}

fn create_document(inner: &Inner, entity: &'static str, body: Option<&Value>) -> Handled {
    let Some(b) = body.filter(|b| b.is_object()) else {
        return refuse("BadRequest", "a document body is required");
    };
    let mut d = inner.data.lock().expect("not poisoned");
    let customer = b["customerId"]
        .as_str()
        .and_then(|c| d.customers.get(c))
        .cloned();
    let Some(customer) = customer else {
        return refuse(
            "Application_DialogException",
            "The Customer does not exist.",
        );
    };
    if b[date_field(entity)]
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .is_none()
    {
        return refuse(
            "BadRequest_InvalidRequestBody",
            &format!("{} must be a date", date_field(entity)),
        );
    }
    let mut doc = b.clone();
    let nav = lines_nav(entity);
    if doc[nav].is_null() {
        doc[nav] = json!([]);
    }
    doc["id"] = json!(crate::uuid());
    d.numbers += 1;
    doc["number"] = json!(format!(
        "{}{}",
        if entity == "salesInvoices" {
            "S-INV"
        } else {
            "S-CR"
        },
        100_000 + d.numbers
    ));
    doc["customerNumber"] = customer["number"].clone();
    doc["status"] = json!("Draft");
    doc["remainingAmount"] = num(Decimal::ZERO);
    doc["totalAmountIncludingTax"] = num(Decimal::ZERO);
    if let Err(e) = totals(&inner.cfg, &mut doc, entity) {
        return refuse("Application_DialogException", &e);
    }
    stamp(inner, &mut d, &mut doc);
    let id = doc["id"].as_str().expect("set").to_string();
    d.documents
        .entry(entity)
        .or_default()
        .insert(id, doc.clone());
    done(201, doc)
}

fn editable(d: &Data, entity: &str, id: &str, if_match: Option<&str>) -> Result<Value, Handled> {
    let Some(doc) = d.documents.get(entity).and_then(|t| t.get(id)).cloned() else {
        return Err(not_found());
    };
    if doc["status"] != "Draft" {
        return Err(refuse(
            "Application_DialogException",
            "The document has been posted and cannot be changed.",
        ));
    }
    if !matches_etag(&doc, if_match) {
        return Err(done(
            412,
            error(
                "Request_EntityChanged",
                "Another user has already changed the record.",
            ),
        ));
    }
    Ok(doc)
}

fn patch_document(
    inner: &Inner,
    entity: &'static str,
    id: &str,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> Handled {
    let mut d = inner.data.lock().expect("not poisoned");
    let mut doc = match editable(&d, entity, id, if_match) {
        Ok(doc) => doc,
        Err(h) => return h,
    };
    if let (Some(o), Some(Value::Object(p))) = (doc.as_object_mut(), body) {
        for (k, v) in p {
            if !matches!(k.as_str(), "id" | "status" | "number") && k != lines_nav(entity) {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    if let Err(e) = totals(&inner.cfg, &mut doc, entity) {
        return refuse("Application_DialogException", &e);
    }
    stamp(inner, &mut d, &mut doc);
    d.documents
        .entry(entity)
        .or_default()
        .insert(id.to_string(), doc.clone());
    done(200, doc)
}

fn delete_document(
    inner: &Inner,
    entity: &'static str,
    id: &str,
    if_match: Option<&str>,
) -> Handled {
    let mut d = inner.data.lock().expect("not poisoned");
    if let Err(h) = editable(&d, entity, id, if_match) {
        return h;
    }
    d.documents.entry(entity).or_default().remove(id);
    done(204, Value::Null)
}

fn cancel_document(inner: &Inner, entity: &'static str, id: &str) -> Handled {
    let mut d = inner.data.lock().expect("not poisoned");
    let Some(mut doc) = d.documents.get(entity).and_then(|t| t.get(id)).cloned() else {
        return not_found();
    };
    if doc["status"] != "Open"
        || dec(&doc["remainingAmount"]) != dec(&doc["totalAmountIncludingTax"])
    {
        return refuse(
            "Application_DialogException",
            "Only an open, unpaid document can be cancelled.",
        );
    }
    doc["status"] = json!("Canceled");
    doc["remainingAmount"] = num(Decimal::ZERO);
    stamp(inner, &mut d, &mut doc);
    d.documents
        .entry(entity)
        .or_default()
        .insert(id.to_string(), doc);
    done(204, Value::Null)
}

/// `POST …/lines` and `DELETE …/lines({id})` on a draft.
fn line_op(
    inner: &Inner,
    entity: &'static str,
    id: &str,
    method: &str,
    line: Option<&str>,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> Handled {
    let mut d = inner.data.lock().expect("not poisoned");
    let mut doc = match editable(&d, entity, id, Some("*")) {
        Ok(doc) => doc,
        Err(h) => return h,
    };
    let nav = lines_nav(entity);
    let lines = doc[nav].as_array_mut().expect("documents have lines");
    let answer = match (method, line) {
        ("POST", None) => {
            let Some(b) = body.filter(|b| b.is_object()) else {
                return refuse("BadRequest", "a line body is required");
            };
            lines.push(b.clone());
            201
        }
        ("DELETE", Some(lid)) => {
            let Some(at) = lines.iter().position(|l| l["id"] == lid) else {
                return not_found();
            };
            if !matches_etag(&lines[at], if_match) {
                return done(
                    412,
                    error(
                        "Request_EntityChanged",
                        "Another user has already changed the record.",
                    ),
                );
            }
            lines.remove(at);
            204
        }
        _ => return done(405, error("BadRequest_MethodNotAllowed", "not supported")),
    };
    if let Err(e) = totals(&inner.cfg, &mut doc, entity) {
        return refuse("Application_DialogException", &e);
    }
    stamp(inner, &mut d, &mut doc);
    let created = (answer == 201)
        .then(|| doc[nav].as_array().and_then(|a| a.last()).cloned())
        .flatten();
    d.documents
        .entry(entity)
        .or_default()
        .insert(id.to_string(), doc);
    done(answer, created.unwrap_or(Value::Null))
}
