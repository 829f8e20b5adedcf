//! Vendor-neutral connector ports. Each vendor module in `ferry-connectors`
//! implements these with the same shape: config, client, raw types, mapper,
//! webhook verifier, retry rules.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::{CanonicalRecord, Currency, Domain, Money, SourceVersion, SystemId, TenantId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{ConnectorError, MappingError};
use crate::ports::budget::RateLimits;
use crate::ports::cursor::Cursor;
use crate::posting::{DocKind, PostingDoc};

/// A record as a source system returned it: raw JSON plus what the pipeline
/// needs to order and dedupe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub domain: Domain,
    pub id: String,
    pub version: SourceVersion,
    #[serde(default)]
    pub deleted: bool,
    pub raw: serde_json::Value,
}

/// Payment status to write back to the PSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentUpdate {
    pub amount_paid: Money,
    pub amount_due: Money,
    pub paid_on: Option<NaiveDate>,
    pub erp_reference: String,
}

/// The PSA side of a tenant's connection.
#[async_trait]
pub trait PsaConnector: Send + Sync {
    fn system(&self) -> SystemId;

    /// Domains this connector can poll, in dependency order (customers first).
    fn pollable(&self) -> Vec<Domain>;

    /// Domains whose deletions this PSA does not announce (no webhook, no
    /// deleted flag): a periodic sweep compares ids to find them.
    fn swept(&self) -> Vec<Domain> {
        Vec::new()
    }

    /// Other domains whose records share ids with `domain`'s, where a notice
    /// cannot always tell them apart (ConnectWise sends credit memos as
    /// invoices, and a deletion carries no type): a deletion of a record Ferry
    /// does not hold under the notice's domain is looked for under these.
    fn shares_ids_with(&self, _domain: Domain) -> Vec<Domain> {
        Vec::new()
    }

    /// Records of `domain` strictly after `after` in `(updated_at, id)` order,
    /// at most `limit`. `None` starts from the beginning.
    async fn changes(
        &self,
        domain: Domain,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<SourceRecord>, ConnectorError>;

    /// The current state of one record; `None` when it no longer exists.
    async fn fetch(&self, domain: Domain, id: &str)
    -> Result<Option<SourceRecord>, ConnectorError>;

    /// Pure, fallible mapping of a raw record to the canonical model.
    fn to_canonical(
        &self,
        tenant: &TenantId,
        record: &SourceRecord,
    ) -> Result<CanonicalRecord, MappingError>;

    /// Every live record of `domain` whose accounting date is in `[from, to]`
    /// (reconciliation reads the source of truth, not our copy).
    async fn list_period(
        &self,
        domain: Domain,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<SourceRecord>, ConnectorError>;

    /// Writes payment status back onto a PSA invoice.
    async fn apply_payment(
        &self,
        invoice_id: &str,
        update: &PaymentUpdate,
    ) -> Result<(), ConnectorError>;
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
    pub status: String,
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

/// A payment as read back from the ERP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErpPayment {
    pub erp_id: String,
    pub invoice_erp_id: String,
    pub date: NaiveDate,
    pub amount: Money,
    pub reference: Option<String>,
    pub status: String,
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

/// The ERP side of a tenant's connection.
#[async_trait]
pub trait ErpConnector: Send + Sync {
    fn system(&self) -> SystemId;

    /// The key of the shared rate-limit budget (one per ERP account/organisation).
    fn account_key(&self) -> String;

    fn limits(&self) -> RateLimits;

    /// Most documents one write call may carry.
    fn max_batch(&self) -> usize;

    /// Decimal places the ERP keeps in a line's unit price; a price with more
    /// is refused before posting rather than rounded by the ERP.
    fn unit_price_decimals(&self) -> u32;

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

    /// Payments dated in `[from, to]`.
    async fn list_payments(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ErpPayment>, ConnectorError>;

    /// The last date of the closed (locked) accounting periods, if any.
    async fn closed_through(&self) -> Result<Option<NaiveDate>, ConnectorError>;

    /// How the ERP taxes the lines Ferry sends with tax types, so reconciliation
    /// can check the tax it adds; `None` where the ERP decides tax from its own
    /// data (Tryton: the product's taxes), which reconciliation then reports
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

/// What changed, according to a verified webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    Upsert,
    Delete,
}

/// One event from a verified webhook delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEvent {
    /// The vendor's event or message id, for dedupe.
    pub event_id: String,
    /// The system the record lives in (the PSA, or the ERP for payment events).
    pub system: SystemId,
    pub domain: Domain,
    pub id: String,
    pub action: ChangeAction,
    pub version: Option<SourceVersion>,
    /// The full record when the vendor sent it ("fat" notice).
    pub record: Option<serde_json::Value>,
}

/// Why a webhook delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("signature does not match")]
    BadSignature,
    #[error("signing key unavailable: {0}")]
    KeyUnavailable(String),
    #[error("malformed payload: {0}")]
    Malformed(String),
}

/// Request headers with lower-cased names.
pub type Headers = Vec<(String, String)>;

/// Finds a header by lower-case name.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Verifies a vendor's webhook over the raw body and parses its events.
/// Signature first, on the raw bytes, with a constant-time compare.
///
/// A correctly signed delivery is never refused for its age: replays are
/// harmless (event-id dedupe, and the ledger never lets an older version
/// overwrite a newer one). `now` (the injected clock) only decides whether a
/// body is recent enough to be mapped as sent; an event whose body is not
/// trusted is returned thin (`record: None`), and transform reads the record
/// from the vendor.
#[async_trait]
pub trait WebhookVerifier: Send + Sync {
    async fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError>;
}

/// Admission control for every outbound ERP call: the shared rate budget.
/// Connectors call `admit` before each HTTP request and `throttled` on a 429.
#[async_trait]
pub trait CallGate: Send + Sync {
    /// Waits briefly for budget, or fails `Throttled` so the message is retried later.
    async fn admit(&self) -> Result<(), ConnectorError>;

    /// The ERP said 429: pause the whole account.
    async fn throttled(&self, retry_after: Duration);
}
