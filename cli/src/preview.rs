//! `ferry preview`: the ERP documents a sync would post, without posting. The
//! real pipeline runs on a throwaway in-memory store; the ERP connector is
//! wrapped so that writes are recorded instead of sent (reads that cannot change
//! anything, like the period lock date, still go to the ERP).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::NaiveDate;
use ferry_canon::SystemId;
use ferry_core::ConnectorError;
use ferry_core::ports::{
    ErpCapabilities, ErpConnector, ErpDocument, ErpPayment, ErpReader, ErpRef, ErpWriter,
    ItemResult, OutboundItem, RateLimits,
};
use ferry_core::posting::{DocKind, PostingDoc};
use serde::Serialize;

/// A document the sync would have written.
#[derive(Debug, Clone, Serialize)]
pub struct Previewed {
    pub kind: DocKind,
    pub key: String,
    pub request: serde_json::Value,
}

/// An ERP connector that records writes instead of sending them.
pub struct RecordingErp {
    pub inner: Arc<dyn ErpConnector>,
    pub recorded: Mutex<Vec<Previewed>>,
    next: AtomicU64,
}

impl RecordingErp {
    pub fn new(inner: Arc<dyn ErpConnector>) -> Self {
        RecordingErp {
            inner,
            recorded: Mutex::new(Vec::new()),
            next: AtomicU64::new(1),
        }
    }

    /// Recorded documents, the latest version of each, ordered by key.
    pub fn documents(&self) -> Vec<Previewed> {
        let mut by_key = std::collections::BTreeMap::new();
        for d in self.recorded.lock().expect("not poisoned").iter() {
            by_key.insert(d.key.clone(), d.clone());
        }
        by_key.into_values().collect()
    }
}

#[async_trait]
impl ErpWriter for RecordingErp {
    fn system(&self) -> SystemId {
        self.inner.system()
    }
    fn account_key(&self) -> String {
        format!("preview:{}", self.inner.account_key())
    }
    fn limits(&self) -> RateLimits {
        RateLimits {
            per_minute: u32::MAX,
            per_day: u32::MAX,
            concurrent: u32::MAX,
        }
    }
    fn capabilities(&self) -> ErpCapabilities {
        self.inner.capabilities()
    }
    fn render(&self, item: &OutboundItem) -> Result<serde_json::Value, ConnectorError> {
        self.inner.render(item)
    }
    async fn upsert(
        &self,
        kind: DocKind,
        items: &[OutboundItem],
        _key: &str,
    ) -> Result<Vec<ItemResult>, ConnectorError> {
        let mut out = Vec::new();
        for item in items {
            let request = self.inner.render(item)?;
            self.recorded.lock().expect("not poisoned").push(Previewed {
                kind,
                key: item.doc.key.to_string(),
                request: request.clone(),
            });
            let id = item.erp_id.clone().unwrap_or_else(|| {
                format!("preview-{}", self.next.fetch_add(1, Ordering::Relaxed))
            });
            out.push(ItemResult::Ok {
                erp_id: id,
                erp_number: None,
                response: request,
            });
        }
        Ok(out)
    }
    async fn find_by_reference(&self, _doc: &PostingDoc) -> Result<Option<ErpRef>, ConnectorError> {
        Ok(None)
    }
}

#[async_trait]
impl ErpReader for RecordingErp {
    async fn list_documents(
        &self,
        _k: DocKind,
        _f: NaiveDate,
        _t: NaiveDate,
    ) -> Result<Vec<ErpDocument>, ConnectorError> {
        Ok(Vec::new())
    }
    async fn fetch_document(
        &self,
        _k: DocKind,
        _id: &str,
    ) -> Result<Option<ErpDocument>, ConnectorError> {
        Ok(None)
    }
    async fn changed_invoices(
        &self,
        _since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<ferry_core::ports::ErpChange>, ConnectorError> {
        Ok(Vec::new())
    }
    async fn list_payments(
        &self,
        _f: NaiveDate,
        _t: Option<NaiveDate>,
    ) -> Result<Vec<ErpPayment>, ConnectorError> {
        Ok(Vec::new())
    }
    async fn closed_through(&self) -> Result<Option<NaiveDate>, ConnectorError> {
        self.inner.closed_through().await
    }

    async fn tax_rules(&self) -> Result<Option<ferry_core::ports::TaxRules>, ConnectorError> {
        self.inner.tax_rules().await
    }

    async fn list_timesheets(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ferry_core::ports::ErpTimesheetLine>, ConnectorError> {
        self.inner.list_timesheets(from, to).await
    }
}
