//! transform, routing: a canonical record becomes its ERP document (or a
//! skip or an exception), after its customer, project and period are resolved.

use super::*;

impl Work<'_> {
    pub(super) async fn decide(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        prev_doc: Option<String>,
    ) -> Result<Outcome, Failure> {
        let template = &self.ctx.template;
        let refs = &self.ctx.references;
        let rule = match (template.direction(self.notice.domain), self.rule()) {
            (Direction::PsaToErp, Some(rule)) => rule,
            (direction, _) => {
                let reason = match direction {
                    Direction::Reference => "reference data: read for lookups, not posted",
                    Direction::ErpToPsa => "this domain flows from the ERP to the PSA",
                    _ => "domain not synced by the template",
                };
                return self.skip(version, reason).await;
            }
        };
        let related = match self.related(canon).await? {
            Ok(r) => r,
            Err(v) => {
                return self.refuse(version, canon, v).await;
            }
        };
        let scope = related.scope(canon);
        let summary = rule.spec.granularity == Granularity::Summary;

        // Deleted at the source, or filtered out now: take it out of its document.
        let skip_reason = if canon.meta().deleted {
            Some("deleted in the source".to_string())
        } else {
            match mapping::gate(rule, canon, &scope) {
                Ok(r) => r,
                Err(v) => {
                    return self.refuse(version, canon, v).await;
                }
            }
        };
        if let Some(reason) = skip_reason {
            self.remove_timesheet(version, canon, rule).await?;
            if summary {
                if let Some(doc) = &prev_doc {
                    self.unstage(doc).await?;
                }
                return self.skip(version, &reason).await;
            }
            // A per-record document that was posted must be reversed in the ERP.
            if !(canon.meta().deleted && prev_doc.is_some()) {
                return self.skip(version, &reason).await;
            }
        }

        if let Some(date) = mapping::accounting_date(canon)
            && let Some(closed) = self.closed_through().await?
            && date <= closed
            && !canon.meta().deleted
        {
            let v = Violation::new(
                ReasonCode::ClosedPeriod,
                Owner::Finance,
                format!("accounting period of {date} is closed (closed through {closed})"),
            )
            .field("date")
            .rule("periods.closed_through");
            return self.refuse(version, canon, v).await;
        }
        if let Some(date) = mapping::accounting_date(canon)
            && !canon.meta().deleted
            && let Err(v) =
                mapping::plausible_date(template, date, self.deps.clock.now().date_naive())
        {
            return self.refuse(version, canon, v).await;
        }

        match canon {
            CanonicalRecord::Customers(account) => {
                let doc = match mapping::contact_doc(template, refs, account, &scope) {
                    Ok(d) => d,
                    Err(v) => {
                        return self.refuse(version, canon, v).await;
                    }
                };
                self.post(version, canon, doc, prev_doc.as_deref()).await
            }
            _ => {
                let Some(account) = mapping::billed_account(canon, &related) else {
                    let v = Violation::new(
                        ReasonCode::RequiredField,
                        rule.owner,
                        "record has no customer (directly or through its project)",
                    )
                    .field("account");
                    return self.refuse(version, canon, v).await;
                };
                let contact = match self.contact(&account, canon, version).await? {
                    Dependency::Ready(c) => c,
                    Dependency::Wait(after) => {
                        return Ok(Outcome::retry(
                            after,
                            format!("waiting for customer {account} to post"),
                        ));
                    }
                    Dependency::Blocked => return Ok(Outcome::Done),
                };
                match canon {
                    CanonicalRecord::Projects(project) => {
                        match mapping::project_doc(refs, project, &contact) {
                            Ok(doc) => self.post(version, canon, doc, prev_doc.as_deref()).await,
                            Err(v) => self.refuse(version, canon, v).await,
                        }
                    }
                    CanonicalRecord::Invoices(inv) | CanonicalRecord::CreditMemos(inv) => {
                        let dp = self.ctx.erp.capabilities().unit_price_decimals;
                        let doc = mapping::invoice_doc(template, refs, rule, inv, &contact, &scope)
                            .and_then(|d| {
                                if let crate::posting::DocBody::Invoice(i) = &d.body {
                                    for l in &i.lines {
                                        mapping::check_unit_precision(l.unit_amount, dp)?;
                                    }
                                }
                                Ok(d)
                            });
                        match doc {
                            Ok(doc) => self.post(version, canon, doc, prev_doc.as_deref()).await,
                            Err(v) => self.refuse(version, canon, v).await,
                        }
                    }
                    _ => {
                        let line = match mapping::line(template, rule, canon, &related, &scope)
                            .and_then(|l| {
                                mapping::check_unit_precision(
                                    l.unit_amount,
                                    self.ctx.erp.capabilities().unit_price_decimals,
                                )?;
                                Ok(l)
                            }) {
                            Ok(l) => l,
                            Err(v) => {
                                return self.refuse(version, canon, v).await;
                            }
                        };
                        if let Some(wait) = self.timesheet(version, canon, rule).await? {
                            return Ok(wait);
                        }
                        if summary {
                            self.summarise(version, canon, rule, line, &account, &contact, prev_doc)
                                .await
                        } else {
                            let doc = mapping::single_line_invoice(
                                template,
                                refs,
                                rule,
                                &line,
                                &contact,
                                canon.meta().deleted,
                            );
                            self.post(version, canon, doc, prev_doc.as_deref()).await
                        }
                    }
                }
            }
        }
    }

    /// Loads the project and customer a record refers to: from the ledger when
    /// Ferry has seen them, otherwise from the PSA (and records them).
    pub(super) async fn related(
        &self,
        canon: &CanonicalRecord,
    ) -> Result<Result<Related, Violation>, Failure> {
        let mut related = Related::default();
        // For a customer, `account` in expressions is the customer itself.
        if let CanonicalRecord::Customers(a) = canon {
            related.account = Some(a.clone());
        }
        // For a project, `project` in expressions is the project itself.
        if let CanonicalRecord::Projects(p) = canon {
            related.project = Some(p.clone());
        }
        if let Some(p) = mapping::project_of(canon) {
            match self.lookup(Domain::Projects, p).await? {
                Ok(Some(CanonicalRecord::Projects(project))) => related.project = Some(project),
                Ok(_) => return Ok(Err(unknown_reference("project", p, "project"))),
                Err(v) => return Ok(Err(v)),
            }
        }
        if let Some(a) = mapping::billed_account(canon, &related)
            && !matches!(canon, CanonicalRecord::Customers(_))
        {
            match self.lookup(Domain::Customers, &a).await? {
                Ok(Some(CanonicalRecord::Customers(account))) => related.account = Some(account),
                Ok(_) => return Ok(Err(unknown_reference("customer", &a, "account"))),
                Err(v) => return Ok(Err(v)),
            }
        }
        Ok(Ok(related))
    }

    pub(super) async fn lookup(
        &self,
        domain: Domain,
        r: &SourceRef,
    ) -> Result<Result<Option<CanonicalRecord>, Violation>, Failure> {
        let tenant = &self.notice.tenant;
        if let Some(entry) = self
            .deps
            .ledger
            .get(tenant, &RecordKey::new(domain, r))
            .await?
            && let Some(c) = entry.canonical.as_deref()
            && let Ok(rec) = serde_json::from_str::<CanonicalRecord>(c)
        {
            return Ok(Ok(Some(rec)));
        }
        let Some(src) = self.ctx.psa.fetch(domain, &r.id).await? else {
            return Ok(Ok(None));
        };
        match self.ctx.canonical(&src) {
            Ok(rec) => Ok(Ok(Some(rec))),
            Err(e) => Ok(Err(Violation::new(
                ReasonCode::RelatedRecord,
                Owner::ProjectOperations,
                format!("{domain} {r} cannot be read: {e}"),
            )
            .field(e.field))),
        }
    }

    pub(super) async fn closed_through(&self) -> Result<Option<NaiveDate>, Failure> {
        let periods = &self.ctx.template.spec.periods;
        let mut closed = periods.closed_through;
        if periods.use_erp_lock_date {
            let erp = self
                .deps
                .periods
                .closed_through(
                    &self.notice.tenant,
                    self.ctx.erp.as_ref(),
                    self.deps.clock.now(),
                )
                .await?;
            closed = closed.max(erp);
        }
        Ok(closed)
    }

    /// The customer's ERP contact, or a wait, or a blocking exception.
    pub(super) async fn contact(
        &self,
        account: &SourceRef,
        canon: &CanonicalRecord,
        version: &SourceVersion,
    ) -> Result<Dependency, Failure> {
        let tenant = &self.notice.tenant;
        let key = mapping::customer_key(account);
        if let Some(entry) = self.deps.idmap.get(tenant, &key).await?
            && let Some(erp_id) = entry.erp_id
        {
            return Ok(Dependency::Ready(ContactRef { erp_id, key }));
        }
        // Held at transform or refused by the ERP at post: both are keyed by the
        // customer's record key, which is also its document key.
        let blocking = self
            .deps
            .exceptions
            .open_for_source(tenant, &key)
            .await?
            .into_iter()
            .find(|e| e.status == ExceptionStatus::Open);
        if let Some(b) = blocking {
            let v = Violation::new(
                ReasonCode::DependencyBlocked,
                b.owner,
                format!(
                    "customer {account} is held by exception {}: {}",
                    b.id, b.message
                ),
            )
            .field("account");
            self.exception(
                version,
                Some(canon),
                v,
                Some(RecordKey::new(Domain::Customers, account)),
            )
            .await?;
            return Ok(Dependency::Blocked);
        }
        if self.receive_count <= 1
            && self
                .deps
                .ledger
                .get(tenant, &RecordKey::new(Domain::Customers, account))
                .await?
                .is_none()
        {
            // Never seen: pull it through the pipeline rather than wait for a poll.
            let pull = ChangeNotice {
                tenant: tenant.clone(),
                system: account.system.clone(),
                domain: Domain::Customers,
                id: account.id.clone(),
                action: ChangeAction::Upsert,
                version: None,
                record: None,
                origin: self.notice.origin.clone(),
                received_at: self.deps.clock.now(),
                correlation_id: self.notice.correlation_id.clone(),
            };
            self.deps
                .queue
                .send(
                    QueueName::Transform,
                    vec![OutboundMessage::now(Envelope::Change(pull).to_body())],
                )
                .await?;
        }
        let wait = self
            .deps
            .settings
            .dependency_wait
            .saturating_mul(self.receive_count.clamp(1, 8));
        Ok(Dependency::Wait(wait))
    }

    /// Queues this record's own document at the source version.
    pub(super) async fn post(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        doc: PostingDoc,
        prev_doc: Option<&str>,
    ) -> Result<Outcome, Failure> {
        self.note_doc(version, &doc.key, prev_doc).await?;
        let (doc_key, doc_version) = self
            .enqueue(version, canon, doc, vec![self.key.clone()])
            .await?;
        self.decided(
            version,
            Disposition::Queued {
                doc_key: doc_key.into(),
                revision: doc_version,
            },
        )
        .await
    }

    /// Sends a post command for `doc`; returns its key and revision. The ledger is
    /// the caller's: a record's secondary documents (timesheet lines) do not move it.
    pub(super) async fn enqueue(
        &self,
        version: &SourceVersion,
        canon: &CanonicalRecord,
        doc: PostingDoc,
        source_keys: Vec<RecordKey>,
    ) -> Result<(DocKey, i64), Failure> {
        let doc_version = version.as_micros();
        let cmd = PostCommand {
            tenant: self.notice.tenant.clone(),
            domain: self.notice.domain,
            content_hash: hash_json(&doc),
            source_hash: hash_json(canon),
            doc,
            version: doc_version,
            source_keys,
            template_version: self.ctx.template.version.clone(),
            created_at: self.deps.clock.now(),
            first_received_at: self.notice.received_at,
            correlation_id: self.notice.correlation_id.clone(),
        };
        let doc_key = cmd.doc.key.clone();
        self.deps
            .queue
            .send(
                QueueName::Post,
                vec![OutboundMessage::now(
                    Envelope::Post(Box::new(cmd)).to_body(),
                )],
            )
            .await?;
        Ok((doc_key, doc_version))
    }
}

pub(super) enum Dependency {
    Ready(ContactRef),
    Wait(Duration),
    Blocked,
}

/// A record names a project or customer the PSA does not have.
pub(super) fn unknown_reference(what: &str, r: &SourceRef, field: &str) -> Violation {
    Violation::new(
        ReasonCode::UnknownReference,
        Owner::ProjectOperations,
        format!("{what} {r} does not exist in the PSA"),
    )
    .field(field)
}
