//! Harvest v2 as a PSA source: clients, projects (with their task
//! assignments), users, time entries, expenses and invoices over the REST API
//! with a personal access token, `updated_since` reads and `links.next` paging.
//! Harvest sends no webhooks and keeps no record of deletions, so it is polled,
//! and deleted time, expenses and invoices are found by a sweep that compares
//! ids (`swept`). Payments recorded in the ERP are written back as Harvest
//! invoice payments.
//! Reference: https://help.getharvest.com/api-v2/

pub mod client;
pub mod config;
pub mod entry;
pub mod mapper;
pub mod raw;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use ferry_canon::{CanonicalRecord, Currency, Domain, SystemId, TenantId};
use ferry_core::ports::{CallGate, Cursor, PaymentUpdate, PsaConnector, SourceRecord};
use ferry_core::{ConnectorError, MappingError};
use serde_json::{Value, json};

pub use client::Client;
pub use config::HarvestConfig;

use crate::credential::Credential;
use crate::polled::ReadAhead;

/// The system id records from Harvest carry.
pub fn system() -> SystemId {
    SystemId::parse("harvest").expect("valid slug")
}

/// One Harvest connection.
pub struct Harvest {
    client: Client,
    home_currency: Currency,
    read_ahead: ReadAhead,
}

/// A raw record with the id and version the pipeline orders by.
pub fn source_record(domain: Domain, raw: Value) -> Result<SourceRecord, ConnectorError> {
    crate::polled::source_record(domain, raw, "Harvest", &["ferry_updated_at", "updated_at"])
}

/// The id of the client a record belongs to (`client.id`).
fn client_of(raw: &Value) -> Option<i64> {
    raw.get("client")?.get("id")?.as_i64()
}

impl Harvest {
    pub fn new(
        cfg: HarvestConfig,
        token: Credential,
        home_currency: Currency,
        gate: Option<Arc<dyn CallGate>>,
    ) -> Self {
        Harvest {
            client: Client::new(cfg, token, gate),
            home_currency,
            read_ahead: ReadAhead::default(),
        }
    }

    /// Each client's currency, by client id.
    async fn currencies(&self) -> Result<HashMap<i64, String>, ConnectorError> {
        Ok(self
            .client
            .all(Domain::Customers, &[])
            .await?
            .iter()
            .filter_map(|c| {
                Some((
                    c.get("id")?.as_i64()?,
                    c.get("currency")?.as_str()?.to_string(),
                ))
            })
            .collect())
    }

    /// Adds the record's client's currency as `ferry_currency`.
    fn with_currency(raw: &mut Value, currencies: &HashMap<i64, String>) {
        if let Some(c) = client_of(raw).and_then(|id| currencies.get(&id)) {
            raw["ferry_currency"] = json!(c);
        }
    }

    /// Adds a project's task assignments and the latest change of it and them
    /// (`ferry_updated_at`): a task added to a project is a change of the project.
    fn with_tasks(project: &mut Value, assignments: &[Value]) {
        let id = project.get("id").and_then(Value::as_i64);
        let own: Vec<Value> = assignments
            .iter()
            .filter(|a| {
                a.get("project")
                    .and_then(|p| p.get("id"))
                    .and_then(Value::as_i64)
                    == id
            })
            .cloned()
            .collect();
        let mut latest = project
            .get("updated_at")
            .and_then(Value::as_str)
            .and_then(|s| mapper::instant(s, "updated_at").ok());
        for a in &own {
            let at = a
                .get("updated_at")
                .and_then(Value::as_str)
                .and_then(|s| mapper::instant(s, "updated_at").ok());
            latest = latest.max(at);
        }
        if let Some(at) = latest {
            project["ferry_updated_at"] = json!(client::since(at));
        }
        project["ferry_tasks"] = Value::Array(own);
    }

    /// Projects (all of them: a firm has hundreds), each with its tasks.
    async fn projects(&self) -> Result<Vec<Value>, ConnectorError> {
        let currencies = self.currencies().await?;
        let assignments = self.client.task_assignments().await?;
        let mut all = self.client.all(Domain::Projects, &[]).await?;
        for p in &mut all {
            Self::with_currency(p, &currencies);
            Self::with_tasks(p, &assignments);
        }
        Ok(all)
    }

    /// One record, with what the mapper needs added.
    async fn one(&self, domain: Domain, id: &str) -> Result<Option<Value>, ConnectorError> {
        let Some(mut raw) = self.client.one(domain, id).await? else {
            return Ok(None);
        };
        if matches!(
            domain,
            Domain::Projects | Domain::TimeEntries | Domain::Expenses
        ) && let Some(client) = client_of(&raw)
            && let Some(c) = self
                .client
                .one(Domain::Customers, &client.to_string())
                .await?
            && let Some(code) = c.get("currency").and_then(Value::as_str)
        {
            raw["ferry_currency"] = json!(code);
        }
        if domain == Domain::Projects {
            let assignments = self
                .client
                .all_of(
                    &format!("projects/{id}/task_assignments"),
                    "task_assignments",
                )
                .await?;
            Self::with_tasks(&mut raw, &assignments);
        }
        Ok(Some(raw))
    }
}

