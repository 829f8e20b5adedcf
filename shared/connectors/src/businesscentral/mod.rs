//! Dynamics 365 Business Central (API v2.0) as the ERP target: customers, sales
//! invoices and sales credit memos over OData v4 with Microsoft Entra client
//! credentials. New documents go in one JSON `$batch` (up to 100); a document
//! that exists is read for its etag and rewritten in one atomic `$batch` (its
//! header patched `If-Match`, its lines replaced), so a half-written invoice
//! never stays behind; an authorised one is posted with `Microsoft.NAV.post`.
//! Business Central has no idempotency key: Ferry's reference (the customer's
//! `number`, the document's `externalDocumentNumber`) is how a document is
//! found again after an answer that never came. Payments come back through
//! webhooks Ferry subscribes to itself (`webhook`). Limits: 6,000 requests per
//! five minutes, kept as a per-minute pace.
//! Reference: `../shared/docs/VENDORS.md` §1 and [B1]-[B6].
//!
//! Size: the connector's two port impls (about 450 lines: create in one batch,
//! rewrite atomically, post, remove, find; the reader's six reads).

pub mod auth;
pub mod client;
pub mod config;
pub mod entry;
pub mod mapper;
pub mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::{Money, SystemId};
use ferry_core::ConnectorError;
use ferry_core::ports::{
    ErpCapabilities, ErpChange, ErpDocument, ErpPayment, ErpReader, ErpRef, ErpState,
    ErpTimesheetLine, ErpWriter, ItemResult, OutboundItem, RateLimits, TaxRules,
};
use ferry_core::posting::{DocBody, DocKind, DocStatus, PostingDoc};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use client::Client;
pub use config::BusinessCentralConfig;

use client::{Op, error_text};

/// Calls in flight at once from one process.
pub const CONCURRENT: u32 = 5;

pub fn system() -> SystemId {
    SystemId::parse("businesscentral").expect("valid slug")
}

pub struct BusinessCentral {
    client: Arc<Client>,
}

fn refused(status: u16, body: &Value) -> ItemResult {
    ItemResult::Rejected {
        messages: vec![
            error_text(body).unwrap_or_else(|| format!("Business Central answered {status}")),
        ],
        response: body.clone(),
    }
}

fn written(body: Value) -> ItemResult {
    match body.get("id").and_then(Value::as_str).map(String::from) {
        Some(erp_id) => written_as(erp_id, body),
        None => ItemResult::Unconfirmed {
            message: "Business Central accepted the document but its answer has no id".into(),
            response: body,
        },
    }
}

