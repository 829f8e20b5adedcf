//! What every polled PSA read shares: a vendor list read whole (or since a
//! date), then ordered by `(updated_at, id)` and cut after the cursor here, so
//! records sharing a timestamp across a page are never lost and a vendor's own
//! sort order (Harvest sorts time by date, Redmine by id) does not matter.

use std::sync::Mutex;

use ferry_canon::{Domain, SourceVersion};
use ferry_core::ConnectorError;
use ferry_core::ports::{Cursor, SourceRecord};
use serde_json::Value;

/// A polled vendor's raw record with the id and version the pipeline orders
/// by: its numeric `id`, and the first of `stamps` it carries (a connector's
/// own `ferry_updated_…` before the vendor's) as an ISO 8601 instant.
pub fn source_record(
    domain: Domain,
    raw: Value,
    vendor: &str,
    stamps: &[&str],
) -> Result<SourceRecord, ConnectorError> {
    let id = raw.get("id").and_then(Value::as_i64).ok_or_else(|| {
        ConnectorError::protocol(format!("{vendor} {domain} record without an id"))
    })?;
    let field = stamps.last().copied().unwrap_or("updated_at");
    let updated = stamps
        .iter()
        .find_map(|f| raw.get(*f).and_then(Value::as_str))
        .ok_or_else(|| {
            ConnectorError::protocol(format!("{vendor} {domain} {id} without {field}"))
        })?;
    let at = crate::psa::instant(updated, field)
        .map_err(|e| ConnectorError::protocol(format!("{vendor} {domain} {id}: {e}")))?;
    Ok(SourceRecord {
        domain,
        id: id.to_string(),
        version: SourceVersion::at(at),
        deleted: false,
        raw,
    })
}

fn key(r: &SourceRecord) -> Cursor {
    Cursor::new(r.version.updated_at, r.id.clone())
}

/// Orders records by `(updated_at, id)` (ids numerically where both are
/// numbers, as [`Cursor`] compares them) and keeps at most `limit` strictly
/// after the cursor. An empty cursor id keeps every record at the cursor's
/// instant (the poll's overlap restarts so).
pub fn after_cursor(
    mut records: Vec<SourceRecord>,
    after: Option<&Cursor>,
    limit: u32,
) -> Vec<SourceRecord> {
    records.sort_by_key(key);
    records
        .into_iter()
        .filter(|r| match after {
            None => true,
            // An empty id sorts before every id, so the overlap needs no case of its own.
            Some(c) => key(r) > *c,
        })
        .take(limit as usize)
        .collect()
}

/// The rest of a vendor read, for the poll's next page. A vendor that can
/// only be read whole since an instant (not after a `(time, id)` key) would
/// otherwise be read whole again for every page of a backfill. The rest is
/// served only to the call that continues exactly where the last page ended
/// (same domain, cursor at its last record); any other call reads afresh, so
/// nothing held can outlive the poll that read it. Records changed after the
/// read are not lost: the cursor never passes what was served, and the next
/// poll reads them.
#[derive(Default)]
pub struct ReadAhead {
    held: Mutex<Option<Held>>,
}

struct Held {
    domain: Domain,
    next: Cursor,
    rest: std::collections::VecDeque<SourceRecord>,
}

impl ReadAhead {
    /// The next page, when `after` continues the last read of `domain`.
    pub fn next(
        &self,
        domain: Domain,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Option<Vec<SourceRecord>> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = held.as_mut()?;
        if h.domain != domain || Some(&h.next) != after {
            *held = None;
            return None;
        }
        let n = (limit as usize).min(h.rest.len());
        let page: Vec<SourceRecord> = h.rest.drain(..n).collect();
        match page.last() {
            Some(last) if !h.rest.is_empty() => h.next = key(last),
            _ => *held = None,
        }
        Some(page)
    }

    /// Cuts a fresh read after the cursor (as [`after_cursor`]) and holds what
    /// lies past `limit` for the next call.
    pub fn cut(
        &self,
        domain: Domain,
        records: Vec<SourceRecord>,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Vec<SourceRecord> {
        let mut all: std::collections::VecDeque<SourceRecord> =
            after_cursor(records, after, u32::MAX).into();
        let n = (limit as usize).min(all.len());
        let page: Vec<SourceRecord> = all.drain(..n).collect();
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *held = match page.last() {
            Some(last) if !all.is_empty() => Some(Held {
                domain,
                next: key(last),
                rest: all,
            }),
            _ => None,
        };
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::Value;

    fn rec(id: &str, second: u32) -> SourceRecord {
        SourceRecord {
            domain: Domain::TimeEntries,
            id: id.into(),
            version: SourceVersion::at(
                chrono::Utc
                    .with_ymd_and_hms(2026, 11, 2, 9, 0, second)
                    .unwrap(),
            ),
            deleted: false,
            raw: Value::Null,
        }
    }

    fn ids(v: &[SourceRecord]) -> Vec<&str> {
        v.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn records_sharing_a_timestamp_are_paged_by_id_without_loss() {
        let all = vec![
            rec("12", 0),
            rec("9", 0),
            rec("10", 0),
            rec("3", 1),
            rec("2", 0),
        ];
        let first = after_cursor(all.clone(), None, 2);
        assert_eq!(ids(&first), ["2", "9"]);
        let c = Cursor::new(first[1].version.updated_at, "9");
        let next = after_cursor(all.clone(), Some(&c), 2);
        assert_eq!(ids(&next), ["10", "12"]);
        let c = Cursor::new(next[1].version.updated_at, "12");
        assert_eq!(ids(&after_cursor(all.clone(), Some(&c), 2)), ["3"]);
        // The poll's overlap restarts at an instant with an empty id: everything at it is included.
        let overlap = Cursor::new(first[0].version.updated_at, "");
        assert_eq!(after_cursor(all, Some(&overlap), 10).len(), 5);
    }

    #[test]
    fn a_read_ahead_serves_only_the_page_that_continues_it() {
        let all: Vec<SourceRecord> = (1..=7).map(|i| rec(&i.to_string(), 0)).collect();
        let ra = ReadAhead::default();
        let first = ra.cut(Domain::TimeEntries, all.clone(), None, 3);
        assert_eq!(ids(&first), ["1", "2", "3"]);
        let at = |p: &[SourceRecord]| key(p.last().expect("a page"));
        assert!(
            ra.next(Domain::Expenses, Some(&at(&first)), 3).is_none(),
            "another domain reads afresh"
        );
        let first = ra.cut(Domain::TimeEntries, all.clone(), None, 3);
        let overlap = Cursor::new(first[0].version.updated_at, "");
        assert!(
            ra.next(Domain::TimeEntries, Some(&overlap), 3).is_none(),
            "another cursor reads afresh"
        );
        let first = ra.cut(Domain::TimeEntries, all.clone(), None, 3);
        let second = ra
            .next(Domain::TimeEntries, Some(&at(&first)), 3)
            .expect("held");
        assert_eq!(ids(&second), ["4", "5", "6"]);
        let third = ra
            .next(Domain::TimeEntries, Some(&at(&second)), 3)
            .expect("held");
        assert_eq!(ids(&third), ["7"]);
        assert!(
            ra.next(Domain::TimeEntries, Some(&at(&third)), 3).is_none(),
            "spent: read afresh"
        );
    }
}
