//! The ERP port, split by direction: [`ErpWriter`] posts documents and
//! [`ErpReader`] reads back what the ERP holds. Everything here is in Ferry's
//! words; each connector maps its vendor's states, limits and shapes onto them.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::{Currency, Money, SystemId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::ConnectorError;
use crate::ports::budget::RateLimits;
use crate::posting::{DocKind, PostingDoc};

/// Where a document or payment stands in the ERP, in Ferry's words. Each
/// connector maps its own states onto these; a state it cannot map is a
/// protocol error, never a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErpState {
    /// Editable, not in the ledger.
    Draft,
    /// Waiting for someone's approval; not yet in the ledger.
    Submitted,
    /// In the ledger and open: amounts can no longer be edited, payments can be applied.
    Posted,
    /// In the ledger and fully paid.
    Paid,
    /// Cancelled after posting: kept for the record, worth nothing.
    Voided,
    /// Removed (a draft deleted, a payment reversed).
    Deleted,
}

impl ErpState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErpState::Draft => "draft",
            ErpState::Submitted => "submitted",
            ErpState::Posted => "posted",
            ErpState::Paid => "paid",
            ErpState::Voided => "voided",
            ErpState::Deleted => "deleted",
        }
    }

    /// Whether the document no longer counts (voided or deleted).
    pub fn is_gone(&self) -> bool {
        matches!(self, ErpState::Voided | ErpState::Deleted)
    }
}

impl std::fmt::Display for ErpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an ERP connector can post, and the limits its writes obey. Declared
/// by the connector; core asks, never assumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpCapabilities {
    /// Document kinds it writes.
    pub kinds: &'static [DocKind],
    /// Longest reference (Ferry's key on the ERP document) the ERP stores.
    pub reference_len: usize,
    /// Most documents one write call may carry.
    pub max_batch: usize,
    /// Decimal places the ERP keeps in a line's unit price; a price with more
    /// is refused before posting rather than rounded by the ERP.
    pub unit_price_decimals: u32,
}

impl ErpCapabilities {
    pub fn posts(&self, kind: DocKind) -> bool {
        self.kinds.contains(&kind)
    }
}

/// A document to write, with the ERP id when it already exists there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundItem {
    pub doc: PostingDoc,
    pub erp_id: Option<String>,
}

/// The ERP's answer for one item of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemResult {
    Ok {
        erp_id: String,
        erp_number: Option<String>,
        response: serde_json::Value,
    },
    /// The ERP refused this item; `messages` are its own words.
    Rejected {
        messages: Vec<String>,
        response: serde_json::Value,
    },
    /// The ERP answered for this item but the answer cannot be read as either:
    /// it may hold the document. Post treats it as an unknown outcome (the next
    /// attempt looks the document up by reference), never as a refusal.
    Unconfirmed {
        message: String,
        response: serde_json::Value,
    },
}

/// A document found in the ERP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpRef {
    pub erp_id: String,
    pub number: Option<String>,
}

/// One line of an ERP document, as read back for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErpLine {
    pub item_code: Option<String>,
    pub account_code: Option<String>,
    pub quantity: Decimal,
    pub line_amount: Decimal,
}

/// An ERP invoice or credit note as read back for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErpDocument {
    pub kind: DocKind,
    pub erp_id: String,
    pub number: Option<String>,
    pub reference: Option<String>,
    pub contact_erp_id: Option<String>,
    pub date: NaiveDate,
    pub currency: Currency,
    pub state: ErpState,
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    pub amount_paid: Decimal,
    pub amount_due: Decimal,
    pub lines: Vec<ErpLine>,
}

/// An ERP document that changed, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpChange {
    pub erp_id: String,
    pub updated_at: DateTime<Utc>,
}

impl ErpChange {
    /// Oldest first, ties by id: the order `changed_invoices` answers in.
    pub fn oldest_first(mut changes: Vec<ErpChange>) -> Vec<ErpChange> {
        changes.sort_by(|a, b| (a.updated_at, &a.erp_id).cmp(&(b.updated_at, &b.erp_id)));
        changes
    }
}

/// A payment as read back from the ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErpPayment {
    pub erp_id: String,
    pub invoice_erp_id: String,
    pub date: NaiveDate,
    pub amount: Money,
    pub reference: Option<String>,
    pub state: ErpState,
}