/// Document `erp_id` as Business Central shows it in `body`.
fn written_as(erp_id: String, body: Value) -> ItemResult {
    ItemResult::Ok {
        erp_id,
        erp_number: body.get("number").and_then(Value::as_str).map(String::from),
        response: body,
    }
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl BusinessCentral {
    pub fn new(client: Arc<Client>) -> Self {
        BusinessCentral { client }
    }

    pub fn capabilities_for(cfg: &BusinessCentralConfig) -> ErpCapabilities {
        ErpCapabilities {
            kinds: &[DocKind::Contact, DocKind::Invoice, DocKind::CreditNote],
            // A customer's number is Code[20].
            reference_len: 20,
            max_batch: cfg.batch_size.clamp(1, config::MAX_BATCH),
            unit_price_decimals: 5,
        }
    }

    pub fn limits_for(cfg: &BusinessCentralConfig) -> RateLimits {
        RateLimits {
            per_minute: config::PER_MINUTE
                .saturating_sub(cfg.minute_headroom)
                .max(1),
            per_day: config::PER_MINUTE * 60 * 24,
            concurrent: CONCURRENT,
        }
    }

    pub fn account_key_for(cfg: &BusinessCentralConfig) -> String {
        format!("businesscentral:{}:{}", cfg.tenant_id, cfg.company_id)
    }

    fn url(&self, entity: &str, id: &str) -> String {
        format!("{}({id})", self.client.cfg.entity(entity))
    }

    /// Posts an authorised document after it was written.
    async fn post_if_authorised(
        &self,
        kind: DocKind,
        item: &OutboundItem,
        result: ItemResult,
    ) -> Result<ItemResult, ConnectorError> {
        let authorised =
            matches!(&item.doc.body, DocBody::Invoice(i) if i.status == DocStatus::Authorised);
        let (
            ItemResult::Ok {
                erp_id, response, ..
            },
            true,
        ) = (&result, authorised)
        else {
            return Ok(result);
        };
        // The write's own answer says whether the document is still a draft.
        if response.get("status").and_then(Value::as_str) != Some("Draft") {
            return Ok(result);
        }
        let entity = mapper::entity(kind).expect("an invoice kind");
        let a = self
            .client
            .send(
                Method::POST,
                &format!("{}/Microsoft.NAV.post", self.url(entity, erp_id)),
                None,
                None,
            )
            .await?;
        Ok(if a.status.is_success() {
            result
        } else {
            refused(a.status.as_u16(), &a.body)
        })
    }

    /// Rewrites an existing document in one atomic `$batch`: its header
    /// patched with its etag, its lines replaced.
    async fn rewrite(
        &self,
        kind: DocKind,
        item: &OutboundItem,
        id: &str,
    ) -> Result<ItemResult, ConnectorError> {
        let entity = mapper::entity(kind).expect("a written kind");
        let url = self.url(entity, id);
        let expand = if kind == DocKind::Contact {
            String::new()
        } else {
            format!("?$expand={}", mapper::lines_of(kind))
        };
        let Some(current) = self.client.get(&format!("{url}{expand}")).await? else {
            return Ok(ItemResult::Rejected {
                messages: vec![format!("Business Central has no {} {id} any more", entity)],
                response: Value::Null,
            });
        };
        // A document that already holds this content (an earlier attempt wrote
        // it and its answer was lost) needs no write, even one no longer editable.
        if let DocBody::Invoice(inv) = &item.doc.body
            && mapper::holds(kind, &current, &item.doc.reference, inv)
        {
            return Ok(written_as(id.to_string(), current));
        }
        let etag = current
            .get("@odata.etag")
            .and_then(Value::as_str)
            .map(String::from);
        let mut ops = Vec::new();
        match (&item.doc.body, kind) {
            (DocBody::Contact(_), _) => ops.push(Op {
                method: "PATCH",
                url: url.clone(),
                if_match: etag,
                body: Some(mapper::customer(item)?),
            }),
            (DocBody::Invoice(inv), _) => {
                ops.push(Op {
                    method: "PATCH",
                    url: url.clone(),
                    if_match: etag,
                    body: Some(mapper::header(kind, &item.doc.reference, inv)),
                });
                let nav = mapper::lines_of(kind);
                for l in current
                    .get(nav)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(lid) = l.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    ops.push(Op {
                        method: "DELETE",
                        url: format!("{url}/{nav}({lid})"),
                        if_match: l
                            .get("@odata.etag")
                            .and_then(Value::as_str)
                            .map(String::from),
                        body: None,
                    });
                }
                for l in &inv.lines {
                    ops.push(Op {
                        method: "POST",
                        url: format!("{url}/{nav}"),
                        if_match: None,
                        body: Some(mapper::line(l)),
                    });
                }
            }
            _ => {
                return Err(ConnectorError::Config {
                    message: format!("{} cannot be rewritten", item.doc.key),
                });
            }
        }
        let answers = self.client.batch(&ops, true).await?;
        // The operation that failed, not the ones its failure undid (424).
        let failed = answers
            .iter()
            .find(|(s, _)| *s >= 300 && *s != 424)
            .or_else(|| answers.iter().find(|(s, _)| *s >= 300));
        if let Some((status, body)) = failed {
            if *status == StatusCode::PRECONDITION_FAILED.as_u16()
                || *status == StatusCode::CONFLICT.as_u16()
            {
                return Err(ConnectorError::transient(format!(
                    "{} changed in Business Central while Ferry wrote it: {}",
                    item.doc.key,
                    error_text(body).unwrap_or_default()
                )));
            }
            return Ok(refused(*status, body));
        }
        // The batch held together: the document is the one Ferry read, rewritten.
        let header = answers
            .into_iter()
            .next()
            .map(|(_, b)| b)
            .unwrap_or(Value::Null);
        Ok(written_as(id.to_string(), header))
    }

    /// Removes a document: a draft is deleted, a posted one cancelled.
    async fn remove(
        &self,
        kind: DocKind,
        item: &OutboundItem,
    ) -> Result<ItemResult, ConnectorError> {
        let entity = mapper::entity(kind).expect("an invoice kind");
        let id = match &item.erp_id {
            Some(id) => id.clone(),
            None => match self.find_by_reference(&item.doc).await? {
                Some(r) => r.erp_id,
                None => {
                    return Ok(ItemResult::Ok {
                        erp_id: String::new(),
                        erp_number: None,
                        response: Value::Null,
                    });
                }
            },
        };
        let url = self.url(entity, &id);
        let Some(current) = self.client.get(&url).await? else {
            return Ok(ItemResult::Ok {
                erp_id: id,
                erp_number: None,
                response: Value::Null,
            });
        };
        let a = if current.get("status").and_then(Value::as_str) == Some("Draft") {
            let etag = current.get("@odata.etag").and_then(Value::as_str);
            self.client.send(Method::DELETE, &url, etag, None).await?
        } else {
            self.client
                .send(
                    Method::POST,
                    &format!("{url}/Microsoft.NAV.cancel"),
                    None,
                    None,
                )
                .await?
        };
        Ok(
            if a.status.is_success() || a.status == StatusCode::NOT_FOUND {
                ItemResult::Ok {
                    erp_id: id,
                    erp_number: None,
                    response: a.body,
                }
            } else {
                refused(a.status.as_u16(), &a.body)
            },
        )
    }
}

