//! How a raised exception merges with the one already open for the same id.

use crate::ports::ExceptionRecord;

/// The same record failing at the same stage again is one exception,
/// counted: it keeps its first sighting and adds an attempt; everything else
/// (reason, owner, message, status) is the newest.
pub fn merge(previous: Option<&ExceptionRecord>, raised: ExceptionRecord) -> ExceptionRecord {
    match previous {
        Some(p) => ExceptionRecord {
            attempts: p.attempts + 1,
            first_seen: p.first_seen,
            ..raised
        },
        None => raised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReasonCode;
    use crate::ports::{ExceptionStatus, Owner, QueueName};
    use chrono::{Duration, TimeZone, Utc};
    use ferry_canon::{Domain, TenantId};

    fn raised(reason: ReasonCode, at: i64) -> ExceptionRecord {
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap() + Duration::seconds(at);
        ExceptionRecord {
            id: "transform:cw:1".into(),
            tenant: TenantId::parse("t").expect("valid"),
            stage: "transform".into(),
            domain: Domain::TimeEntries,
            source_key: "cw:1".into(),
            reason,
            message: reason.to_string(),
            field: None,
            rule: None,
            erp_message: None,
            owner: Owner::Finance,
            status: ExceptionStatus::Open,
            attempts: 1,
            first_seen: t,
            last_seen: t,
            amount: None,
            hours: None,
            doc_key: None,
            blocked_by: None,
            replay_queue: QueueName::Transform,
            replay_body: String::new(),
        }
    }

    #[test]
    fn a_repeat_keeps_its_first_sighting_counts_and_takes_the_newest_words() {
        let first = raised(ReasonCode::MissingRate, 0);
        assert_eq!(merge(None, first.clone()), first);
        let again = merge(Some(&first), raised(ReasonCode::ClosedPeriod, 60));
        assert_eq!(again.attempts, 2);
        assert_eq!(again.first_seen, first.first_seen);
        assert_eq!(again.last_seen, first.first_seen + Duration::seconds(60));
        assert_eq!(again.reason, ReasonCode::ClosedPeriod);
        assert_eq!(
            merge(Some(&again), raised(ReasonCode::ClosedPeriod, 90)).attempts,
            3
        );
    }
}
