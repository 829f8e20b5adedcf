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
mod codes;
pub mod config;
pub mod entry;
mod invoices;
pub mod mapper;
mod projects;
pub mod raw;
mod reader;
mod timesheets;

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
