//! transform, timesheets: a time entry also becomes (or stops being) a
//! timesheet line on its ERP project, where the template keeps them.

use super::*;

impl Work<'_> {
    /// When the template keeps timesheets: records a live time entry as a line on
    /// its ERP project. `Some` means wait, because the project is on its way to the
    /// ERP. A project that will not be there (skipped, or held by an exception)
    /// gets no line; the entry still bills.
    pub(super) async fn timesheet(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        rule: &CompiledRule,
    ) -> Result<Option<Outcome>, Failure> {
        let (true, CanonicalRecord::TimeEntries(t)) = (rule.spec.timesheets, canon) else {
            return Ok(None);
        };
        let Some(project) = &t.project else {
            return Ok(None);
        };
        let at = self.erp_project(project).await?;
        if !at.erp_id.is_empty() {
            self.enqueue_timesheet(version, canon, t, Some(&at), false)
                .await?;
            return Ok(None);
        }
        match self
            .deps
            .ledger
            .get(&self.notice.tenant, &at.key)
            .await?
            .map(|e| e.disposition)
        {
            None | Some(Disposition::Pending) | Some(Disposition::Queued { .. }) => {
                let wait = self
                    .deps
                    .settings
                    .dependency_wait
                    .saturating_mul(self.receive_count.clamp(1, 8));
                Ok(Some(Outcome::retry(
                    wait,
                    format!("waiting for project {project} to post (timesheet line)"),
                )))
            }
            // The template keeps a timesheet line for every entry, and this
            // entry's project is not in the ERP to carry one: the entry is held
            // (not half-posted) until the project posts, which releases it.
            Some(other) => {
                let v = match other {
                    Disposition::Exception { exception_id, .. } => Violation::new(
                        ReasonCode::DependencyBlocked,
                        rule.owner,
                        format!(
                            "project {project} is held by exception {exception_id}; its time waits for it (timesheet lines go on the ERP project)"
                        ),
                    ),
                    other => Violation::new(
                        ReasonCode::DependencyNotInErp,
                        rule.owner,
                        format!(
                            "project {project} is not in the ERP ({}), so this entry can get no timesheet line: post the project, or set timesheets = false",
                            match &other {
                                Disposition::Skipped { reason } => format!("skipped: {reason}"),
                                o => o.state().to_string(),
                            }
                        ),
                    )
                    .rule(format!("domains.{}.timesheets", rule.domain)),
                }
                .field("project");
                let project = RecordKey::new(Domain::Projects, project);
                self.exception(version, Some(canon), v, Some(project))
                    .await?;
                Ok(Some(Outcome::Done))
            }
        }
    }

    /// When the template keeps timesheets: removes the timesheet line of an entry
    /// that was deleted, or is no longer approved or billable.
    pub(super) async fn remove_timesheet(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        rule: &CompiledRule,
    ) -> Result<(), Failure> {
        let (true, CanonicalRecord::TimeEntries(t)) = (rule.spec.timesheets, canon) else {
            return Ok(());
        };
        let tenant = &self.notice.tenant;
        let held = self
            .deps
            .idmap
            .get(tenant, &crate::keys::DocKey::timesheet(&self.key))
            .await?;
        if !crate::ports::IdMapEntry::may_exist_in_erp(held.as_ref()) {
            return Ok(());
        }
        let at = match &t.project {
            Some(p) => Some(self.erp_project(p).await?),
            // Off its project now: the line goes by its own id.
            None => None,
        };
        self.enqueue_timesheet(version, canon, t, at.as_ref(), true)
            .await
    }

    /// An entry's project: its document key, and its ERP id (empty until the ERP has it).
    pub(super) async fn erp_project(
        &self,
        project: &ferry_canon::SourceRef,
    ) -> Result<ContactRef, Failure> {
        let key = DocKey::record(&RecordKey::new(Domain::Projects, project));
        let erp_id = self
            .deps
            .idmap
            .get(&self.notice.tenant, &key)
            .await?
            .and_then(|e| e.erp_id)
            .unwrap_or_default();
        Ok(ContactRef { erp_id, key })
    }

    pub(super) async fn enqueue_timesheet(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        t: &ferry_canon::TimeEntry,
        at: Option<&ContactRef>,
        removed: bool,
    ) -> Result<(), Failure> {
        let doc = mapping::timesheet_doc(&self.ctx.references, t, at, removed);
        self.enqueue(version, canon, doc, vec![self.key.clone()])
            .await?;
        Ok(())
    }
}
