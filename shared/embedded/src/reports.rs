//! Reconciliation reports: the latest per tenant and period, as JSON.

use async_trait::async_trait;
use chrono::NaiveDate;
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{ReportSummary, Reports};
use ferry_core::usecases::reconcile::Report;
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, from_micros, micros, sql_err};

pub struct SqliteReports {
    pub(crate) db: Db,
}

fn json_err(op: &'static str) -> impl Fn(serde_json::Error) -> PortError {
    move |e| PortError::permanent("reports", op, e)
}

fn day(s: &str) -> rusqlite::Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[async_trait]
impl Reports for SqliteReports {
    async fn put(&self, report: &Report) -> Result<(), PortError> {
        let json = serde_json::to_string(report).map_err(json_err("put"))?;
        self.db
            .with(|c| {
                c.execute(
                    "INSERT INTO reports (tenant, from_day, to_day, generated_at, clean, unexplained, report)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (tenant, from_day, to_day) DO UPDATE SET
                       generated_at = excluded.generated_at, clean = excluded.clean,
                       unexplained = excluded.unexplained, report = excluded.report
                     WHERE excluded.generated_at >= reports.generated_at",
                    params![
                        report.tenant.as_str(),
                        report.from.to_string(),
                        report.to.to_string(),
                        micros(report.generated_at),
                        report.clean,
                        report.unexplained() as i64,
                        json
                    ],
                )
                .map(drop)
            })
            .map_err(sql_err("reports", "put"))
    }

    async fn get(
        &self,
        tenant: &TenantId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Option<Report>, PortError> {
        let json: Option<String> = self
            .db
            .with(|c| {
                c.query_row(
                    "SELECT report FROM reports WHERE tenant = ?1 AND from_day = ?2 AND to_day = ?3",
                    params![tenant.as_str(), from.to_string(), to.to_string()],
                    |r| r.get(0),
                )
                .optional()
            })
            .map_err(sql_err("reports", "get"))?;
        json.map(|j| serde_json::from_str(&j).map_err(json_err("get")))
            .transpose()
    }

    async fn list(&self, tenant: &TenantId, limit: usize) -> Result<Vec<ReportSummary>, PortError> {
        self.db
            .with(|c| {
                let mut s = c.prepare_cached(
                    "SELECT from_day, to_day, generated_at, clean, unexplained FROM reports
                     WHERE tenant = ?1 ORDER BY from_day DESC, to_day DESC LIMIT ?2",
                )?;
                s.query_map(params![tenant.as_str(), limit as i64], |r| {
                    Ok(ReportSummary {
                        from: day(&r.get::<_, String>(0)?)?,
                        to: day(&r.get::<_, String>(1)?)?,
                        generated_at: from_micros(r.get(2)?),
                        clean: r.get(3)?,
                        unexplained: r.get::<_, i64>(4)?.max(0) as usize,
                    })
                })?
                .collect()
            })
            .map_err(sql_err("reports", "list"))
    }
}
