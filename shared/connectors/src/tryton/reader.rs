//! What reconciliation and the sweeps read back from Tryton.

use super::*;

#[async_trait]
impl ErpReader for Tryton {
    async fn list_documents(
        &self,
        kind: DocKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ErpDocument>, ConnectorError> {
        if matches!(
            kind,
            DocKind::Contact | DocKind::Project | DocKind::Timesheet
        ) {
            return Ok(Vec::new());
        }
        let docs = self
            .invoices(json!([
                ["type", "=", "out"],
                ["invoice_date", ">=", raw::date(from)],
                ["invoice_date", "<=", raw::date(to)],
            ]))
            .await?;
        Ok(docs.into_iter().filter(|d| d.kind == kind).collect())
    }

    async fn fetch_document(
        &self,
        kind: DocKind,
        erp_id: &str,
    ) -> Result<Option<ErpDocument>, ConnectorError> {
        if matches!(
            kind,
            DocKind::Contact | DocKind::Project | DocKind::Timesheet
        ) {
            return Ok(None);
        }
        match self
            .client
            .read(
                INVOICE,
                mapper::parse_erp_id(INVOICE, erp_id)?,
                mapper::INVOICE_FIELDS,
            )
            .await?
        {
            Some(v) => mapper::read_document(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Customer invoices written or created at or after `since` (`write_date` is
    /// empty until a record is first modified).
    async fn changed_invoices(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ErpChange>, ConnectorError> {
        let domain = match since {
            Some(t) => json!([
                ["type", "=", "out"],
                [
                    "OR",
                    ["write_date", ">=", raw::datetime(t)],
                    ["create_date", ">=", raw::datetime(t)]
                ],
            ]),
            None => json!([["type", "=", "out"]]),
        };
        let out: Vec<ErpChange> = self
            .client
            .search(INVOICE, &domain, &["write_date", "create_date"])
            .await?
            .iter()
            .filter_map(|v| {
                let at = v
                    .get("write_date")
                    .and_then(raw::read_datetime)
                    .or_else(|| v.get("create_date").and_then(raw::read_datetime))?;
                Some(ErpChange {
                    erp_id: mapper::erp_id(INVOICE, raw::id(v)?),
                    updated_at: at,
                })
            })
            .collect();
        Ok(ErpChange::oldest_first(out))
    }

    /// Payment lines of customer invoices, dated in `[from, to]`.
    async fn list_payments(
        &self,
        from: NaiveDate,
        to: Option<NaiveDate>,
    ) -> Result<Vec<ErpPayment>, ConnectorError> {
        let mut domain = vec![
            json!(["type", "=", "out"]),
            json!(["payment_lines.date", ">=", raw::date(from)]),
        ];
        if let Some(to) = to {
            domain.push(json!(["payment_lines.date", "<=", raw::date(to)]));
        }
        let invoices = self
            .client
            .search(
                INVOICE,
                &Value::Array(domain),
                &[
                    "currency.code",
                    "payment_lines.date",
                    "payment_lines.debit",
                    "payment_lines.credit",
                    "payment_lines.description",
                ],
            )
            .await?;
        let mut out = Vec::new();
        for inv in &invoices {
            let Some(inv_id) = raw::id(inv) else { continue };
            let code = inv
                .get("currency")
                .and_then(|c| raw::text(c, "code"))
                .unwrap_or_default();
            let currency = ferry_canon::Currency::parse(&code).map_err(|e| {
                ConnectorError::protocol(format!("Tryton invoice {inv_id}: currency {code:?}: {e}"))
            })?;
            for line in inv
                .get("payment_lines")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(id), Some(date)) =
                    (raw::id(line), line.get("date").and_then(raw::read_date))
                else {
                    continue;
                };
                if date < from || to.is_some_and(|to| date > to) {
                    continue;
                }
                let amount = line
                    .get("credit")
                    .and_then(raw::read_decimal)
                    .unwrap_or_default()
                    - line
                        .get("debit")
                        .and_then(raw::read_decimal)
                        .unwrap_or_default();
                out.push(ErpPayment {
                    erp_id: mapper::erp_id("account.move.line", id),
                    invoice_erp_id: mapper::erp_id(INVOICE, inv_id),
                    date,
                    amount: Money::new(amount, currency),
                    reference: raw::text(line, "description"),
                    state: ErpState::Posted,
                });
            }
        }
        Ok(out)
    }

    /// The end of the last closed or locked standard period.
    async fn closed_through(&self) -> Result<Option<NaiveDate>, ConnectorError> {
        Ok(self
            .client
            .search(
                "account.period",
                &json!([
                    ["state", "in", ["closed", "locked"]],
                    ["type", "=", "standard"]
                ]),
                &["end_date"],
            )
            .await?
            .iter()
            .filter_map(|p| p.get("end_date").and_then(raw::read_date))
            .max())
    }

    async fn tax_rules(&self) -> Result<Option<ferry_core::ports::TaxRules>, ConnectorError> {
        // Tryton taxes a line by its product's customer taxes, not by a type Ferry sends.
        Ok(None)
    }

    /// `timesheet.line` dated in the range: its hours, and Ferry's reference
    /// (the first word of the description) where it has one.
    async fn list_timesheets(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ferry_core::ports::ErpTimesheetLine>, ConnectorError> {
        let found = self
            .client
            .search(
                TIMESHEET,
                &json!([
                    ["date", ">=", raw::date(from)],
                    ["date", "<=", raw::date(to)]
                ]),
                &["date", "duration", "description"],
            )
            .await?;
        found
            .iter()
            .map(|l| {
                let id = raw::id(l).ok_or_else(|| {
                    ConnectorError::protocol(format!("Tryton timesheet line without an id: {l}"))
                })?;
                let hours = raw::read_timedelta_hours(&l["duration"]).ok_or_else(|| {
                    ConnectorError::protocol(format!("timesheet line {id}: unreadable duration"))
                })?;
                let date = raw::read_date(&l["date"]).ok_or_else(|| {
                    ConnectorError::protocol(format!("timesheet line {id}: unreadable date"))
                })?;
                Ok(ferry_core::ports::ErpTimesheetLine {
                    erp_id: mapper::erp_id(TIMESHEET, id),
                    date,
                    hours,
                    reference: l["description"]
                        .as_str()
                        .and_then(|d| d.split(' ').next())
                        .map(String::from),
                })
            })
            .collect()
    }
}
