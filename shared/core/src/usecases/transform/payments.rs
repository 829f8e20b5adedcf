//! transform, payment status: an ERP payment notice becomes a write-back to
//! the PSA invoice it pays.

use super::*;

impl Work<'_> {
    /// An ERP invoice changed (a payment): write its paid amount back onto the PSA
    /// invoice it came from. ERP-originated invoices (summaries) have no PSA invoice.
    pub(super) async fn payment_status(&self) -> Result<Outcome, Failure> {
        let n = self.notice;
        let tenant = &n.tenant;
        let version = n
            .version
            .clone()
            .unwrap_or_else(|| SourceVersion::at(n.received_at));
        let observed = self
            .deps
            .ledger
            .observe(Observation {
                tenant,
                source_key: &self.key,
                domain: Domain::Payments,
                version: &version,
                content_hash: &version.updated_at.to_rfc3339(),
                received_at: n.received_at,
                canonical: None,
            })
            .await?;
        if !matches!(observed, Observe::New { .. }) {
            return Ok(Outcome::Done);
        }
        if self.ctx.template.direction(Domain::Payments) != Direction::ErpToPsa {
            return self
                .skip(
                    &version,
                    "payment status does not flow back per the template",
                )
                .await;
        }
        let Some(entry) = self.deps.idmap.find_by_erp_id(tenant, &n.id).await? else {
            return self.skip(&version, "not a document Ferry posted").await;
        };
        let record = crate::keys::DocKey::parse(&entry.doc_key).and_then(|k| match k.of() {
            crate::keys::DocOf::Record(r) => Some(r),
            _ => None,
        });
        let Some(record) = record else {
            return self.skip(&version, "not a document Ferry posted").await;
        };
        if record.domain() != Domain::Invoices {
            return self
                .skip(&version, "ERP-originated invoice: no PSA invoice to update")
                .await;
        }
        let psa_id = record.id().to_string();
        let Some(doc) = self
            .ctx
            .erp
            .fetch_document(crate::posting::DocKind::Invoice, &n.id)
            .await?
        else {
            return self
                .skip(&version, "the ERP no longer has this invoice")
                .await;
        };
        let update = crate::ports::PaymentUpdate {
            amount_paid: ferry_canon::Money::new(doc.amount_paid, doc.currency),
            amount_due: ferry_canon::Money::new(doc.amount_due, doc.currency),
            paid_on: Some(self.deps.clock.now().date_naive()),
            erp_reference: doc.erp_id.clone(),
        };
        match self.ctx.psa.apply_payment(&psa_id, &update).await {
            Ok(()) => {
                let doc_key = crate::keys::DocKey::psa_payments(&record).to_string();
                self.settle(
                    &version,
                    Disposition::Posted {
                        doc_key,
                        revision: version.as_micros(),
                    },
                )
                .await?;
                Ok(Outcome::Done)
            }
            Err(e) if e.class() == RetryClass::Permanent => {
                let v = Violation::new(
                    ReasonCode::PsaRefused,
                    Owner::Finance,
                    format!("payment status could not be written to the PSA: {e}"),
                );
                self.exception(&version, None, v, None).await?;
                Ok(Outcome::Done)
            }
            Err(e) => Err(Failure::Psa(e)),
        }
    }
}
