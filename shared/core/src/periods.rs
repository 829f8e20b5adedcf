//! The ERP's lock date, cached per tenant so transform does not ask the ERP for
//! every record.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::TenantId;

use crate::deps::chrono_duration;
use crate::error::ConnectorError;
use crate::ports::ErpConnector;

/// Per tenant: when the lock date was read, and its value.
type LockDates = HashMap<TenantId, (DateTime<Utc>, Option<NaiveDate>)>;

/// When each tenant's ERP lock date was last read, and its value.
#[derive(Default)]
pub struct PeriodCache {
    inner: Mutex<LockDates>,
    /// One fetch at a time: concurrent misses wait for it instead of all calling the ERP.
    fetching: tokio::sync::Mutex<()>,
}

impl PeriodCache {
    const TTL: Duration = Duration::from_secs(600);
    const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

    /// The ERP's lock date, read at most every ten minutes per tenant. While the
    /// ERP is throttling, the error is returned (the message retries after it);
    /// while it is failing, `None` for 30 seconds at a time.
    pub async fn closed_through(
        &self,
        tenant: &TenantId,
        erp: &dyn ErpConnector,
        now: DateTime<Utc>,
    ) -> Result<Option<NaiveDate>, ConnectorError> {
        if let Some((at, v)) = self.inner.lock().expect("not poisoned").get(tenant)
            && now - *at < chrono_duration(Self::TTL)
        {
            return Ok(*v);
        }
        let _single = self.fetching.lock().await;
        if let Some((at, v)) = self.inner.lock().expect("not poisoned").get(tenant)
            && now - *at < chrono_duration(Self::TTL)
        {
            return Ok(*v);
        }
        let v = match erp.closed_through().await {
            Ok(v) => v,
            // Throttling passes within seconds: let the message retry after it.
            Err(e @ ConnectorError::Throttled { .. }) => return Err(e),
            Err(e) => {
                // The ERP enforces its own lock date when a document is posted, so an
                // unreadable lock date is not a reason to hold records back (or to keep
                // asking a failing ERP): carry on without it for a short while.
                tracing::warn!(tenant = %tenant, error = %e, "ERP lock date unreadable; relying on the ERP to refuse locked periods");
                let retry_at =
                    now - chrono_duration(Self::TTL) + chrono_duration(Self::RETRY_AFTER_FAILURE);
                self.inner
                    .lock()
                    .expect("not poisoned")
                    .insert(tenant.clone(), (retry_at, None));
                return Ok(None);
            }
        };
        self.inner
            .lock()
            .expect("not poisoned")
            .insert(tenant.clone(), (now, v));
        Ok(v)
    }

    /// Forgets cached lock dates (after finance changes one).
    pub fn clear(&self) {
        self.inner.lock().expect("not poisoned").clear();
    }
}
