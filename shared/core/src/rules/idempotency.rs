//! The idempotency decision of `begin` (the Powertools protocol).

use chrono::{DateTime, Utc};

use crate::ports::{Begin, IdemRecord, IdemStatus};

/// What `begin` does about the record it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginStep {
    /// Answer without writing.
    Answer(Begin),
    /// Write the key as in progress for this caller, after `prior_attempts`
    /// earlier attempts (0: none, or the record had expired).
    Take { prior_attempts: u32 },
}

/// The rule: an expired record is as good as absent; another payload under
/// the key is a mismatch, never a duplicate; a completed record answers with
/// its response; an attempt in progress holds the key until its in-progress
/// expiry, after which the next attempt takes over, counted.
pub fn begin(found: Option<&IdemRecord>, payload_hash: &str, now: DateTime<Utc>) -> BeginStep {
    let Some(r) = found.filter(|r| r.expires_at > now) else {
        return BeginStep::Take { prior_attempts: 0 };
    };
    if r.payload_hash != payload_hash {
        return BeginStep::Answer(Begin::PayloadMismatch {
            stored_hash: r.payload_hash.clone(),
        });
    }
    if r.status == IdemStatus::Completed {
        return BeginStep::Answer(Begin::Completed {
            response: r.response.clone(),
        });
    }
    match r.in_progress_until {
        Some(until) if until > now => BeginStep::Answer(Begin::InProgress { until }),
        _ => BeginStep::Take {
            prior_attempts: r.attempts,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn begin_for_every_state_a_key_can_be_in() {
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
        let rec = |status, hash: &str, expires: i64, until: Option<i64>, attempts| IdemRecord {
            key: "k".into(),
            status,
            payload_hash: hash.into(),
            expires_at: now + Duration::seconds(expires),
            in_progress_until: until.map(|u| now + Duration::seconds(u)),
            response: (status == IdemStatus::Completed).then(|| "r".to_string()),
            attempts,
        };
        use IdemStatus::*;
        let take = |n| BeginStep::Take { prior_attempts: n };
        let table = [
            (None, take(0)),
            // Expired, whatever it says, at and past the instant.
            (Some(rec(Completed, "h", 0, None, 1)), take(0)),
            (Some(rec(InProgress, "other", -1, Some(60), 3)), take(0)),
            (
                Some(rec(Completed, "other", 60, None, 1)),
                BeginStep::Answer(Begin::PayloadMismatch {
                    stored_hash: "other".into(),
                }),
            ),
            (
                Some(rec(Completed, "h", 60, None, 1)),
                BeginStep::Answer(Begin::Completed {
                    response: Some("r".into()),
                }),
            ),
            (
                Some(rec(InProgress, "h", 60, Some(1), 1)),
                BeginStep::Answer(Begin::InProgress {
                    until: now + Duration::seconds(1),
                }),
            ),
            // In progress past its expiry (at the instant, or abandoned): taken over, counted.
            (Some(rec(InProgress, "h", 60, Some(0), 2)), take(2)),
            (Some(rec(InProgress, "h", 60, None, 4)), take(4)),
        ];
        for (i, (found, step)) in table.into_iter().enumerate() {
            assert_eq!(begin(found.as_ref(), "h", now), step, "case {i}");
        }
    }
}
