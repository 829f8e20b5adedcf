//! ConnectWise PSA as a source: companies, projects, time entries, expenses and
//! invoices (with credit memos), incremental reads on `lastUpdated`, callbacks,
//! and payment status written back onto invoices.

pub mod client;
pub mod config;
pub mod entry;
pub mod mapper;
pub mod raw;
pub mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use ferry_canon::{CanonicalRecord, Currency, Domain, SystemId, TenantId};
use ferry_core::ports::{Cursor, PaymentUpdate, PsaConnector, SourceRecord};
use ferry_core::{ConnectorError, MappingError};
use serde_json::Value;

pub use client::Client;
pub use config::{ConnectWiseConfig, ConnectWiseCredentials};
pub use webhook::CallbackVerifier;

/// The system id records from ConnectWise carry.
pub fn system() -> SystemId {
    SystemId::parse("connectwise").expect("valid slug")
}

/// One tenant's ConnectWise connection.
pub struct ConnectWise {
    client: Client,
    home_currency: Currency,
}

impl ConnectWise {
    pub fn new(
        cfg: ConnectWiseConfig,
        creds: ConnectWiseCredentials,
        home_currency: Currency,
    ) -> Self {
        ConnectWise {
            client: Client::new(cfg, creds),
            home_currency,
        }
    }

    /// The callback verifier for this connection. Signing keys are fetched with a
    /// client of their own that never follows redirects (an allowed origin must not
    /// be able to bounce the fetch elsewhere) and gives up after five seconds.
    pub fn verifier(&self) -> Arc<CallbackVerifier> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(3))
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("static client configuration is valid");
        Arc::new(CallbackVerifier::new(self.client.cfg.clone(), http))
    }

    /// Wraps a raw record with what the pipeline needs (id, version, domain).
    pub fn source_record(domain: Domain, raw: Value) -> Result<SourceRecord, ConnectorError> {
        let id = raw.get("id").and_then(Value::as_i64).ok_or_else(|| {
            ConnectorError::protocol(format!("{domain} record without an integer id"))
        })?;
        let info: Option<raw::Info> = raw
            .get("_info")
            .and_then(|i| serde_json::from_value(i.clone()).ok());
        let version = mapper::version(&info)
            .map_err(|e| ConnectorError::protocol(format!("{domain} {id}: {e}")))?;
        let domain = match (domain, raw.get("type").and_then(Value::as_str)) {
            (Domain::Invoices, Some("CreditMemo")) => Domain::CreditMemos,
            (Domain::CreditMemos, Some(t)) if t != "CreditMemo" => Domain::Invoices,
            (d, _) => d,
        };
        let deleted = raw
            .get("deletedFlag")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(SourceRecord {
            domain,
            id: id.to_string(),
            version,
            deleted,
            raw,
        })
    }
}

#[async_trait]
impl PsaConnector for ConnectWise {
    fn system(&self) -> SystemId {
        system()
    }

    fn shares_ids_with(&self, domain: Domain) -> Vec<Domain> {
        match domain {
            Domain::Invoices => vec![Domain::CreditMemos],
            Domain::CreditMemos => vec![Domain::Invoices],
            _ => Vec::new(),
        }
    }

    /// A deletion is announced only by a callback: one made while Ferry was not
    /// listening, or lost on the way, is found by comparing ids per period.
    fn swept(&self) -> Vec<Domain> {
        vec![
            Domain::TimeEntries,
            Domain::Expenses,
            Domain::Invoices,
            Domain::CreditMemos,
        ]
    }

    fn pollable(&self) -> Vec<Domain> {
        vec![
            Domain::Customers,
            Domain::Projects,
            Domain::TimeEntries,
            Domain::Expenses,
            Domain::Invoices,
            Domain::CreditMemos,
        ]
    }

    async fn changes(
        &self,
        domain: Domain,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        self.client
            .changed_since(domain, after, limit)
            .await?
            .into_iter()
            .map(|raw| Self::source_record(domain, raw))
            .collect()
    }

    async fn fetch(
        &self,
        domain: Domain,
        id: &str,
    ) -> Result<Option<SourceRecord>, ConnectorError> {
        match self.client.get(domain, id).await? {
            Some(raw) => Self::source_record(domain, raw).map(Some),
            None => Ok(None),
        }
    }

    fn to_canonical(
        &self,
        tenant: &TenantId,
        record: &SourceRecord,
    ) -> Result<CanonicalRecord, MappingError> {
        let system = system();
        let cx = mapper::MapContext {
            tenant,
            system: &system,
            home_currency: self.home_currency,
        };
        mapper::to_canonical(&cx, record)
    }

    async fn list_period(
        &self,
        domain: Domain,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        self.client
            .in_period(domain, from, to)
            .await?
            .into_iter()
            .map(|raw| Self::source_record(domain, raw))
            .collect()
    }

    async fn apply_payment(
        &self,
        invoice_id: &str,
        update: &PaymentUpdate,
    ) -> Result<(), ConnectorError> {
        let current = self
            .client
            .get(Domain::Invoices, invoice_id)
            .await?
            .ok_or_else(|| ConnectorError::Rejected {
                status: 404,
                message: format!("ConnectWise invoice {invoice_id} does not exist"),
            })?;
        let inv: raw::Invoice = serde_json::from_value(current)
            .map_err(|e| ConnectorError::protocol(format!("invoice {invoice_id}: {e}")))?;
        let paid_here = inv.payments.unwrap_or_default();
        let Some(delta) = crate::write_back::payment_to_record(update, paid_here, "ConnectWise")?
        else {
            return Ok(());
        };
        self.client
            .add_payment(invoice_id, delta, update.paid_on)
            .await
    }
}
