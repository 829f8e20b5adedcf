//! The ERP's lock date, cached per tenant so transform does not ask the ERP for
//! every record.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::TenantId;

use crate::error::ConnectorError;
use crate::ports::{ErpConnector, fresh};

/// Per tenant: when the lock date was read, its value, and how long it is good for.
type LockDates = HashMap<TenantId, (DateTime<Utc>, Option<NaiveDate>, Duration)>;

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
        self.closed_through_with(tenant, now, || erp.closed_through())
            .await
    }

    /// [`Self::closed_through`] with the ERP call given as `fetch`.
    pub async fn closed_through_with<F, Fut>(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
        fetch: F,
    ) -> Result<Option<NaiveDate>, ConnectorError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<NaiveDate>, ConnectorError>>,
    {
        if let Some(v) = self.cached(tenant, now) {
            return Ok(v);
        }
        let _single = self.fetching.lock().await;
        if let Some(v) = self.cached(tenant, now) {
            return Ok(v);
        }
        let v = match fetch().await {
            Ok(v) => v,
            // Throttling passes within seconds: let the message retry after it.
            Err(e @ ConnectorError::Throttled { .. }) => return Err(e),
            Err(e) => {
                // The ERP enforces its own lock date when a document is posted, so an
                // unreadable lock date is not a reason to hold records back (or to keep
                // asking a failing ERP): carry on without it for a short while.
                tracing::warn!(tenant = %tenant, error = %e, "ERP lock date unreadable; relying on the ERP to refuse locked periods");
                self.inner
                    .lock()
                    .expect("not poisoned")
                    .insert(tenant.clone(), (now, None, Self::RETRY_AFTER_FAILURE));
                return Ok(None);
            }
        };
        self.inner
            .lock()
            .expect("not poisoned")
            .insert(tenant.clone(), (now, v, Self::TTL));
        Ok(v)
    }

    fn cached(&self, tenant: &TenantId, now: DateTime<Utc>) -> Option<Option<NaiveDate>> {
        let inner = self.inner.lock().expect("not poisoned");
        let (at, v, ttl) = inner.get(tenant)?;
        fresh(*at, now, *ttl).then_some(*v)
    }

    /// Forgets cached lock dates (after finance changes one).
    pub fn clear(&self) {
        self.inner.lock().expect("not poisoned").clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2027-12-31T23:55:00Z")
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn lock() -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(2027, 11, 30)
    }

    async fn read(
        cache: &PeriodCache,
        calls: &AtomicUsize,
        now: DateTime<Utc>,
        answer: Result<Option<NaiveDate>, ConnectorError>,
    ) -> Result<Option<NaiveDate>, ConnectorError> {
        let tenant = TenantId::parse("acme").expect("slug");
        cache
            .closed_through_with(&tenant, now, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                answer
            })
            .await
    }

    #[tokio::test]
    async fn the_lock_date_is_read_again_exactly_when_its_ten_minutes_are_up() {
        let cache = PeriodCache::default();
        let calls = AtomicUsize::new(0);
        let ms = chrono::Duration::milliseconds;
        assert_eq!(
            read(&cache, &calls, t0(), Ok(lock())).await.ok(),
            Some(lock())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let almost = t0() + ms(600_000 - 1);
        read(&cache, &calls, almost, Ok(None))
            .await
            .expect("cached");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "cached until just before ten minutes"
        );
        let due = t0() + ms(600_000);
        assert_eq!(read(&cache, &calls, due, Ok(None)).await.ok(), Some(None));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "read again at ten minutes, across midnight"
        );
        read(&cache, &calls, due - ms(1), Ok(lock()))
            .await
            .expect("read");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "a clock set back does not keep the cached value alive"
        );
    }

    #[tokio::test]
    async fn an_unreadable_lock_date_is_asked_for_again_after_thirty_seconds() {
        let cache = PeriodCache::default();
        let calls = AtomicUsize::new(0);
        let failed = Err(ConnectorError::transient("ERP down"));
        assert_eq!(read(&cache, &calls, t0(), failed).await.ok(), Some(None));
        let s = chrono::Duration::seconds;
        read(&cache, &calls, t0() + s(29), Ok(lock()))
            .await
            .expect("cached");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            read(&cache, &calls, t0() + s(30), Ok(lock())).await.ok(),
            Some(lock())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
