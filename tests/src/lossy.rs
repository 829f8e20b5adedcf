//! Fault wrappers around an ERP connector, for the simulations: answers lost
//! after the ERP committed, and answers that arrive after the client gave up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ferry_core::error::ConnectorError;
use ferry_core::ports::{
    ErpCapabilities, ErpChange, ErpConnector, ErpDocument, ErpPayment, ErpReader, ErpRef,
    ErpWriter, ItemResult, OutboundItem, RateLimits,
};
use ferry_core::posting::{DocKind, PostingDoc};

/// An ERP seen through a network that loses answers: the write is done in the
/// ERP, and Ferry hears a timeout (at once, or after a delay).
pub struct LossyErp {
    inner: Arc<dyn ErpConnector>,
    lose_next: AtomicU32,
    late_next: AtomicU32,
    /// Answers to writes of this kind only are lost (any kind when `None`).
    only: std::sync::Mutex<Option<DocKind>>,
}

impl LossyErp {
    pub fn new(inner: Arc<dyn ErpConnector>) -> LossyErp {
        LossyErp {
            inner,
            lose_next: AtomicU32::new(0),
            late_next: AtomicU32::new(0),
            only: std::sync::Mutex::new(None),
        }
    }

    /// The next `n` answers to writes of `kind` (of any kind: `None`) are lost
    /// after the ERP committed.
    pub fn lose_of(&self, kind: Option<DocKind>, n: u32) {
        *self.only.lock().expect("not poisoned") = kind;
        self.lose(n);
    }

    /// The next `n` write answers are lost after the ERP committed.
    pub fn lose(&self, n: u32) {
        self.lose_next.store(n, Ordering::SeqCst);
    }

    /// The next `n` write answers come after the client gave up.
    pub fn late(&self, n: u32) {
        self.late_next.store(n, Ordering::SeqCst);
    }

    /// Every answer arrives from now on.
    pub fn calm(&self) {
        self.lose_of(None, 0);
        self.late(0);
    }
}

fn take(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

#[async_trait]
impl ErpWriter for LossyErp {
    fn system(&self) -> ferry_canon::SystemId {
        self.inner.system()
    }
    fn account_key(&self) -> String {
        self.inner.account_key()
    }
    fn limits(&self) -> RateLimits {
        self.inner.limits()
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
        idempotency_key: &str,
    ) -> Result<Vec<ItemResult>, ConnectorError> {
        let r = self.inner.upsert(kind, items, idempotency_key).await?;
        let chosen = self
            .only
            .lock()
            .expect("not poisoned")
            .is_none_or(|only| only == kind);
        if chosen && take(&self.lose_next) {
            return Err(ConnectorError::Unanswered {
                message: "simulated: the ERP committed and the answer was lost".into(),
            });
        }
        if take(&self.late_next) {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            return Err(ConnectorError::Unanswered {
                message: "simulated: the ERP committed after the client gave up".into(),
            });
        }
        Ok(r)
    }
    async fn find_by_reference(&self, doc: &PostingDoc) -> Result<Option<ErpRef>, ConnectorError> {
        self.inner.find_by_reference(doc).await
    }
}

#[async_trait]
impl ErpReader for LossyErp {
    async fn list_documents(
        &self,
        kind: DocKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ErpDocument>, ConnectorError> {
        self.inner.list_documents(kind, from, to).await
    }
    async fn fetch_document(
        &self,
        kind: DocKind,
        erp_id: &str,
    ) -> Result<Option<ErpDocument>, ConnectorError> {
        self.inner.fetch_document(kind, erp_id).await
    }
    async fn changed_invoices(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ErpChange>, ConnectorError> {
        self.inner.changed_invoices(since).await
    }
    async fn list_payments(
        &self,
        from: NaiveDate,
        to: Option<NaiveDate>,
    ) -> Result<Vec<ErpPayment>, ConnectorError> {
        self.inner.list_payments(from, to).await
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
