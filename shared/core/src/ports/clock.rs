use std::time::Duration;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

/// The current time. Product code never reads the wall clock itself
/// (`clippy.toml` refuses `Utc::now()` and `SystemTime::now()` outside this
/// port), so tests can move time (visibility timeouts, expiries, backoff,
/// freshness windows) without sleeping, and no result depends on the day the
/// code runs.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Whether something obtained at `at` may still be used at `now` when it is good
/// for `ttl`: `at <= now < at + ttl`. A value from the future (the clock was
/// set back since it was stored) counts as stale, so a clock step backwards
/// cannot keep a cached value alive.
pub fn fresh(at: DateTime<Utc>, now: DateTime<Utc>, ttl: Duration) -> bool {
    at <= now && now - at < crate::deps::chrono_duration(ttl)
}

/// The calendar month before the one `today` is in, as its first and last day.
pub fn previous_month(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let this = today.with_day(1).unwrap_or(today);
    let first = this - Months::new(1);
    let last = this.pred_opt().unwrap_or(first);
    (first, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_value_is_fresh_from_when_it_was_read_until_just_before_its_ttl_ends() {
        let t = at("2027-12-31T23:59:30Z");
        let ttl = Duration::from_secs(60);
        assert!(fresh(t, t, ttl), "at the moment it was read");
        assert!(fresh(t, t + chrono::Duration::milliseconds(59_999), ttl));
        assert!(
            !fresh(t, t + chrono::Duration::seconds(60), ttl),
            "at exactly the TTL it is stale"
        );
        assert!(
            !fresh(t, t - chrono::Duration::milliseconds(1), ttl),
            "read in the future: the clock went back, so it is stale"
        );
        assert!(!fresh(t, t, Duration::ZERO), "a zero TTL never caches");
        assert!(
            fresh(t, t + chrono::Duration::days(36_500), Duration::MAX),
            "an unbounded TTL saturates instead of overflowing"
        );
        let far = t + crate::deps::chrono_duration(Duration::MAX);
        assert!(
            far > t + chrono::Duration::days(3_650_000),
            "about 10,000 years on: {far}"
        );
    }

    #[test]
    fn the_previous_month_crosses_year_ends_and_knows_leap_years() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
        assert_eq!(
            previous_month(d(2028, 1, 1)),
            (d(2027, 12, 1), d(2027, 12, 31))
        );
        assert_eq!(
            previous_month(d(2027, 12, 31)),
            (d(2027, 11, 1), d(2027, 11, 30))
        );
        assert_eq!(
            previous_month(d(2028, 3, 31)),
            (d(2028, 2, 1), d(2028, 2, 29))
        );
        assert_eq!(
            previous_month(d(2027, 3, 1)),
            (d(2027, 2, 1), d(2027, 2, 28))
        );
        // Midnight UTC is the boundary: one microsecond before it is still the old month.
        let before = Utc
            .with_ymd_and_hms(2027, 12, 31, 23, 59, 59)
            .single()
            .expect("valid")
            + chrono::Duration::microseconds(999_999);
        assert_eq!(previous_month(before.date_naive()).0, d(2027, 11, 1));
        let after = before + chrono::Duration::microseconds(1);
        assert_eq!(previous_month(after.date_naive()).0, d(2027, 12, 1));
    }
}