fn unsupported(domain: Domain) -> ConnectorError {
    ConnectorError::Config {
        message: format!("Harvest has no {domain}"),
    }
}

#[async_trait]
impl PsaConnector for Harvest {
    fn system(&self) -> SystemId {
        system()
    }

    fn pollable(&self) -> Vec<Domain> {
        vec![
            Domain::Customers,
            Domain::Projects,
            Domain::Resources,
            Domain::TimeEntries,
            Domain::Expenses,
            Domain::Invoices,
        ]
    }

    fn swept(&self) -> Vec<Domain> {
        vec![Domain::TimeEntries, Domain::Expenses, Domain::Invoices]
    }

    /// Clients, projects and users are read whole (firms have hundreds) and
    /// filtered here; time, expenses and invoices since the cursor's instant
    /// (`updated_since`, a second early), then ordered and cut by `(updated_at, id)` here, since
    /// Harvest sorts them by date, not by change. A backfill's later pages come
    /// from the same read ([`ReadAhead`]).
    async fn changes(
        &self,
        domain: Domain,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        if let Some(page) = self.read_ahead.next(domain, after, limit) {
            return Ok(page);
        }
        // A second early: whether Harvest's `updated_since` includes its own
        // instant is not documented, and records sharing the cursor's second
        // with a higher id must not be lost. The cut below drops the overlap.
        let since: Vec<(&str, String)> = after
            .map(|c| {
                vec![(
                    "updated_since",
                    client::since(c.updated_at - chrono::Duration::seconds(1)),
                )]
            })
            .unwrap_or_default();
        let raw = match domain {
            Domain::Customers | Domain::Resources => self.client.all(domain, &[]).await?,
            Domain::Projects => self.projects().await?,
            Domain::TimeEntries | Domain::Expenses => {
                let mut all = self.client.all(domain, &since).await?;
                if !all.is_empty() {
                    let currencies = self.currencies().await?;
                    for r in &mut all {
                        Self::with_currency(r, &currencies);
                    }
                }
                all
            }
            Domain::Invoices => self.client.all(domain, &since).await?,
            other => return Err(unsupported(other)),
        };
        let records = raw
            .into_iter()
            .map(|r| source_record(domain, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.read_ahead.cut(domain, records, after, limit))
    }

    async fn fetch(
        &self,
        domain: Domain,
        id: &str,
    ) -> Result<Option<SourceRecord>, ConnectorError> {
        if !self.pollable().contains(&domain) {
            return Err(unsupported(domain));
        }
        self.one(domain, id)
            .await?
            .map(|r| source_record(domain, r))
            .transpose()
    }

    fn to_canonical(
        &self,
        tenant: &TenantId,
        record: &SourceRecord,
    ) -> Result<CanonicalRecord, MappingError> {
        let system = system();
        let cx = mapper::MapContext {
            tenant,
            system: &system,
            home_currency: self.home_currency,
            cfg: &self.client.cfg,
        };
        mapper::to_canonical(&cx, record)
    }

    async fn list_period(
        &self,
        domain: Domain,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        let mut raw = match domain {
            Domain::TimeEntries | Domain::Expenses | Domain::Invoices => {
                self.client.dated(domain, from, to).await?
            }
            _ => return Ok(Vec::new()),
        };
        if matches!(domain, Domain::TimeEntries | Domain::Expenses) && !raw.is_empty() {
            let currencies = self.currencies().await?;
            for r in &mut raw {
                Self::with_currency(r, &currencies);
            }
        }
        raw.into_iter().map(|r| source_record(domain, r)).collect()
    }

    /// Harvest records payments one by one: the difference between what the
    /// ERP shows paid and what Harvest holds is recorded as one payment. Read
    /// first on every attempt, so a retry after an unanswered call never pays
    /// twice. A smaller amount (a reversal) needs a person.
    async fn apply_payment(
        &self,
        invoice_id: &str,
        update: &PaymentUpdate,
    ) -> Result<(), ConnectorError> {
        let Some(paid_here) = self.client.paid(invoice_id).await? else {
            return Err(ConnectorError::Rejected {
                status: 404,
                message: format!("Harvest invoice {invoice_id} does not exist"),
            });
        };
        let Some(delta) = crate::write_back::payment_to_record(update, paid_here, "Harvest")?
        else {
            return Ok(());
        };
        let notes = format!("Recorded in the ERP ({})", update.erp_reference);
        self.client
            .add_payment(invoice_id, delta, update.paid_on, &notes)
            .await
    }
}
