//! What every polled PSA read shares: a vendor list read whole (or since a
//! date), then ordered by `(updated_at, id)` and cut after the cursor here, so
//! records sharing a timestamp across a page are never lost and a vendor's own
//! sort order (Harvest sorts time by date, Redmine by id) does not matter.

use ferry_core::ports::{Cursor, SourceRecord};

/// Orders records by `(updated_at, id)` (ids numerically where both are
/// numbers, as [`Cursor`] compares them) and keeps at most `limit` strictly
/// after the cursor. An empty cursor id keeps every record at the cursor's
/// instant (the poll's overlap restarts so).
pub fn after_cursor(
    mut records: Vec<SourceRecord>,
    after: Option<&Cursor>,
    limit: u32,
) -> Vec<SourceRecord> {
    let key = |r: &SourceRecord| Cursor::new(r.version.updated_at, r.id.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use ferry_canon::{Domain, SourceVersion};
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
}
