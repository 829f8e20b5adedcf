//! The PSA port: what the pipeline reads from a professional-services system,
//! and the one thing it writes back (payment status).

use async_trait::async_trait;
use chrono::NaiveDate;
use ferry_canon::{CanonicalRecord, Domain, Money, SourceVersion, SystemId, TenantId};
use serde::{Deserialize, Serialize};

use crate::error::{ConnectorError, MappingError};
use crate::ports::cursor::Cursor;

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