/// A timesheet line as read back from the ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErpTimesheetLine {
    pub erp_id: String,
    pub date: NaiveDate,
    pub hours: Decimal,
    /// Ferry's reference, where the line carries one.
    pub reference: Option<String>,
}

/// How the ERP computes the tax it adds to a document Ferry sends tax types with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRules {
    /// Percent by tax type (`OUTPUT` → 8.875).
    pub rates: std::collections::BTreeMap<String, Decimal>,
    pub rounding: TaxRounding,
}

/// Where the ERP rounds tax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxRounding {
    /// Each line's tax is rounded, then summed.
    PerLine,
    /// A document's lines are summed per tax type, and each sum's tax rounded.
    PerTaxType,
}

/// The write side of a tenant's ERP.
#[async_trait]
pub trait ErpWriter: Send + Sync {
    fn system(&self) -> SystemId;

    /// The key of the shared rate-limit budget (one per ERP account/organisation).
    fn account_key(&self) -> String;

    fn limits(&self) -> RateLimits;

    fn capabilities(&self) -> ErpCapabilities;

    /// The vendor request body for one item (used by posting, preview and audit).
    fn render(&self, item: &OutboundItem) -> Result<serde_json::Value, ConnectorError>;

    /// Creates or updates documents of one kind in one call. Results are in input order.
    async fn upsert(
        &self,
        kind: DocKind,
        items: &[OutboundItem],
        idempotency_key: &str,
    ) -> Result<Vec<ItemResult>, ConnectorError>;

    /// Looks a document up by Ferry's reference (after an attempt whose outcome is unknown).
    async fn find_by_reference(&self, doc: &PostingDoc) -> Result<Option<ErpRef>, ConnectorError>;
}

/// The read side of a tenant's ERP: what reconciliation, the payment sweep and
/// the period checks read back.
#[async_trait]
pub trait ErpReader: Send + Sync {
    /// Documents of one kind dated in `[from, to]`.
    async fn list_documents(
        &self,
        kind: DocKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ErpDocument>, ConnectorError>;

    /// One document by its ERP id; `None` if the ERP has no such document.
    async fn fetch_document(
        &self,
        kind: DocKind,
        erp_id: &str,
    ) -> Result<Option<ErpDocument>, ConnectorError>;

    /// Invoices changed after `since` (oldest first), for the payment sweep that
    /// catches what a missed webhook did not bring.
    async fn changed_invoices(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ErpChange>, ConnectorError>;

    /// Payments dated from `from`, up to `to` when given (open-ended otherwise).
    async fn list_payments(
        &self,
        from: NaiveDate,
        to: Option<NaiveDate>,
    ) -> Result<Vec<ErpPayment>, ConnectorError>;

    /// The last date of the closed (locked) accounting periods, if any.
    async fn closed_through(&self) -> Result<Option<NaiveDate>, ConnectorError>;

    /// How the ERP taxes the lines Ferry sends with tax types, so reconciliation
    /// can check the tax it adds; `None` where the ERP decides tax from its own
    /// data (e.g. the product's taxes), which reconciliation then reports
    /// without checking.
    async fn tax_rules(&self) -> Result<Option<TaxRules>, ConnectorError>;

    /// Timesheet lines dated in `[from, to]` (ERPs that keep timesheets; an
    /// ERP that keeps none answers an empty list).
    async fn list_timesheets(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ErpTimesheetLine>, ConnectorError>;
}

/// A tenant's ERP: both sides. Implemented for every type that has both.
pub trait ErpConnector: ErpWriter + ErpReader {}

impl<T: ErpWriter + ErpReader + ?Sized> ErpConnector for T {}

/// Admission control for every outbound ERP call: the shared rate budget.
/// Connectors call `admit` before each HTTP request and `throttled` on a 429.
#[async_trait]
pub trait CallGate: Send + Sync {
    /// Waits briefly for budget, or fails `Throttled` so the message is retried later.
    async fn admit(&self) -> Result<(), ConnectorError>;

    /// The ERP said 429: pause the whole account.
    async fn throttled(&self, retry_after: Duration);
}