#[async_trait]
impl ErpWriter for BusinessCentral {
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
        Self::capabilities_for(&self.client.cfg)
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
        let entity = mapper::entity(kind).ok_or_else(|| ConnectorError::Config {
            message: format!("Ferry writes no {} to Business Central", kind.as_str()),
        })?;
        let mut results: Vec<Option<ItemResult>> = vec![None; items.len()];
        // New documents: one $batch of creates.
        let new: Vec<usize> = (0..items.len())
            .filter(|n| items[*n].erp_id.is_none() && !items[*n].doc.is_removal())
            .collect();
        if !new.is_empty() {
            let ops = new
                .iter()
                .map(|n| {
                    Ok(Op {
                        method: "POST",
                        url: self.client.cfg.entity(entity),
                        if_match: None,
                        body: Some(mapper::render(&items[*n])?),
                    })
                })
                .collect::<Result<Vec<_>, ConnectorError>>()?;
            for (n, (status, body)) in new.iter().zip(self.client.batch(&ops, false).await?) {
                let r = if (200..300).contains(&status) {
                    written(body)
                } else {
                    refused(status, &body)
                };
                results[*n] = Some(self.post_if_authorised(kind, &items[*n], r).await?);
            }
        }
        for (n, item) in items.iter().enumerate() {
            if results[n].is_some() {
                continue;
            }
            let r = if item.doc.is_removal() {
                self.remove(kind, item).await?
            } else {
                let id = item.erp_id.clone().expect("existing documents have an id");
                let r = self.rewrite(kind, item, &id).await?;
                self.post_if_authorised(kind, item, r).await?
            };
            results[n] = Some(r);
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every item answered"))
            .collect())
    }

    /// `$filter=number eq '…'` (customers) or `externalDocumentNumber eq '…'`
    /// (documents), skipping cancelled ones.
    async fn find_by_reference(&self, doc: &PostingDoc) -> Result<Option<ErpRef>, ConnectorError> {
        let Some(entity) = mapper::entity(doc.kind) else {
            return Ok(None);
        };
        let field = if doc.kind == DocKind::Contact {
            "number"
        } else {
            "externalDocumentNumber"
        };
        let found = self
            .client
            .list(
                &self.client.cfg.entity(entity),
                &[("$filter", format!("{field} eq {}", quoted(&doc.reference)))],
            )
            .await?;
        Ok(found
            .iter()
            .find(|d| {
                !matches!(
                    d.get("status").and_then(Value::as_str),
                    Some("Canceled" | "Corrective")
                )
            })
            .and_then(|d| {
                Some(ErpRef {
                    erp_id: d.get("id")?.as_str()?.to_string(),
                    number: d.get("number").and_then(Value::as_str).map(String::from),
                })
            }))
    }
}

