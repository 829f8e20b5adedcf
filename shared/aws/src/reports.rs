//! Reconciliation reports: `pk = {tenant}#report`. A report is kept as JSON
//! in chunks (`sk = chunk#{from}#{to}#{stamp}#{n}`, each well under
//! DynamoDB's 400 KB item limit, so a large firm's report fits), written
//! first; then the period's header (`sk = period#{from}#{to}`) is pointed at
//! them with a conditional write that never moves it to an older run. A
//! reader follows the header, so it never sees a half-written report.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{ReportSummary, Reports};
use ferry_core::usecases::reconcile::Report;
use serde::{Deserialize, Serialize};

use crate::table::{Cond, Table, versioned};

const PORT: &str = "reports";
/// Bytes of report JSON per chunk item.
const CHUNK: usize = 300_000;

#[derive(Clone, Serialize, Deserialize)]
struct Header {
    pk: String,
    sk: String,
    rev: i64,
    from: NaiveDate,
    to: NaiveDate,
    generated_at: DateTime<Utc>,
    clean: bool,
    unexplained: usize,
    /// Names the chunks of the run this header points at.
    stamp: i64,
    chunks: usize,
}

versioned!(Header);

#[derive(Serialize, Deserialize)]
struct Chunk {
    pk: String,
    sk: String,
    body: String,
}

pub struct DynamoReports {
    pub(crate) table: Table,
}

fn pk(t: &TenantId) -> String {
    format!("{t}#report")
}

fn chunk_prefix(from: NaiveDate, to: NaiveDate, stamp: i64) -> String {
    format!("chunk#{from}#{to}#{stamp:020}#")
}

/// `s` in pieces of at most `max` bytes, cut at character boundaries.
fn pieces(s: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out
}

#[async_trait]
impl Reports for DynamoReports {
    async fn put(&self, report: &Report) -> Result<(), PortError> {
        let json =
            serde_json::to_string(report).map_err(|e| PortError::permanent(PORT, "put", e))?;
        let stamp = report.generated_at.timestamp_micros();
        let prefix = chunk_prefix(report.from, report.to, stamp);
        let parts = pieces(&json, CHUNK);
        for (n, body) in parts.iter().enumerate() {
            let chunk = Chunk {
                pk: pk(&report.tenant),
                sk: format!("{prefix}{n:04}"),
                body: (*body).to_string(),
            };
            self.table
                .put(PORT, "put_chunk", &chunk, Cond::Always)
                .await?;
        }
        let summary = ReportSummary::of(report);
        let sk = format!("period#{}#{}", report.from, report.to);
        self.table
            .update(
                PORT,
                "put",
                &pk(&report.tenant),
                &sk,
                |current: Option<Header>| {
                    if current
                        .as_ref()
                        .is_some_and(|c| c.generated_at > report.generated_at)
                    {
                        return Ok((None, ()));
                    }
                    Ok((
                        Some(Header {
                            pk: pk(&report.tenant),
                            sk: sk.clone(),
                            rev: 0,
                            from: summary.from,
                            to: summary.to,
                            generated_at: summary.generated_at,
                            clean: summary.clean,
                            unexplained: summary.unexplained,
                            stamp,
                            chunks: parts.len(),
                        }),
                        (),
                    ))
                },
            )
            .await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<Report>, PortError> {
        let sk = format!("period#{from}#{to}");
        let Some(h) = self
            .table
            .get::<Header>(PORT, "get", &pk(tenant), &sk)
            .await?
        else {
            return Ok(None);
        };
        let chunks: Vec<Chunk> = self
            .table
            .query(
                PORT,
                "get_chunks",
                &pk(tenant),
                Some(&chunk_prefix(from, to, h.stamp)),
                true,
                None,
            )
            .await?;
        if chunks.len() != h.chunks {
            return Err(PortError::permanent(
                PORT,
                "get",
                format!("{} of {} chunks of {sk}", chunks.len(), h.chunks),
            ));
        }
        let json: String = chunks.into_iter().map(|c| c.body).collect();
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| PortError::permanent(PORT, "get", e))
    }

    async fn list(&self, tenant: &TenantId, limit: usize) -> Result<Vec<ReportSummary>, PortError> {
        let headers: Vec<Header> = self
            .table
            .query(
                PORT,
                "list",
                &pk(tenant),
                Some("period#"),
                false,
                Some(limit),
            )
            .await?;
        Ok(headers
            .into_iter()
            .map(|h| ReportSummary {
                from: h.from,
                to: h.to,
                generated_at: h.generated_at,
                clean: h.clean,
                unexplained: h.unexplained,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_cut_at_character_boundaries_and_join_back() {
        let s = "aé€😀".repeat(1000);
        for max in [4, 5, 7, 300] {
            let p = pieces(&s, max);
            assert!(p.iter().all(|x| x.len() <= max && !x.is_empty()));
            assert_eq!(p.concat(), s);
        }
        assert!(pieces("", 10).is_empty());
    }
}
