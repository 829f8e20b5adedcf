//! Xero as the ERP target: Contacts, Invoices (ACCREC), CreditNotes, Payments
//! read back, tracking categories for dimensions, `Idempotency-Key`, batch writes
//! with `summarizeErrors=false`, and Xero's limits (60/min, 5 concurrent,
//! 5,000/day per organisation; 429 with `Retry-After`).
//! Reference: https://developer.xero.com/documentation/api/accounting/overview
//! and the official OpenAPI `xero_accounting.yaml`.
//!
//! Size: the connector's two port impls (writer and reader), one method per
//! Xero endpoint; rendering and reading are in `mapper`.

pub mod auth;
pub mod config;
pub mod entry;
pub mod mapper;
pub mod raw;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use ferry_canon::SystemId;
use ferry_core::ConnectorError;
use ferry_core::ports::{
    CallGate, ErpCapabilities, ErpDocument, ErpPayment, ErpReader, ErpRef, ErpWriter, ItemResult,
    OutboundItem, RateLimits, Secret,
};
use ferry_core::posting::{DocKind, PostingDoc};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

pub use auth::{OAuthTokens, XeroAuth};
pub use config::XeroConfig;
pub use webhook::XeroWebhooks;

use crate::api::{Api, Vendor};

/// Xero's per-organisation limits.
pub const PER_MINUTE: u32 = 60;
pub const PER_DAY: u32 = 5000;
pub const CONCURRENT: u32 = 5;

/// The system id Xero documents carry.
pub fn system() -> SystemId {
    SystemId::parse("xero").expect("valid slug")
}

/// One organisation's Xero connection.
pub struct Xero {
    cfg: XeroConfig,
    api: Api<XeroApi>,
}

/// What Xero adds to the shared client: a bearer token (renewed once when
/// refused, for an OAuth connection), the organisation header, and its error shape.
struct XeroApi {
    auth: XeroAuth,
    tenant_id: String,
}

#[async_trait]
impl Vendor for XeroApi {
    type Credential = Secret;

    fn name(&self) -> &'static str {
        "xero"
    }

    async fn credential(&self) -> Result<Secret, ConnectorError> {
        self.auth.token().await
    }

    fn authorize(&self, req: RequestBuilder, token: &Secret) -> RequestBuilder {
        req.bearer_auth(token.expose())
            .header("xero-tenant-id", &self.tenant_id)
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn renew(&self, refused: &Secret) -> Result<Option<Secret>, ConnectorError> {
        self.auth.renew(refused).await
    }

    fn error_text(&self, body: &Value) -> Option<String> {
        body.get("Message")
            .or_else(|| body.get("Detail"))
            .and_then(Value::as_str)
            .map(String::from)
    }

    fn throttle_problem(&self, headers: &reqwest::header::HeaderMap) -> Option<String> {
        headers
            .get("x-rate-limit-problem")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }
}

fn collection(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Contact => "Contacts",
        DocKind::Invoice => "Invoices",
        DocKind::CreditNote => "CreditNotes",
        // Never sent: rendering refuses projects (Xero's accounting API has none).
        DocKind::Project => "Projects",
        DocKind::Timesheet => "Timesheets",
    }
}

fn date_literal(d: NaiveDate) -> String {
    format!("DateTime({}, {:02}, {:02})", d.year(), d.month(), d.day())
}

impl Xero {
    /// `gate` is the tenant's shared rate budget; every request passes it.
    pub fn new(cfg: XeroConfig, auth: XeroAuth, gate: Arc<dyn CallGate>) -> Self {
        let api = Api::new(
            XeroApi {
                auth,
                tenant_id: cfg.tenant_id.clone(),
            },
            Duration::from_secs(cfg.timeout_seconds),
            Some(gate),
            Some(CONCURRENT),
        );
        Xero { cfg, api }
    }

    /// What Xero writes and its limits, for these settings.
    pub fn capabilities_for(cfg: &XeroConfig) -> ErpCapabilities {
        ErpCapabilities {
            // Projects and timesheets live in Xero Projects, a separate API Ferry does not write.
            kinds: &[DocKind::Contact, DocKind::Invoice, DocKind::CreditNote],
            // ContactNumber and Reference hold 50 characters.
            reference_len: 50,
            max_batch: cfg.batch_size.clamp(1, 100),
            // With unitdp=4 on every call (see `call_with`).
            unit_price_decimals: 4,
        }
    }

    /// The limits every Ferry process applies to this organisation.
    pub fn limits_for(cfg: &XeroConfig) -> RateLimits {
        RateLimits {
            per_minute: PER_MINUTE.saturating_sub(cfg.minute_headroom).max(1),
            per_day: PER_DAY,
            concurrent: CONCURRENT,
        }
    }