#[async_trait]
impl ErpReader for BusinessCentral {
    async fn list_documents(
        &self,
        kind: DocKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ErpDocument>, ConnectorError> {
        let Some(entity) = mapper::entity(kind).filter(|_| kind != DocKind::Contact) else {
            return Ok(Vec::new());
        };
        let date = mapper::date_field(kind);
        self.client
            .list(
                &self.client.cfg.entity(entity),
                &[
                    ("$filter", format!("{date} ge {from} and {date} le {to}")),
                    ("$expand", mapper::lines_of(kind).to_string()),
                ],
            )
            .await?
            .iter()
            .map(|d| mapper::read_document(kind, d))
            .collect()
    }

    async fn fetch_document(
        &self,
        kind: DocKind,
        erp_id: &str,
    ) -> Result<Option<ErpDocument>, ConnectorError> {
        let Some(entity) = mapper::entity(kind).filter(|_| kind != DocKind::Contact) else {
            return Ok(None);
        };
        if erp_id.is_empty() || !erp_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(ConnectorError::protocol(format!(
                "{erp_id:?} is not a Business Central id"
            )));
        }
        self.client
            .get(&format!(
                "{}?$expand={}",
                self.url(entity, erp_id),
                mapper::lines_of(kind)
            ))
            .await?
            .map(|d| mapper::read_document(kind, &d))
            .transpose()
    }

    async fn changed_invoices(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ErpChange>, ConnectorError> {
        let mut query = vec![("$select", "id,lastModifiedDateTime".to_string())];
        if let Some(s) = since {
            query.push((
                "$filter",
                format!(
                    "lastModifiedDateTime gt {}",
                    s.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ));
        }
        let mut out = Vec::new();
        for v in self
            .client
            .list(&self.client.cfg.entity("salesInvoices"), &query)
            .await?
        {
            let (Some(id), Some(at)) = (
                v.get("id").and_then(Value::as_str),
                v.get("lastModifiedDateTime")
                    .and_then(Value::as_str)
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok()),
            ) else {
                return Err(ConnectorError::protocol(format!(
                    "a changed invoice Ferry cannot read: {v}"
                )));
            };
            out.push(ErpChange {
                erp_id: id.to_string(),
                updated_at: at.with_timezone(&Utc),
            });
        }
        Ok(ErpChange::oldest_first(out))
    }

    /// API v2.0 shows customer payments only as journal lines before they are
    /// posted, so what was paid is read from the invoices: one payment per
    /// invoice of its paid amount (total less remaining), dated its last change.
    async fn list_payments(
        &self,
        from: NaiveDate,
        to: Option<NaiveDate>,
    ) -> Result<Vec<ErpPayment>, ConnectorError> {
        let mut out = Vec::new();
        // Only invoices changed since `from` can carry a payment dated from it.
        let since = [(
            "$filter",
            format!("lastModifiedDateTime ge {from}T00:00:00Z"),
        )];
        for v in self
            .client
            .list(&self.client.cfg.entity("salesInvoices"), &since)
            .await?
        {
            let d = mapper::read_document(DocKind::Invoice, &v)?;
            let when = v
                .get("lastModifiedDateTime")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.date_naive())
                .unwrap_or(d.date);
            if d.amount_paid.is_zero() || when < from || to.is_some_and(|t| when > t) {
                continue;
            }
            out.push(ErpPayment {
                erp_id: format!("{}-paid", d.erp_id),
                invoice_erp_id: d.erp_id.clone(),
                date: when,
                amount: Money::new(d.amount_paid, d.currency),
                reference: d.number.clone(),
                state: if d.state.is_gone() {
                    ErpState::Voided
                } else {
                    ErpState::Posted
                },
            });
        }
        Ok(out)
    }

    /// The day before the first open accounting period after the last closed one.
    async fn closed_through(&self) -> Result<Option<NaiveDate>, ConnectorError> {
        let mut periods: Vec<(NaiveDate, bool)> = self
            .client
            .list(&self.client.cfg.entity("accountingPeriods"), &[])
            .await?
            .iter()
            .filter_map(|p| {
                let start =
                    NaiveDate::parse_from_str(p.get("startingDate")?.as_str()?, "%Y-%m-%d").ok()?;
                Some((
                    start,
                    p.get("closed").and_then(Value::as_bool).unwrap_or(false),
                ))
            })
            .collect();
        periods.sort();
        let Some(last_closed) = periods.iter().rposition(|(_, closed)| *closed) else {
            return Ok(None);
        };
        Ok(periods
            .get(last_closed + 1)
            .and_then(|(start, _)| start.pred_opt()))
    }

    async fn tax_rules(&self) -> Result<Option<TaxRules>, ConnectorError> {
        // API v2.0 does not expose the rates behind its tax groups.
        Ok(None)
    }

    async fn list_timesheets(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
    ) -> Result<Vec<ErpTimesheetLine>, ConnectorError> {
        Ok(Vec::new())
    }
}
