//! Tryton as the ERP target, over its REST API (Tryton 8.x): customers as
//! `party.party` (Ferry's reference in `code`), invoices and credit notes as
//! `account.invoice` with lines (Ferry's reference in `reference`), posting with
//! the `post` button, and payments read back from the invoices' payment lines.
//! Tryton has no idempotency header: every create is preceded by a lookup of
//! Ferry's reference, so a retry after a lost answer finds what the first
//! attempt committed instead of writing a second document.
//! Reference: https://docs.tryton.org/8.0/server/topics/rest.html and the
//! `account_invoice` module (https://docs.tryton.org/projects/modules-account-invoice).

pub mod client;
pub mod config;
pub mod entry;
pub mod mapper;
pub mod raw;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::{Money, SystemId};
use ferry_core::ConnectorError;
use ferry_core::ports::{
    CallGate, ErpCapabilities, ErpChange, ErpDocument, ErpPayment, ErpReader, ErpRef, ErpState,
    ErpWriter, ItemResult, OutboundItem, RateLimits,
};
use ferry_core::posting::{DocKind, DocStatus, InvoiceDoc, PostingDoc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

pub use client::{Answer, Client};
pub use config::TrytonConfig;

use crate::credential::Credential;
use mapper::{HeaderIds, INVOICE, LineIds, PARTY, TIMESHEET, WORK};

/// The system id Tryton documents carry.
pub fn system() -> SystemId {
    SystemId::parse("tryton").expect("valid slug")
}

/// One Tryton database and company.
pub struct Tryton {
    client: Client,
    /// Reference data looked up by code (products, accounts, journals, …): `(model, code) → id`.
    codes: Mutex<HashMap<(String, String), i64>>,
}

/// An existing invoice as upsert needs it.
struct Existing {
    id: i64,
    state: String,
    lines: Vec<i64>,
}

fn refused(message: String) -> ItemResult {
    ItemResult::Rejected {
        response: json!({ "message": message }),
        messages: vec![message],
    }
}

fn ok(erp_id: String, number: Option<String>, response: Value) -> ItemResult {
    ItemResult::Ok {
        erp_id,
        erp_number: number,
        response,
    }
}

impl Tryton {
    /// What Tryton writes and its limits.
    pub fn capabilities_for() -> ErpCapabilities {
        ErpCapabilities {
            kinds: &[
                DocKind::Contact,
                DocKind::Invoice,
                DocKind::CreditNote,
                DocKind::Project,
                DocKind::Timesheet,
            ],
            // Tryton's text fields have no length limit; 50 keeps every reference
            // Ferry has written the same, so documents are still found by it.
            reference_len: 50,
            // One document per call: each write is its own transaction.
            max_batch: 1,
            // Tryton's price_decimal, 4 unless the server is configured otherwise.
            unit_price_decimals: 4,
        }
    }

    /// `gate` is the tenant's shared rate budget; every request passes it.
    pub fn new(cfg: TrytonConfig, key: Credential, gate: Arc<dyn CallGate>) -> Self {
        Tryton {
            client: Client::new(cfg, key, gate),
            codes: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits_for(cfg: &TrytonConfig) -> RateLimits {
        RateLimits {
            per_minute: cfg.per_minute.max(1),
            per_day: cfg.per_minute.max(1).saturating_mul(24 * 60),
            concurrent: cfg.concurrent.max(1),
        }
    }

    /// The budget key: one per Tryton server and database.
    pub fn account_key_for(cfg: &TrytonConfig) -> String {
        format!(
            "tryton:{}/{}",
            cfg.base_url.trim_end_matches('/'),
            cfg.database
        )
    }

    /// The id of the record of `model` whose `field` is `code`, if there is exactly one.
    async fn find_code(
        &self,
        model: &str,
        field: &str,
        code: &str,
    ) -> Result<Option<i64>, ConnectorError> {
        let k = (format!("{model}.{field}"), code.to_string());
        if let Some(id) = self.codes.lock().expect("not poisoned").get(&k) {
            return Ok(Some(*id));
        }
        let found = self
            .client
            .search(model, &json!([[field, "=", code]]), &["id"])
            .await?;
        let id = match found.as_slice() {
            [one] => raw::id(one).ok_or_else(|| ConnectorError::protocol("record without id"))?,
            [] => return Ok(None),
            _ => {
                return Err(ConnectorError::Rejected {
                    status: 409,
                    message: format!("Tryton has several {model} with {field} {code:?}"),
                });
            }
        };
        self.codes.lock().expect("not poisoned").insert(k, id);
        Ok(Some(id))
    }

    /// Like [`Self::find_code`], and an unknown code is the template's problem, named with the model.
    async fn code_id(&self, model: &str, field: &str, code: &str) -> Result<i64, ConnectorError> {
        self.find_code(model, field, code)
            .await?
            .ok_or_else(|| ConnectorError::Rejected {
                status: 404,
                message: format!("Tryton has no {model} with {field} {code:?}"),
            })
    }

    async fn header_ids(&self, inv: &InvoiceDoc) -> Result<HeaderIds, ConnectorError> {
        let cfg = &self.client.cfg;
        let party = mapper::parse_erp_id(PARTY, &inv.contact_erp_id)?;
        let invoice_address = self
            .client
            .read("party.party", party, &["addresses"])
            .await?
            .and_then(|p| p.get("addresses").and_then(Value::as_array).cloned())
            .and_then(|a| a.first().and_then(raw::id));
        let receivable = match &cfg.receivable_account {
            Some(code) => self.code_id("account.account", "code", code).await?,
            None => self
                .client
                .read("account.configuration", 1, &["default_account_receivable"])
                .await?
                .and_then(|c| c.get("default_account_receivable").and_then(raw::id))
                .ok_or_else(|| ConnectorError::Config {
                    message: "Tryton has no default receivable account; set receivable_account in the tenant file".into(),
                })?,
        };
        let payment_term = match &cfg.payment_term {
            Some(name) => Some(
                self.code_id("account.invoice.payment_term", "name", name)
                    .await?,
            ),
            None => None,
        };
        Ok(HeaderIds {
            company: cfg.company,
            party,
            invoice_address,
            receivable,
            journal: self
                .code_id("account.journal", "code", &cfg.journal)
                .await?,
            currency: self
                .code_id("currency.currency", "code", inv.currency.code())
                .await?,
            payment_term,
        })
    }

    /// Product, unit, revenue account and taxes of a line. Without an account code
    /// the product's category revenue account is used; when there is none the line
    /// goes without one and Tryton says what is missing.
    async fn line_ids(
        &self,
        line: &ferry_core::posting::PostingLine,
    ) -> Result<LineIds, ConnectorError> {
        let mut ids = LineIds::default();
        if let Some(code) = &line.item_code {
            let product = self.code_id("product.product", "code", code).await?;
            ids.product = Some(product);
            if let Some(p) = self
                .client
                .read(
                    "product.product",
                    product,
                    &["default_uom", "account_category.account_revenue"],
                )
                .await?
            {
                ids.unit = p.get("default_uom").and_then(raw::id);
                ids.account = p
                    .get("account_category")
                    .and_then(|c| c.get("account_revenue"))
                    .and_then(raw::id);
            }
        }
        if let Some(code) = &line.account_code {
            ids.account = Some(self.code_id("account.account", "code", code).await?);
        }
        if let Some(tax) = &line.tax_type {
            ids.taxes = vec![self.code_id("account.tax", "name", tax).await?];
        }
        Ok(ids)
    }

    /// The live (not cancelled) customer invoice carrying Ferry's reference.
    async fn invoice_by_reference(
        &self,
        reference: &str,
        fields: &[&str],
    ) -> Result<Option<Value>, ConnectorError> {
        Ok(self
            .client
            .search(
                INVOICE,
                &json!([
                    ["type", "=", "out"],
                    ["reference", "=", reference],
                    ["state", "!=", "cancelled"]
                ]),
                fields,
            )
            .await?
            .into_iter()
            .next())
    }

    async fn existing_invoice(
        &self,
        erp_id: Option<&str>,
        reference: &str,
    ) -> Result<Option<Existing>, ConnectorError> {
        // The invoice Ferry wrote before, if it is still there: a draft Ferry
        // deleted (its group emptied) or someone removed in Tryton is gone, and an
        // invoice a lost answer created since carries the reference, so both are
        // looked for by reference before a new one is created (as timesheet lines).
        let known = match erp_id {
            Some(id) => {
                self.client
                    .read(
                        INVOICE,
                        mapper::parse_erp_id(INVOICE, id)?,
                        &["state", "lines"],
                    )
                    .await?
            }
            None => None,
        };
        let found = match known {
            Some(v) => Some(v),
            None => {
                self.invoice_by_reference(reference, &["state", "lines"])
                    .await?
            }
        };
        Ok(found.and_then(|v| {
            Some(Existing {
                id: raw::id(&v)?,
                state: raw::text(&v, "state").unwrap_or_default(),
                lines: v
                    .get("lines")
                    .and_then(Value::as_array)
                    .map(|ls| ls.iter().filter_map(raw::id).collect())
                    .unwrap_or_default(),
            })
        }))
    }

    async fn upsert_contact(&self, item: &OutboundItem) -> Result<ItemResult, ConnectorError> {
        let doc = &item.doc;
        let c = doc.contact().ok_or_else(|| ConnectorError::Config {
            message: "contact without a contact body".into(),
        })?;
        let existing = match &item.erp_id {
            Some(id) => Some(mapper::parse_erp_id(PARTY, id)?),
            None => self.party_by_code(&doc.reference).await?,
        };
        let id = match existing {
            Some(id) => match self
                .client
                .write(PARTY, id, &mapper::party_update(c))
                .await?
            {
                Ok(()) => id,
                Err(m) => return Ok(refused(m)),
            },
            None => match self
                .client
                .create("party.party", &mapper::new_party(&doc.reference, c))
                .await?
            {
                Ok(id) => id,
                Err(m) => return Ok(refused(m)),
            },
        };
        Ok(ok(
            mapper::erp_id(PARTY, id),
            Some(doc.reference.clone()),
            json!({ "id": id, "code": doc.reference }),
        ))
    }

    async fn party_by_code(&self, code: &str) -> Result<Option<i64>, ConnectorError> {
        // Archived parties too: a customer archived at the source is still the same party.
        Ok(self
            .client
            .search(
                "party.party",
                &json!([["code", "=", code], ["active", "in", [true, false]]]),
                &["id"],
            )
            .await?
            .first()
            .and_then(raw::id))
    }

    async fn project_by_reference(&self, reference: &str) -> Result<Option<i64>, ConnectorError> {
        Ok(self
            .client
            .search(
                WORK,
                &json!([
                    ["type", "=", "project"],
                    ["comment", "like", format!("{reference}\n%")]
                ]),
                &["id"],
            )
            .await?
            .first()
            .and_then(raw::id))
    }

    async fn upsert_project(&self, item: &OutboundItem) -> Result<ItemResult, ConnectorError> {
        let doc = &item.doc;
        let p = doc.project().ok_or_else(|| ConnectorError::Config {
            message: "project without a project body".into(),
        })?;
        let party = mapper::parse_erp_id(PARTY, &p.contact_erp_id)?;
        let status = self
            .code_id(
                "project.work.status",
                "name",
                if p.closed { "Done" } else { "Open" },
            )
            .await?;
        let values = mapper::project_values(&doc.reference, p, party, status);
        let existing = match &item.erp_id {
            Some(id) => Some(mapper::parse_erp_id(WORK, id)?),
            None => self.project_by_reference(&doc.reference).await?,
        };
        let id = match existing {
            Some(id) => match self.client.write(WORK, id, &values).await? {
                Ok(()) => id,
                Err(m) => return Ok(refused(m)),
            },
            None => {
                let mut values = values;
                if let (Some(v), Some(extra)) = (
                    values.as_object_mut(),
                    mapper::new_project(self.client.cfg.company).as_object(),
                ) {
                    v.extend(extra.clone());
                }
                match self.client.create(WORK, &values).await? {
                    Ok(id) => id,
                    Err(m) => return Ok(refused(m)),
                }
            }
        };
        if let Err(m) = self.sync_tasks(id, party, p).await? {
            return Ok(refused(m));
        }
        Ok(ok(
            mapper::erp_id(WORK, id),
            Some(doc.reference.clone()),
            json!({ "id": id, "name": p.name, "tasks": p.tasks.len() }),
        ))
    }

    /// Creates the project's tasks Tryton lacks and renames those whose name
    /// changed. Tasks gone from the PSA stay: they may carry timesheets.
    async fn sync_tasks(
        &self,
        project: i64,
        party: i64,
        p: &ferry_core::posting::ProjectDoc,
    ) -> Result<Answer<()>, ConnectorError> {
        if p.tasks.is_empty() {
            return Ok(Ok(()));
        }
        let children = self
            .client
            .search(
                WORK,
                &json!([["parent", "=", project], ["type", "=", "task"]]),
                &["name", "comment"],
            )
            .await?;
        for task in &p.tasks {
            let found = children.iter().find(|c| {
                mapper::has_reference(c.get("comment").and_then(Value::as_str), &task.reference)
            });
            let answer = match found {
                Some(c) if c.get("name").and_then(Value::as_str) == Some(task.name.as_str()) => {
                    Ok(())
                }
                Some(c) => {
                    let id =
                        raw::id(c).ok_or_else(|| ConnectorError::protocol("task without id"))?;
                    self.client
                        .write(WORK, id, &json!({ "name": task.name }))
                        .await?
                }
                None => {
                    let mut values = mapper::task_values(task);
                    values["type"] = json!("task");
                    values["parent"] = json!(project);
                    values["party"] = json!(party);
                    values["company"] = json!(self.client.cfg.company);
                    self.client.create(WORK, &values).await?.map(|_| ())
                }
            };
            if let Err(m) = answer {
                return Ok(Err(format!("task {}: {m}", task.reference)));
            }
        }
        Ok(Ok(()))
    }

    /// The timesheet work of a project or task (`project.work`).
    async fn timesheet_work(&self, work: i64) -> Result<Option<i64>, ConnectorError> {
        Ok(self
            .client
            .read(WORK, work, &["timesheet_works"])
            .await?
            .and_then(|w| {
                w.get("timesheet_works")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first().and_then(raw::id))
            }))
    }

    async fn timesheet_by_reference(&self, reference: &str) -> Result<Option<i64>, ConnectorError> {
        Ok(self
            .client
            .search(
                TIMESHEET,
                &json!([["description", "like", format!("{reference} %")]]),
                &["id"],
            )
            .await?
            .first()
            .and_then(raw::id))
    }

    /// The employee who worked the hours: the one whose party has the person's
    /// name, else the configured stand-in; for neither, Ferry says so.
    async fn employee(&self, person: Option<&str>) -> Result<Answer<i64>, ConnectorError> {
        if let Some(name) = person
            && let Some(id) = self
                .find_code("company.employee", "party.name", name)
                .await?
        {
            return Ok(Ok(id));
        }
        match &self.client.cfg.employee {
            Some(stand_in) => self
                .code_id("company.employee", "party.name", stand_in)
                .await
                .map(Ok),
            None => Ok(Err(format!(
                "Tryton has no employee named {:?}; add one, or set employee in the tenant's [erp.tryton] for time of people without one",
                person.unwrap_or("(no name)")
            ))),
        }
    }

    async fn upsert_timesheet(&self, item: &OutboundItem) -> Result<ItemResult, ConnectorError> {
        let doc = &item.doc;
        let t = doc.timesheet().ok_or_else(|| ConnectorError::Config {
            message: "timesheet without a timesheet body".into(),
        })?;
        // The line Ferry wrote before, if it is still there (someone may have removed it in Tryton).
        let known = match &item.erp_id {
            Some(id) => {
                let id = mapper::parse_erp_id(TIMESHEET, id)?;
                self.client.read(TIMESHEET, id, &["id"]).await?.map(|_| id)
            }
            None => None,
        };
        let existing = match known {
            Some(id) => Some(id),
            None => self.timesheet_by_reference(&doc.reference).await?,
        };
        if t.removed {
            let Some(id) = existing else {
                return Ok(ok(
                    item.erp_id.clone().unwrap_or_default(),
                    None,
                    json!({ "absent": true }),
                ));
            };
            return match self.client.delete(TIMESHEET, id).await? {
                Ok(()) => Ok(ok(
                    mapper::erp_id(TIMESHEET, id),
                    None,
                    json!({ "id": id, "deleted": true }),
                )),
                Err(m) => Ok(refused(m)),
            };
        }
        let project = mapper::parse_erp_id(WORK, &t.project_erp_id)?;
        // On the task when Tryton has it (found by its reference), else on the project.
        let task = match &t.task_reference {
            Some(r) => self
                .client
                .search(
                    WORK,
                    &json!([
                        ["parent", "=", project],
                        ["type", "=", "task"],
                        ["comment", "like", format!("{r}\n%")]
                    ]),
                    &["id"],
                )
                .await?
                .first()
                .and_then(raw::id),
            None => None,
        };
        let Some(line_work) = self.timesheet_work(task.unwrap_or(project)).await? else {
            return Ok(refused(format!(
                "Tryton project {} has no timesheet work (is \"Available on timesheets\" off?)",
                t.project_erp_id
            )));
        };
        let employee = match self.employee(t.person.as_deref()).await? {
            Ok(e) => e,
            Err(m) => return Ok(refused(m)),
        };
        let values = mapper::timesheet_values(&doc.reference, t, line_work, employee);
        let id = match existing {
            Some(id) => match self.client.write(TIMESHEET, id, &values).await? {
                Ok(()) => id,
                Err(m) => return Ok(refused(m)),
            },
            None => {
                let mut values = values;
                values["company"] = json!(self.client.cfg.company);
                match self.client.create(TIMESHEET, &values).await? {
                    Ok(id) => id,
                    Err(m) => return Ok(refused(m)),
                }
            }
        };
        Ok(ok(
            mapper::erp_id(TIMESHEET, id),
            Some(doc.reference.clone()),
            json!({ "id": id }),
        ))
    }

    async fn upsert_invoice(&self, item: &OutboundItem) -> Result<ItemResult, ConnectorError> {
        let doc = &item.doc;
        let inv = doc.invoice().ok_or_else(|| ConnectorError::Config {
            message: "invoice without an invoice body".into(),
        })?;
        let existing = self
            .existing_invoice(item.erp_id.as_deref(), &doc.reference)
            .await?;
        match (inv.status, existing) {
            // Gone from Tryton already (removed there by hand): nothing left to remove.
            (DocStatus::Deleted, None) | (DocStatus::Voided, None) => Ok(ok(
                item.erp_id.clone().unwrap_or_default(),
                None,
                json!({ "absent": true }),
            )),
            (DocStatus::Deleted, Some(e)) => match self.client.delete(INVOICE, e.id).await? {
                Ok(()) => Ok(ok(
                    mapper::erp_id(INVOICE, e.id),
                    None,
                    json!({ "id": e.id, "deleted": true }),
                )),
                Err(m) => Ok(refused(m)),
            },
            (DocStatus::Voided, Some(e)) => {
                if e.state == "cancelled" {
                    return Ok(ok(
                        mapper::erp_id(INVOICE, e.id),
                        None,
                        json!({ "id": e.id, "state": "cancelled" }),
                    ));
                }
                match self.client.button(INVOICE, e.id, "cancel").await? {
                    Ok(_) => Ok(ok(
                        mapper::erp_id(INVOICE, e.id),
                        None,
                        json!({ "id": e.id, "state": "cancelled" }),
                    )),
                    Err(m) => Ok(refused(m)),
                }
            }
            (status, existing) => {
                let header =
                    mapper::invoice_header(&doc.reference, inv, &self.header_ids(inv).await?);
                let s = mapper::sign(doc.kind);
                let mut lines = Vec::with_capacity(inv.lines.len());
                for l in &inv.lines {
                    lines.push(mapper::invoice_line(l, &self.line_ids(l).await?, s));
                }
                // The state before posting is known: new invoices are drafts.
                let state = existing
                    .as_ref()
                    .map_or_else(|| "draft".to_string(), |e| e.state.clone());
                let id = match existing {
                    None => {
                        let mut values = header;
                        values["lines"] = json!([["create", lines]]);
                        match self.client.create(INVOICE, &values).await? {
                            Ok(id) => id,
                            Err(m) => return Ok(refused(m)),
                        }
                    }
                    Some(e) if matches!(e.state.as_str(), "posted" | "paid") => {
                        // Already posted (by Ferry or by finance): a posted invoice is the
                        // ERP's, whatever status the template asks for. It is left as it is
                        // when it already says what Ferry would write, and any other write
                        // is refused in words finance can act on, not sent for Tryton to
                        // refuse field by field.
                        if self.same_as_posted(e.id, inv, doc).await? {
                            e.id
                        } else {
                            return Ok(refused(format!(
                                "invoice {} is {} in Tryton and cannot be changed; credit it in Tryton or reopen it",
                                doc.reference, e.state
                            )));
                        }
                    }
                    Some(e) => {
                        let mut values = header;
                        values["lines"] = mapper::line_actions(&e.lines, lines);
                        match self.client.write(INVOICE, e.id, &values).await? {
                            Ok(()) => e.id,
                            Err(m) => return Ok(refused(m)),
                        }
                    }
                };
                if status == DocStatus::Authorised
                    && matches!(state.as_str(), "draft" | "validated")
                    && let Err(m) = self.client.button(INVOICE, id, "post").await?
                {
                    return Ok(refused(m));
                }
                let back = self
                    .client
                    .read(INVOICE, id, &["number", "state", "total_amount"])
                    .await?
                    .unwrap_or(Value::Null);
                Ok(ok(
                    mapper::erp_id(INVOICE, id),
                    raw::text(&back, "number"),
                    back,
                ))
            }
        }
    }

    /// Whether a posted invoice already holds the lines Ferry would write.
    async fn same_as_posted(
        &self,
        id: i64,
        inv: &InvoiceDoc,
        doc: &PostingDoc,
    ) -> Result<bool, ConnectorError> {
        let Some(v) = self
            .client
            .read(INVOICE, id, mapper::INVOICE_FIELDS)
            .await?
        else {
            return Ok(false);
        };
        let have = mapper::read_document(&v)?;
        let mut want: Vec<(Decimal, Decimal)> = inv
            .lines
            .iter()
            .map(|l| (l.quantity, l.line_amount))
            .collect();
        let mut got: Vec<(Decimal, Decimal)> = have
            .lines
            .iter()
            .map(|l| (l.quantity, l.line_amount))
            .collect();
        want.sort();
        got.sort();
        Ok(have.kind == doc.kind && want == got)
    }

    async fn invoices(&self, domain: Value) -> Result<Vec<ErpDocument>, ConnectorError> {
        self.client
            .search(INVOICE, &domain, mapper::INVOICE_FIELDS)
            .await?
            .iter()
            .map(mapper::read_document)
            .collect()
    }
}

#[async_trait]
impl ErpWriter for Tryton {
    fn system(&self) -> SystemId {
        system()
    }

    fn account_key(&self) -> String {
        Self::account_key_for(&self.client.cfg)
    }

    fn limits(&self) -> RateLimits {
        Self::limits_for(&self.client.cfg)
    }
    fn capabilities(&self) -> ErpCapabilities {
        Tryton::capabilities_for()
    }

    fn render(&self, item: &OutboundItem) -> Result<Value, ConnectorError> {
        mapper::render(item)
    }

    async fn upsert(
        &self,
        kind: DocKind,
        items: &[OutboundItem],
        _idempotency_key: &str,
    ) -> Result<Vec<ItemResult>, ConnectorError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            mapper::render(item)?;
            out.push(match kind {
                DocKind::Contact => self.upsert_contact(item).await?,
                DocKind::Invoice | DocKind::CreditNote => self.upsert_invoice(item).await?,
                DocKind::Project => self.upsert_project(item).await?,
                DocKind::Timesheet => self.upsert_timesheet(item).await?,
            });
        }
        Ok(out)
    }

    /// `party.party` by `code`, or `account.invoice` by `reference`.
    async fn find_by_reference(&self, doc: &PostingDoc) -> Result<Option<ErpRef>, ConnectorError> {
        match doc.kind {
            DocKind::Contact => Ok(self.party_by_code(&doc.reference).await?.map(|id| ErpRef {
                erp_id: mapper::erp_id(PARTY, id),
                number: Some(doc.reference.clone()),
            })),
            DocKind::Timesheet => {
                Ok(self
                    .timesheet_by_reference(&doc.reference)
                    .await?
                    .map(|id| ErpRef {
                        erp_id: mapper::erp_id(TIMESHEET, id),
                        number: Some(doc.reference.clone()),
                    }))
            }
            DocKind::Project => {
                Ok(self
                    .project_by_reference(&doc.reference)
                    .await?
                    .map(|id| ErpRef {
                        erp_id: mapper::erp_id(WORK, id),
                        number: Some(doc.reference.clone()),
                    }))
            }
            DocKind::Invoice | DocKind::CreditNote => Ok(self
                .invoice_by_reference(&doc.reference, &["number"])
                .await?
                .and_then(|v| {
                    Some(ErpRef {
                        erp_id: mapper::erp_id(INVOICE, raw::id(&v)?),
                        number: raw::text(&v, "number"),
                    })
                })),
        }
    }
}