    /// The budget key for an organisation.
    pub fn account_key_for(cfg: &XeroConfig) -> String {
        format!("xero:{}", cfg.tenant_id)
    }

    /// One API call: budget, concurrency, auth headers, status classification.
    /// A 400 comes back as `Ok` so callers can read Xero's validation errors.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(StatusCode, Value), ConnectorError> {
        self.call_with(method, path, query, body, idempotency_key, None)
            .await
    }

    /// [`Self::call`] with an optional `If-Modified-Since`.
    async fn call_with(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> Result<(StatusCode, Value), ConnectorError> {
        let url = format!("{}/{}", self.cfg.base_url.trim_end_matches('/'), path);
        let mut req = self
            .api
            .request(method, &url)
            .query(query)
            // Four decimal places for unit amounts, in and out: without it Xero
            // rounds a unit price of 12.3456 to 12.35 and its line differs from Ferry's.
            .query(&[("unitdp", "4")]);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(since) = if_modified_since {
            req = req.header("If-Modified-Since", since);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let answer = self.api.send(req, &[StatusCode::BAD_REQUEST]).await?;
        if answer.status == StatusCode::BAD_REQUEST
            && answer.body.is_null()
            && !answer.text.trim().is_empty()
        {
            // A refusal Ferry cannot read is not a validation error it can show.
            return Err(ConnectorError::protocol(format!(
                "Xero answered 400 without a readable body: {}",
                answer.text.chars().take(200).collect::<String>()
            )));
        }
        Ok((answer.status, answer.body))
    }

    /// All pages of a GET collection (`page=1..`, 100 per page).
    async fn get_all(
        &self,
        path: &str,
        key: &str,
        filter: Option<String>,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut out = Vec::new();
        for page in 1.. {
            let mut query = vec![("page", page.to_string()), ("pageSize", "100".to_string())];
            if let Some(f) = &filter {
                query.push(("where", f.clone()));
            }
            let (status, v) = self.call(Method::GET, path, &query, None, None).await?;
            if status == StatusCode::BAD_REQUEST {
                return Err(rejection(&v));
            }
            // An answer without the collection is not an empty one.
            let Some(items) = v.get(key).and_then(Value::as_array) else {
                return Err(ConnectorError::protocol(format!(
                    "Xero {path} page {page} answered without a {key} list"
                )));
            };
            let n = items.len();
            out.extend(items.iter().cloned());
            if n < 100 {
                break;
            }
        }
        Ok(out)
    }
}

fn rejection(v: &Value) -> ConnectorError {
    let e: raw::Error = serde_json::from_value(v.clone()).unwrap_or_default();
    ConnectorError::Rejected {
        status: 400,
        message: e.message.unwrap_or_else(|| v.to_string()),
    }
}

#[async_trait]
impl ErpWriter for Xero {
    fn system(&self) -> SystemId {
        system()
    }

    fn account_key(&self) -> String {
        Self::account_key_for(&self.cfg)
    }

    fn limits(&self) -> RateLimits {
        Self::limits_for(&self.cfg)
    }
    fn capabilities(&self) -> ErpCapabilities {
        Xero::capabilities_for(&self.cfg)
    }

    fn render(&self, item: &OutboundItem) -> Result<Value, ConnectorError> {
        mapper::render(item)
    }

    /// `POST /{Contacts|Invoices|CreditNotes}?summarizeErrors=false` with `Idempotency-Key`.
    async fn upsert(
        &self,
        kind: DocKind,
        items: &[OutboundItem],
        idempotency_key: &str,
    ) -> Result<Vec<ItemResult>, ConnectorError> {
        let key = collection(kind);
        let docs: Vec<Value> = items.iter().map(mapper::render).collect::<Result<_, _>>()?;
        let body = json!({ key: docs });
        let (status, v) = self
            .call(
                Method::POST,
                key,
                &[("summarizeErrors", "false".into())],
                Some(&body),
                Some(&idempotency_key[..idempotency_key.len().min(128)]),
            )
            .await?;
        if status == StatusCode::BAD_REQUEST {
            // The whole request was refused; attribute element errors to items when they line up.
            let e: raw::Error = serde_json::from_value(v.clone()).unwrap_or_default();
            let general = e
                .message
                .clone()
                .unwrap_or_else(|| "Xero refused the request".into());
            if e.elements.len() == items.len() {
                return Ok(e
                    .elements
                    .iter()
                    .map(|el| {
                        let mut messages: Vec<String> = el
                            .validation_errors
                            .iter()
                            .filter_map(|m| m.message.clone())
                            .collect();
                        if messages.is_empty() {
                            messages.push(general.clone());
                        }
                        ItemResult::Rejected {
                            messages,
                            response: v.clone(),
                        }
                    })
                    .collect());
            }
            return Err(ConnectorError::Rejected {
                status: 400,
                message: general,
            });
        }
        let returned = v
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if returned.len() != items.len() {
            return Err(ConnectorError::protocol(format!(
                "Xero returned {} {key} for {} sent",
                returned.len(),
                items.len()
            )));
        }
        // Each item is read on its own, and only for what post needs: a field
        // Ferry does not use, or cannot parse, never hides a created document's id.
        Ok(returned
            .into_iter()
            .map(|doc| mapper::write_receipt(kind, doc))
            .collect())
    }

    /// `GET /{collection}?where=Reference=="…"` (contacts: `ContactNumber`).
    async fn find_by_reference(&self, doc: &PostingDoc) -> Result<Option<ErpRef>, ConnectorError> {
        if matches!(doc.kind, DocKind::Project | DocKind::Timesheet) {
            return Ok(None);
        }
        let key = collection(doc.kind);
        let mut query = vec![("where", mapper::reference_filter(doc))];
        if doc.kind == DocKind::Contact {
            query.push(("includeArchived", "true".into()));
        }
        let (status, v) = self.call(Method::GET, key, &query, None, None).await?;
        if status == StatusCode::BAD_REQUEST {
            return Err(rejection(&v));
        }
        // A document Ferry deleted or voided keeps its reference in Xero; the
        // live one, if any, is what a later write must find.
        let Some(first) = v.get(key).and_then(Value::as_array).and_then(|a| {
            a.iter().find(|d| {
                !matches!(
                    d.get("Status").and_then(Value::as_str),
                    Some("DELETED" | "VOIDED")
                )
            })
        }) else {
            return Ok(None);
        };
        let (id, number) = match doc.kind {
            DocKind::Contact => (first.get("ContactID"), first.get("ContactNumber")),
            DocKind::Invoice => (first.get("InvoiceID"), first.get("InvoiceNumber")),
            DocKind::CreditNote => (first.get("CreditNoteID"), first.get("CreditNoteNumber")),
            DocKind::Project | DocKind::Timesheet => return Ok(None),
        };
        Ok(id.and_then(Value::as_str).map(|id| ErpRef {
            erp_id: id.to_string(),
            number: number.and_then(Value::as_str).map(String::from),
        }))
    }
}

#[async_trait]
impl ErpReader for Xero {
    /// `GET /Invoices` or `/CreditNotes` with a date-range `where`, paged.
    async fn list_documents(
        &self,
        kind: DocKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ErpDocument>, ConnectorError> {
        let (key, ty) = match kind {
            DocKind::Invoice => ("Invoices", "ACCREC"),
            DocKind::CreditNote => ("CreditNotes", "ACCRECCREDIT"),
            DocKind::Contact | DocKind::Project | DocKind::Timesheet => return Ok(Vec::new()),
        };
        let filter = format!(
            "Type==\"{ty}\" AND Date>={} AND Date<={}",
            date_literal(from),
            date_literal(to)
        );
        self.get_all(key, key, Some(filter))
            .await?
            .iter()
            .map(|v| {
                let d: raw::Document = serde_json::from_value(v.clone())
                    .map_err(|e| ConnectorError::protocol(format!("unreadable Xero {key}: {e}")))?;
                mapper::read_document(kind, &d)
            })
            .collect()
    }

    /// `GET /Invoices/{id}` or `GET /CreditNotes/{id}`.
    async fn fetch_document(
        &self,
        kind: DocKind,
        erp_id: &str,
    ) -> Result<Option<ErpDocument>, ConnectorError> {
        let key = match kind {
            DocKind::Invoice => "Invoices",
            DocKind::CreditNote => "CreditNotes",
            DocKind::Contact | DocKind::Project | DocKind::Timesheet => return Ok(None),
        };
        let result = self
            .call(Method::GET, &format!("{key}/{erp_id}"), &[], None, None)
            .await;
        let (status, v) = match result {
            Err(ConnectorError::Rejected { status: 404, .. }) => return Ok(None),
            other => other?,
        };
        if status == StatusCode::BAD_REQUEST {
            return Err(rejection(&v));
        }
        match v.get(key).and_then(Value::as_array).and_then(|a| a.first()) {
            Some(d) => {
                let d: raw::Document = serde_json::from_value(d.clone())
                    .map_err(|e| ConnectorError::protocol(format!("unreadable Xero {key}: {e}")))?;
                mapper::read_document(kind, &d).map(Some)
            }
            None => Ok(None),
        }
    }

    /// `GET /Invoices?where=Type=="ACCREC"` with `If-Modified-Since`, paged.
    async fn changed_invoices(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<ferry_core::ports::ErpChange>, ConnectorError> {
        let mut out = Vec::new();
        for page in 1.. {
            let query = vec![
                ("page", page.to_string()),
                ("pageSize", "100".to_string()),
                ("where", "Type==\"ACCREC\"".to_string()),
                ("summaryOnly", "true".to_string()),
            ];
            let header = since.map(|s| s.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            let (status, v) = self
                .call_with(
                    Method::GET,
                    "Invoices",
                    &query,
                    None,
                    None,
                    header.as_deref(),
                )
                .await?;
            if status == StatusCode::BAD_REQUEST {
                return Err(rejection(&v));
            }
            if status == StatusCode::NOT_MODIFIED {
                break;
            }
            // An answer without the collection is not an empty one.
            let Some(items) = v.get("Invoices").and_then(Value::as_array) else {
                return Err(ConnectorError::protocol(format!(
                    "Xero Invoices page {page} answered without an Invoices list"
                )));
            };
            let n = items.len();
            for i in items {
                let (Some(id), Some(at)) = (
                    i.get("InvoiceID").and_then(Value::as_str),
                    i.get("UpdatedDateUTC")
                        .and_then(Value::as_str)
                        .and_then(mapper::parse_instant),
                ) else {
                    tracing::warn!(invoice = %i, "Xero listed an invoice without a readable id or UpdatedDateUTC; the payment sweep skips it");
                    continue;
                };
                out.push(ferry_core::ports::ErpChange {
                    erp_id: id.to_string(),
                    updated_at: at,
                });
            }
            if n < 100 {
                break;
            }
        }
        Ok(ferry_core::ports::ErpChange::oldest_first(out))
    }

    /// `GET /Payments` dated from `from` (and up to `to` unless open-ended).
    async fn list_payments(
        &self,
        from: NaiveDate,
        to: Option<NaiveDate>,
    ) -> Result<Vec<ErpPayment>, ConnectorError> {
        let mut filter = format!("Date>={}", date_literal(from));
        if let Some(to) = to {
            filter.push_str(&format!(" AND Date<={}", date_literal(to)));
        }
        let mut out = Vec::new();
        for v in self.get_all("Payments", "Payments", Some(filter)).await? {
            let p: raw::Payment = serde_json::from_value(v).map_err(|e| {
                ConnectorError::protocol(format!("a Xero payment Ferry cannot read: {e}"))
            })?;
            out.extend(mapper::read_payment(&p)?);
        }
        Ok(out)
    }

    /// `GET /Organisation` → `PeriodLockDate`.
    async fn closed_through(&self) -> Result<Option<NaiveDate>, ConnectorError> {
        let (status, v) = self
            .call(Method::GET, "Organisation", &[], None, None)
            .await?;
        if status == StatusCode::BAD_REQUEST {
            return Err(rejection(&v));
        }
        let org: Option<raw::Organisation> = v
            .get("Organisations")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|o| serde_json::from_value(o.clone()).ok());
        Ok(org
            .and_then(|o| o.period_lock_date)
            .and_then(|d| mapper::parse_date(&d)))
    }

    /// `GET /TaxRates`: each tax type's effective rate. Xero taxes an
    /// exclusive document per tax type on the summed line amounts (the
    /// organisation's "round at the total" setting, Xero's default for the API).
    async fn tax_rules(&self) -> Result<Option<ferry_core::ports::TaxRules>, ConnectorError> {
        let (status, v) = self.call(Method::GET, "TaxRates", &[], None, None).await?;
        if status == StatusCode::BAD_REQUEST {
            return Err(rejection(&v));
        }
        let Some(items) = v.get("TaxRates").and_then(Value::as_array) else {
            return Err(ConnectorError::protocol(
                "Xero TaxRates answered without a TaxRates list",
            ));
        };
        let mut rates = std::collections::BTreeMap::new();
        for t in items {
            let (Some(kind), Some(rate)) = (
                t.get("TaxType").and_then(Value::as_str),
                t.get("EffectiveRate")
                    .and_then(|r| serde_json::from_value::<rust_decimal::Decimal>(r.clone()).ok()),
            ) else {
                return Err(ConnectorError::protocol(format!(
                    "Xero tax rate without TaxType or EffectiveRate: {t}"
                )));
            };
            rates.insert(kind.to_string(), rate);
        }
        Ok(Some(ferry_core::ports::TaxRules {
            rates,
            rounding: ferry_core::ports::TaxRounding::PerTaxType,
        }))
    }

    async fn list_timesheets(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ferry_core::ports::ErpTimesheetLine>, ConnectorError> {
        // Xero's accounting API keeps no timesheets.
        let _ = (from, to);
        Ok(Vec::new())
    }
}
