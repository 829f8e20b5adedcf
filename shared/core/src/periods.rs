//! The ERP's lock date, cached per tenant so transform does not ask the ERP for
//! every record.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::TenantId;

use crate::error::ConnectorError;
use crate::ports::{ErpConnector, fresh};

/// Per tenant: what the last read of the lock date gave.
type LockDates = HashMap<TenantId, Reading>;

struct Reading {
    at: DateTime<Utc>,
    /// How long this reading stands before the ERP is asked again.
    ttl: Duration,
    /// The lock date, or why it could not be read.
    value: Result<Option<NaiveDate>, String>,
    /// The last lock date the ERP did give, kept through failed reads.
    known: Option<Option<NaiveDate>>,
}

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
    /// ERP is throttling, the error is returned (the message retries after it).
    /// While it is failing, the lock date it last gave stands; if it never gave
    /// one, the error is returned for 30 seconds at a time without asking again:
    /// a record is never judged against a lock date Ferry does not know.
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
            return v;
        }
        let _single = self.fetching.lock().await;
        if let Some(v) = self.cached(tenant, now) {
            return v;
        }
        let known = self
            .inner
            .lock()
            .expect("not poisoned")
            .get(tenant)
            .and_then(|r| r.known);
        let (value, ttl, known) = match fetch().await {
            Ok(v) => (Ok(v), Self::TTL, Some(v)),
            // Throttling passes within seconds: let the message retry after it.
            Err(e @ ConnectorError::Throttled { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, last_known = ?known, "ERP lock date unreadable");
                // Without a lock date the record could be sent into a locked period and
                // refused as a validation error instead of a closed period: use the
                // last one the ERP gave, or let the message retry.
                let value = known.ok_or_else(|| format!("the ERP lock date cannot be read: {e}"));
                (value, Self::RETRY_AFTER_FAILURE, known)
            }
        };
        self.inner.lock().expect("not poisoned").insert(
            tenant.clone(),
            Reading {
                at: now,
                ttl,
                value: value.clone(),
                known,
            },
        );
        value.map_err(ConnectorError::transient)
    }

    fn cached(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
    ) -> Option<Result<Option<NaiveDate>, ConnectorError>> {
        let inner = self.inner.lock().expect("not poisoned");
        let r = inner.get(tenant)?;
        fresh(r.at, now, r.ttl).then(|| r.value.clone().map_err(ConnectorError::transient))
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
    async fn a_lock_date_never_read_holds_records_back_and_is_asked_for_again_after_thirty_seconds()
    {
        let cache = PeriodCache::default();
        let calls = AtomicUsize::new(0);
        let failed = Err(ConnectorError::transient("ERP down"));
        let first = read(&cache, &calls, t0(), failed).await;
        assert!(
            matches!(first, Err(ConnectorError::Transient { .. })),
            "no lock date is assumed: {first:?}"
        );
        let s = chrono::Duration::seconds;
        let again = read(&cache, &calls, t0() + s(29), Ok(lock())).await;
        assert!(again.is_err(), "the failure stands for 30 s: {again:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "without asking the ERP");
        assert_eq!(
            read(&cache, &calls, t0() + s(30), Ok(lock())).await.ok(),
            Some(lock())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_lock_date_read_before_stands_while_the_erp_cannot_be_read() {
        let cache = PeriodCache::default();
        let calls = AtomicUsize::new(0);
        read(&cache, &calls, t0(), Ok(lock())).await.expect("read");
        let m = chrono::Duration::minutes;
        let failed = Err(ConnectorError::transient("ERP down"));
        assert_eq!(
            read(&cache, &calls, t0() + m(10), failed).await.ok(),
            Some(lock()),
            "the last lock date the ERP gave"
        );
        let s = chrono::Duration::seconds;
        read(&cache, &calls, t0() + m(10) + s(29), Ok(None))
            .await
            .expect("cached");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "asked again only after 30 s"
        );
        assert_eq!(
            read(&cache, &calls, t0() + m(10) + s(30), Ok(None))
                .await
                .ok(),
            Some(None),
            "a lock date the ERP gives again replaces it"
        );
    }
}
