//! transform, summaries: a line folds into its summary group in staging,
//! and the group is scheduled to be rendered and posted.

use super::*;

impl Work<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn summarise(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        rule: &CompiledRule,
        line: StagedLine,
        account: &SourceRef,
        contact: &ContactRef,
        prev_doc: Option<String>,
    ) -> Result<Outcome, Failure> {
        let group = match mapping::summary_group(
            &self.ctx.references,
            rule,
            &line,
            mapping::project_of(canon),
            account,
        ) {
            Ok(g) => g,
            Err(v) => {
                return self.refuse(version, canon, v).await;
            }
        };
        if line.currency != group.currency {
            let v = Violation::new(
                ReasonCode::CurrencyMismatch,
                Owner::Finance,
                format!(
                    "{} is in {} but its document is in {}",
                    self.key, line.currency, group.currency
                ),
            );
            return self.refuse(version, canon, v).await;
        }
        match prev_doc.as_deref() {
            Some(old) if group.doc_key != old => self.unstage(old).await?,
            _ => {}
        }
        let header = serde_json::to_string(&SummaryHeader {
            group: group.clone(),
            contact: contact.clone(),
        })
        .expect("headers serialise");
        let line_json = serde_json::to_string(&line).expect("staged lines serialise");
        let tenant = &self.notice.tenant;
        self.note_doc(version, &group.doc_key, prev_doc.as_deref())
            .await?;
        let revision = self
            .deps
            .staging
            .stage(StageRequest {
                tenant,
                group: &group.group,
                header: Some(&header),
                member: &self.key,
                line: Some(&line_json),
                now: self.deps.clock.now(),
            })
            .await?;
        // Already in the ERP at this revision or later (an unchanged re-read).
        let posted = self
            .deps
            .idmap
            .get(tenant, &group.doc_key)
            .await?
            .is_some_and(|e| e.erp_id.is_some() && e.version >= revision);
        let doc_key = group.doc_key.to_string();
        let d = if posted {
            Disposition::Posted { doc_key, revision }
        } else {
            self.schedule_flush(&group.group).await?;
            Disposition::Queued { doc_key, revision }
        };
        self.decided(version, d).await
    }

    /// Sends a flush for the group unless one is already pending (single flight).
    pub(super) async fn schedule_flush(&self, group: &str) -> Result<(), Failure> {
        let coalesce = self
            .rule()
            .and_then(|r| r.spec.summary.as_ref())
            .map(|s| s.coalesce_seconds)
            .unwrap_or(0);
        let now = self.deps.clock.now();
        // The flag outlives the flush's delay by a margin, so a busy post queue does not
        // cause a second flush; if a flush were ever lost, the next change after the
        // margin schedules a new one.
        let until = now + chrono::Duration::seconds(coalesce as i64) + chrono::Duration::minutes(5);
        let tenant = &self.notice.tenant;
        if self
            .deps
            .staging
            .schedule(tenant, group, now, until)
            .await?
        {
            let flush = Envelope::Flush(FlushGroup {
                tenant: tenant.clone(),
                domain: self.notice.domain,
                group: group.to_string(),
                created_at: now,
                correlation_id: self.notice.correlation_id.clone(),
            });
            self.deps
                .queue
                .send(
                    QueueName::Post,
                    vec![OutboundMessage {
                        body: flush.to_body(),
                        delay: Duration::from_secs(coalesce),
                    }],
                )
                .await?;
        }
        Ok(())
    }

    /// Removes this record from the summary document it was in; the document is
    /// re-posted without it (or deleted, if it became empty).
    pub(super) async fn unstage(&self, doc_key: &str) -> Result<(), Failure> {
        let Some(key) = DocKey::parse(doc_key) else {
            return Ok(());
        };
        let Some(group) = key.summary_group() else {
            return Ok(());
        };
        self.deps
            .staging
            .stage(StageRequest {
                tenant: &self.notice.tenant,
                group,
                header: None,
                member: &self.key,
                line: None,
                now: self.deps.clock.now(),
            })
            .await?;
        self.schedule_flush(group).await
    }
}

/// What a summary group renders into: stored with the group in staging.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SummaryHeader {
    pub group: SummaryGroup,
    pub contact: ContactRef,
}
