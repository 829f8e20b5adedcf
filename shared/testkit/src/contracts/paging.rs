//! The paging contract every connector's paged read must meet, against its
//! simulator or the real system: whatever the count of records against the page
//! size (none, one, one short of a page, a page, one past it, two pages, many
//! pages), the read returns each record once, and none is lost where records
//! share one timestamp across a page boundary (subjects seed them so).

use std::collections::BTreeSet;

use async_trait::async_trait;

/// A connector's paged read, seen from outside.
#[async_trait]
pub trait PagedRead: Send {
    /// What is read, for messages ("ConnectWise time in a period").
    fn name(&self) -> String;
    /// The page size the read uses.
    fn page_size(&self) -> usize;
    /// Adds records (sharing one timestamp where the source has one) until `n`
    /// of them exist; returns the ids of all of them.
    async fn grow_to(&mut self, n: usize) -> Vec<String>;
    /// Every id the read returns, in the order returned.
    async fn read_all(&self) -> Result<Vec<String>, String>;
}

/// The counts a page size is tried with.
pub fn boundary_counts(page: usize) -> Vec<usize> {
    let counts: BTreeSet<usize> = [
        0,
        1,
        page.saturating_sub(1),
        page,
        page + 1,
        2 * page,
        3 * page + 2,
    ]
    .into_iter()
    .collect();
    counts.into_iter().collect()
}

/// Runs the contract: panics naming the count and what went missing or twice.
pub async fn paging(subject: &mut dyn PagedRead) {
    let page = subject.page_size();
    assert!(page > 0, "{}: a page holds something", subject.name());
    for n in boundary_counts(page) {
        let expected: BTreeSet<String> = subject.grow_to(n).await.into_iter().collect();
        assert_eq!(
            expected.len(),
            n,
            "{}: the subject seeded {n}",
            subject.name()
        );
        let got = subject
            .read_all()
            .await
            .unwrap_or_else(|e| panic!("{}: read of {n} failed: {e}", subject.name()));
        let unique: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            got.len(),
            "{}: {n} records with page size {page}: none read twice",
            subject.name()
        );
        let missing: Vec<_> = expected.difference(&unique).collect();
        let extra: Vec<_> = unique.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: {n} records with page size {page}: missing {missing:?}, not seeded {extra:?}",
            subject.name()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_straddle_every_page_boundary() {
        assert_eq!(boundary_counts(4), vec![0, 1, 3, 4, 5, 8, 14]);
        assert_eq!(boundary_counts(1), vec![0, 1, 2, 5]);
    }
}
