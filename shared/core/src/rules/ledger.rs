//! The ledger's order for an incoming version of a source record.

use ferry_canon::SourceVersion;

use crate::ports::{Disposition, Observe};

/// What the ledger holds for a record, as `observe` needs it.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub version: &'a SourceVersion,
    pub content_hash: &'a str,
    pub disposition: &'a Disposition,
    /// The document the record was last sent to, if any.
    pub last_doc: Option<&'a str>,
}

/// `observe`'s decision: the answer, and whether the incoming version
/// replaces what is held (stored as `Pending`, keeping `last_doc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub answer: Observe,
    pub replace: bool,
}

/// Older than what is held: stale, never written. The same version and
/// content: a duplicate once final, a retry (nothing written) while
/// unfinished. Anything else (new record, newer version, or the same version
/// with other content): it replaces what is held.
pub fn observe(held: Option<Held<'_>>, version: &SourceVersion, content_hash: &str) -> Observed {
    let last_doc = held.and_then(|h| h.last_doc.map(str::to_string));
    match held {
        Some(h) if version < h.version => Observed {
            answer: Observe::Stale {
                current: h.version.clone(),
            },
            replace: false,
        },
        Some(h) if version == h.version && content_hash == h.content_hash => Observed {
            answer: if h.disposition.is_final() {
                Observe::Duplicate {
                    disposition: h.disposition.clone(),
                    last_doc,
                }
            } else {
                // An unfinished attempt at this very version: try again, keep its receipt time.
                Observe::New {
                    previous: Some(h.disposition.clone()),
                    last_doc,
                }
            },
            replace: false,
        },
        held => Observed {
            answer: Observe::New {
                previous: held.map(|h| h.disposition.clone()),
                last_doc,
            },
            replace: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn v(sec: u32, etag: Option<&str>) -> SourceVersion {
        SourceVersion {
            updated_at: Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, sec).unwrap(),
            etag: etag.map(str::to_string),
        }
    }

    #[test]
    fn the_ledger_order_for_every_kind_of_incoming_version() {
        let posted = Disposition::Posted {
            doc_key: "d".into(),
            revision: 1,
        };
        let pending = Disposition::Pending;
        let held_v = v(10, None);
        let held = |d| {
            Some(Held {
                version: &held_v,
                content_hash: "h1",
                disposition: d,
                last_doc: Some("d"),
            })
        };
        let new = |previous: Option<&Disposition>, last_doc: Option<&str>| Observe::New {
            previous: previous.cloned(),
            last_doc: last_doc.map(str::to_string),
        };
        let stale = Observe::Stale {
            current: held_v.clone(),
        };
        let duplicate = Observe::Duplicate {
            disposition: posted.clone(),
            last_doc: Some("d".into()),
        };
        // (held, incoming version, incoming hash) → (answer, replace)
        let table = [
            (None, v(10, None), "h1", new(None, None), true),
            (held(&posted), v(9, None), "h0", stale.clone(), false),
            (held(&posted), v(9, Some("z")), "h1", stale, false),
            (held(&posted), v(10, None), "h1", duplicate, false),
            // Unfinished at this very version: retried, nothing rewritten.
            (
                held(&pending),
                v(10, None),
                "h1",
                new(Some(&pending), Some("d")),
                false,
            ),
            // Same timestamp, other content: a change the PSA did not date apart.
            (
                held(&posted),
                v(10, None),
                "h2",
                new(Some(&posted), Some("d")),
                true,
            ),
            // Same timestamp, an etag orders it after.
            (
                held(&posted),
                v(10, Some("b")),
                "h1",
                new(Some(&posted), Some("d")),
                true,
            ),
            (
                held(&posted),
                v(11, None),
                "h1",
                new(Some(&posted), Some("d")),
                true,
            ),
        ];
        for (i, (h, version, hash, answer, replace)) in table.into_iter().enumerate() {
            assert_eq!(
                observe(h, &version, hash),
                Observed { answer, replace },
                "case {i}"
            );
        }
    }
}