#[async_trait]
impl ErpReader for Tryton {
    async fn list_documents(
        &self,
        kind: DocKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ErpDocument>, ConnectorError> {
        if matches!(
            kind,
            DocKind::Contact | DocKind::Project | DocKind::Timesheet
        ) {
            return Ok(Vec::new());
        }
        let docs = self
            .invoices(json!([
                ["type", "=", "out"],
                ["invoice_date", ">=", raw::date(from)],
                ["invoice_date", "<=", raw::date(to)],
            ]))
            .await?;
        Ok(docs.into_iter().filter(|d| d.kind == kind).collect())
    }

    async fn fetch_document(
        &self,
        kind: DocKind,
        erp_id: &str,
    ) -> Result<Option<ErpDocument>, ConnectorError> {
        if matches!(
            kind,
            DocKind::Contact | DocKind::Project | DocKind::Timesheet
        ) {
            return Ok(None);
        }
        match self
            .client
            .read(
                INVOICE,
                mapper::parse_erp_id(INVOICE, erp_id)?,
                mapper::INVOICE_FIELDS,
            )
            .await?
        {
            Some(v) => mapper::read_document(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Customer invoices written or created at or after `since` (`write_date` is
    /// empty until a record is first modified).
    async fn changed_invoices(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ErpChange>, ConnectorError> {
        let domain = match since {
            Some(t) => json!([
                ["type", "=", "out"],
                [
                    "OR",
                    ["write_date", ">=", raw::datetime(t)],
                    ["create_date", ">=", raw::datetime(t)]
                ],
            ]),
            None => json!([["type", "=", "out"]]),
        };
        let mut out: Vec<ErpChange> = self
            .client
            .search(INVOICE, &domain, &["write_date", "create_date"])
            .await?
            .iter()
            .filter_map(|v| {
                let at = v
                    .get("write_date")
                    .and_then(raw::read_datetime)
                    .or_else(|| v.get("create_date").and_then(raw::read_datetime))?;
                Some(ErpChange {
                    erp_id: mapper::erp_id(INVOICE, raw::id(v)?),
                    updated_at: at,
                })
            })
            .collect();
        out.sort_by(|a, b| (a.updated_at, &a.erp_id).cmp(&(b.updated_at, &b.erp_id)));
        Ok(out)
    }

    /// Payment lines of customer invoices, dated in `[from, to]`.
    async fn list_payments(
        &self,
        from: NaiveDate,
        to: Option<NaiveDate>,
    ) -> Result<Vec<ErpPayment>, ConnectorError> {
        let mut domain = vec![
            json!(["type", "=", "out"]),
            json!(["payment_lines.date", ">=", raw::date(from)]),
        ];
        if let Some(to) = to {
            domain.push(json!(["payment_lines.date", "<=", raw::date(to)]));
        }
        let invoices = self
            .client
            .search(
                INVOICE,
                &Value::Array(domain),
                &[
                    "currency.code",
                    "payment_lines.date",
                    "payment_lines.debit",
                    "payment_lines.credit",
                    "payment_lines.description",
                ],
            )
            .await?;
        let mut out = Vec::new();
        for inv in &invoices {
            let Some(inv_id) = raw::id(inv) else { continue };
            let code = inv
                .get("currency")
                .and_then(|c| raw::text(c, "code"))
                .unwrap_or_default();
            let currency = ferry_canon::Currency::parse(&code).map_err(|e| {
                ConnectorError::protocol(format!("Tryton invoice {inv_id}: currency {code:?}: {e}"))
            })?;
            for line in inv
                .get("payment_lines")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(id), Some(date)) =
                    (raw::id(line), line.get("date").and_then(raw::read_date))
                else {
                    continue;
                };
                if date < from || to.is_some_and(|to| date > to) {
                    continue;
                }
                let amount = line
                    .get("credit")
                    .and_then(raw::read_decimal)
                    .unwrap_or_default()
                    - line
                        .get("debit")
                        .and_then(raw::read_decimal)
                        .unwrap_or_default();
                out.push(ErpPayment {
                    erp_id: mapper::erp_id("account.move.line", id),
                    invoice_erp_id: mapper::erp_id(INVOICE, inv_id),
                    date,
                    amount: Money::new(amount, currency),
                    reference: raw::text(line, "description"),
                    state: ErpState::Posted,
                });
            }
        }
        Ok(out)
    }

    /// The end of the last closed or locked standard period.
    async fn closed_through(&self) -> Result<Option<NaiveDate>, ConnectorError> {
        Ok(self
            .client
            .search(
                "account.period",
                &json!([
                    ["state", "in", ["closed", "locked"]],
                    ["type", "=", "standard"]
                ]),
                &["end_date"],
            )
            .await?
            .iter()
            .filter_map(|p| p.get("end_date").and_then(raw::read_date))
            .max())
    }

    async fn tax_rules(&self) -> Result<Option<ferry_core::ports::TaxRules>, ConnectorError> {
        // Tryton taxes a line by its product's customer taxes, not by a type Ferry sends.
        Ok(None)
    }

    /// `timesheet.line` dated in the range: its hours, and Ferry's reference
    /// (the first word of the description) where it has one.
    async fn list_timesheets(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ferry_core::ports::ErpTimesheetLine>, ConnectorError> {
        let found = self
            .client
            .search(
                TIMESHEET,
                &json!([
                    ["date", ">=", raw::date(from)],
                    ["date", "<=", raw::date(to)]
                ]),
                &["date", "duration", "description"],
            )
            .await?;
        found
            .iter()
            .map(|l| {
                let id = raw::id(l).ok_or_else(|| {
                    ConnectorError::protocol(format!("Tryton timesheet line without an id: {l}"))
                })?;
                let hours = raw::read_timedelta_hours(&l["duration"]).ok_or_else(|| {
                    ConnectorError::protocol(format!("timesheet line {id}: unreadable duration"))
                })?;
                let date = raw::read_date(&l["date"]).ok_or_else(|| {
                    ConnectorError::protocol(format!("timesheet line {id}: unreadable date"))
                })?;
                Ok(ferry_core::ports::ErpTimesheetLine {
                    erp_id: mapper::erp_id(TIMESHEET, id),
                    date,
                    hours,
                    reference: l["description"]
                        .as_str()
                        .and_then(|d| d.split(' ').next())
                        .map(String::from),
                })
            })
            .collect()
    }
}
