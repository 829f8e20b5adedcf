//! transform, outcomes: how a record ends (skipped, settled, refused with an
//! exception) and the replay of records that waited on it.

use super::*;

impl Work<'_> {
    pub(super) async fn skip(
        &self,
        version: &SourceVersion,
        reason: &str,
    ) -> Result<Outcome, Failure> {
        self.decided(
            version,
            Disposition::Skipped {
                reason: reason.to_string(),
            },
        )
        .await
    }

    /// Settles this version and resolves the exceptions the record has moved
    /// on from: the end of every decision that is not an exception.
    pub(super) async fn decided(
        &self,
        version: &SourceVersion,
        d: Disposition,
    ) -> Result<Outcome, Failure> {
        self.settle(version, d).await?;
        exceptions::resolve_moved_on(
            self.deps,
            &self.notice.tenant,
            &self.key,
            self.deps.clock.now(),
        )
        .await?;
        Ok(Outcome::Done)
    }

    /// Tells the ledger where this version is going before it is sent there,
    /// unless the ledger already names that document (`known`, from `observe`).
    pub(super) async fn note_doc(
        &self,
        version: &SourceVersion,
        doc_key: &str,
        known: Option<&str>,
    ) -> Result<(), Failure> {
        if known == Some(doc_key) {
            return Ok(());
        }
        self.deps
            .ledger
            .note_doc(&self.notice.tenant, &self.key, version, doc_key)
            .await?;
        Ok(())
    }

    pub(super) async fn settle(
        &self,
        version: &SourceVersion,
        d: Disposition,
    ) -> Result<(), Failure> {
        let applied = self
            .deps
            .ledger
            .settle(&self.notice.tenant, &self.key, version, &d)
            .await?;
        tracing::debug!(state = d.state(), version = %version.updated_at, applied, "decided");
        Ok(())
    }

    /// Records an exception for this record and settles the ledger on it.
    /// Records `v` as the record's exception; the message is done.
    pub(super) async fn refuse(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        v: Violation,
    ) -> Result<Outcome, Failure> {
        self.exception(version, Some(canon), v, None).await?;
        Ok(Outcome::Done)
    }

    pub(super) async fn exception(
        &self,
        version: &SourceVersion,
        canon: Option<&CanonicalRecord>,
        v: Violation,
        blocked_by: Option<RecordKey>,
    ) -> Result<(), Failure> {
        let tenant = &self.notice.tenant;
        let now = self.deps.clock.now();
        let (amount, hours) = canon.map(mapping::at_stake).unwrap_or((None, None));
        let replay = Envelope::Change(ChangeNotice {
            record: None,
            version: None,
            ..self.notice.clone()
        });
        let stored = exceptions::raise(
            self.deps,
            ExceptionRecord {
                id: exception_id(tenant, "transform", &self.key),
                tenant: tenant.clone(),
                stage: "transform".into(),
                domain: self.notice.domain,
                source_key: self.key.to_string(),
                reason: v.reason,
                message: v.message,
                field: v.field,
                rule: v.rule,
                erp_message: None,
                owner: v.owner,
                status: ExceptionStatus::Open,
                attempts: 1,
                first_seen: now,
                last_seen: now,
                amount,
                hours,
                doc_key: None,
                blocked_by: blocked_by.map(String::from),
                replay_queue: QueueName::Transform,
                replay_body: replay.to_body(),
            },
        )
        .await?;
        tracing::info!(reason = %stored.reason, owner = %stored.owner, "exception raised");
        self.settle(
            version,
            Disposition::Exception {
                exception_id: stored.id,
                reason: v.reason,
                owner: stored.owner,
            },
        )
        .await
    }
}

/// Replays exceptions that were blocked by `blocker` (a record that just posted).
pub async fn release_dependents(
    deps: &Deps,
    tenant: &TenantId,
    blocker: &str,
) -> Result<usize, PortError> {
    let blocked = deps.exceptions.blocked_by(tenant, blocker).await?;
    let mut n = 0;
    for ex in blocked {
        match retry::replay(deps, tenant, &ex.id).await {
            Ok(()) => n += 1,
            Err(retry::ReplayError::Port(p)) => return Err(p),
            Err(e) => tracing::warn!(error = %e, "dependent not replayed"),
        }
    }
    Ok(n)
}
