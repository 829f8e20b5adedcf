//! Invoices and credit notes: found by Ferry's reference, created or
//! rewritten in place while they are drafts, posted with the `post` button.

use super::*;

impl Tryton {
    /// The live (not cancelled) customer invoice carrying Ferry's reference.
    pub(super) async fn invoice_by_reference(
        &self,
        reference: &str,
        fields: &[&str],
    ) -> Result<Option<Value>, ConnectorError> {
        Ok(self
            .client
            .search(
                INVOICE,
                &json!([
                    ["type", "=", "out"],
                    ["reference", "=", reference],
                    ["state", "!=", "cancelled"]
                ]),
                fields,
            )
            .await?
            .into_iter()
            .next())
    }

    pub(super) async fn existing_invoice(
        &self,
        erp_id: Option<&str>,
        reference: &str,
    ) -> Result<Option<Existing>, ConnectorError> {
        // The invoice Ferry wrote before, if it is still there: a draft Ferry
        // deleted (its group emptied) or someone removed in Tryton is gone, and an
        // invoice a lost answer created since carries the reference, so both are
        // looked for by reference before a new one is created (as timesheet lines).
        let known = match erp_id {
            Some(id) => {
                self.client
                    .read(
                        INVOICE,
                        mapper::parse_erp_id(INVOICE, id)?,
                        &["state", "lines"],
                    )
                    .await?
            }
            None => None,
        };
        let found = match known {
            Some(v) => Some(v),
            None => {
                self.invoice_by_reference(reference, &["state", "lines"])
                    .await?
            }
        };
        Ok(found.and_then(|v| {
            Some(Existing {
                id: raw::id(&v)?,
                state: raw::text(&v, "state").unwrap_or_default(),
                lines: v
                    .get("lines")
                    .and_then(Value::as_array)
                    .map(|ls| ls.iter().filter_map(raw::id).collect())
                    .unwrap_or_default(),
            })
        }))
    }

    pub(super) async fn upsert_invoice(
        &self,
        item: &OutboundItem,
    ) -> Result<ItemResult, ConnectorError> {
        let doc = &item.doc;
        let inv = doc.invoice().ok_or_else(|| ConnectorError::Config {
            message: "invoice without an invoice body".into(),
        })?;
        let existing = self
            .existing_invoice(item.erp_id.as_deref(), &doc.reference)
            .await?;
        match (inv.status, existing) {
            // Gone from Tryton already (removed there by hand): nothing left to remove.
            (DocStatus::Deleted, None) | (DocStatus::Voided, None) => Ok(ok(
                item.erp_id.clone().unwrap_or_default(),
                None,
                json!({ "absent": true }),
            )),
            (DocStatus::Deleted, Some(e)) => match self.client.delete(INVOICE, e.id).await? {
                Ok(()) => Ok(ok(
                    mapper::erp_id(INVOICE, e.id),
                    None,
                    json!({ "id": e.id, "deleted": true }),
                )),
                Err(m) => Ok(refused(m)),
            },
            (DocStatus::Voided, Some(e)) => {
                if e.state == "cancelled" {
                    return Ok(ok(
                        mapper::erp_id(INVOICE, e.id),
                        None,
                        json!({ "id": e.id, "state": "cancelled" }),
                    ));
                }
                match self.client.button(INVOICE, e.id, "cancel").await? {
                    Ok(_) => Ok(ok(
                        mapper::erp_id(INVOICE, e.id),
                        None,
                        json!({ "id": e.id, "state": "cancelled" }),
                    )),
                    Err(m) => Ok(refused(m)),
                }
            }
            (status, existing) => {
                let header =
                    mapper::invoice_header(&doc.reference, inv, &self.header_ids(inv).await?);
                let s = mapper::sign(doc.kind);
                let mut lines = Vec::with_capacity(inv.lines.len());
                for l in &inv.lines {
                    lines.push(mapper::invoice_line(l, &self.line_ids(l).await?, s));
                }
                // The state before posting is known: new invoices are drafts.
                let state = existing
                    .as_ref()
                    .map_or_else(|| "draft".to_string(), |e| e.state.clone());
                let id = match existing {
                    None => {
                        let mut values = header;
                        values["lines"] = json!([["create", lines]]);
                        match self.client.create(INVOICE, &values).await? {
                            Ok(id) => id,
                            Err(m) => return Ok(refused(m)),
                        }
                    }
                    Some(e) if matches!(e.state.as_str(), "posted" | "paid") => {
                        // Already posted (by Ferry or by finance): a posted invoice is the
                        // ERP's, whatever status the template asks for. It is left as it is
                        // when it already says what Ferry would write, and any other write
                        // is refused in words finance can act on, not sent for Tryton to
                        // refuse field by field.
                        if self.same_as_posted(e.id, inv, doc).await? {
                            e.id
                        } else {
                            return Ok(refused(format!(
                                "invoice {} is {} in Tryton and cannot be changed; credit it in Tryton or reopen it",
                                doc.reference, e.state
                            )));
                        }
                    }
                    Some(e) => {
                        let mut values = header;
                        values["lines"] = mapper::line_actions(&e.lines, lines);
                        match self.client.write(INVOICE, e.id, &values).await? {
                            Ok(()) => e.id,
                            Err(m) => return Ok(refused(m)),
                        }
                    }
                };
                if status == DocStatus::Authorised
                    && matches!(state.as_str(), "draft" | "validated")
                    && let Err(m) = self.client.button(INVOICE, id, "post").await?
                {
                    return Ok(refused(m));
                }
                let back = self
                    .client
                    .read(INVOICE, id, &["number", "state", "total_amount"])
                    .await?
                    .unwrap_or(Value::Null);
                Ok(ok(
                    mapper::erp_id(INVOICE, id),
                    raw::text(&back, "number"),
                    back,
                ))
            }
        }
    }

    /// Whether a posted invoice already holds the lines Ferry would write.
    pub(super) async fn same_as_posted(
        &self,
        id: i64,
        inv: &InvoiceDoc,
        doc: &PostingDoc,
    ) -> Result<bool, ConnectorError> {
        let Some(v) = self
            .client
            .read(INVOICE, id, mapper::INVOICE_FIELDS)
            .await?
        else {
            return Ok(false);
        };
        let have = mapper::read_document(&v)?;
        let mut want: Vec<(Decimal, Decimal)> = inv
            .lines
            .iter()
            .map(|l| (l.quantity, l.line_amount))
            .collect();
        let mut got: Vec<(Decimal, Decimal)> = have
            .lines
            .iter()
            .map(|l| (l.quantity, l.line_amount))
            .collect();
        want.sort();
        got.sort();
        Ok(have.kind == doc.kind && want == got)
    }

    pub(super) async fn invoices(&self, domain: Value) -> Result<Vec<ErpDocument>, ConnectorError> {
        self.client
            .search(INVOICE, &domain, mapper::INVOICE_FIELDS)
            .await?
            .iter()
            .map(mapper::read_document)
            .collect()
    }
}
