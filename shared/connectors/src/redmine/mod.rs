//! Redmine as a PSA source: customers (top-level projects), projects, users and
//! time entries over the REST API, with an API key, `offset`/`limit` paging and
//! incremental reads on `updated_on`. Redmine sends no webhooks and keeps no
//! record of deletions, so deleted time entries are found by a periodic sweep
//! that compares ids (`swept`).
//! Reference: https://www.redmine.org/projects/redmine/wiki/Rest_api

pub mod client;
pub mod config;
pub mod entry;
pub mod mapper;
pub mod raw;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{Days, NaiveDate};
use ferry_canon::{CanonicalRecord, Currency, Domain, SystemId, TenantId};
use ferry_core::ports::{Cursor, PaymentUpdate, PsaConnector, SourceRecord};
use ferry_core::{ConnectorError, MappingError};
use serde_json::{Value, json};

pub use client::Client;
pub use config::RedmineConfig;

use crate::credential::Credential;
use crate::polled::after_cursor;

/// The system id records from Redmine carry.
pub fn system() -> SystemId {
    SystemId::parse("redmine").expect("valid slug")
}

/// One Redmine connection.
pub struct Redmine {
    client: Client,
    home_currency: Currency,
}

/// A raw record with the id and version the pipeline orders by.
pub fn source_record(domain: Domain, raw: Value) -> Result<SourceRecord, ConnectorError> {
    crate::polled::source_record(domain, raw, "Redmine", &["ferry_updated_on", "updated_on"])
}

/// A project's issues as its tasks (`ferry_issues`).
fn tasks(issues: &[Value]) -> Value {
    Value::Array(
        issues
            .iter()
            .filter_map(|i| {
                Some(json!({ "id": i.get("id")?, "subject": i.get("subject")?, "updated_on": i.get("updated_on")? }))
            })
            .collect(),
    )
}

/// Adds a project's issues (its tasks) and the latest `updated_on` of it and them.
fn with_issues(project: &mut Value, issues: Vec<Value>) {
    let mut latest = project
        .get("updated_on")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    for i in &issues {
        if let Some(at) = i.get("updated_on").and_then(Value::as_str)
            && at > latest.as_str()
        {
            latest = at.to_string();
        }
    }
    project["ferry_issues"] = tasks(&issues);
    project["ferry_updated_on"] = json!(latest);
}

/// The day before the cursor's: Redmine's date filters are in its own time zone.
fn day_before(c: &Cursor) -> NaiveDate {
    c.updated_at
        .date_naive()
        .checked_sub_days(Days::new(1))
        .unwrap_or(NaiveDate::MIN)
}

impl Redmine {
    pub fn new(cfg: RedmineConfig, key: Credential, home_currency: Currency) -> Self {
        Redmine {
            client: Client::new(cfg, key),
            home_currency,
        }
    }

    /// Every project, each with `ferry_customer` (its top-level project) added.
    async fn projects(&self) -> Result<Vec<Value>, ConnectorError> {
        let mut all = self.client.all(Domain::Projects, &[]).await?;
        let parents: HashMap<i64, (Option<i64>, String)> = all
            .iter()
            .filter_map(|p| {
                Some((
                    p.get("id")?.as_i64()?,
                    (
                        p.get("parent")
                            .and_then(|x| x.get("id"))
                            .and_then(Value::as_i64),
                        p.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    ),
                ))
            })
            .collect();
        for p in &mut all {
            if let Some(root) = p
                .get("id")
                .and_then(Value::as_i64)
                .and_then(|id| mapper::root_of(id, &parents))
            {
                p["ferry_customer"] = json!({ "id": root.id, "name": root.name });
            }
        }
        Ok(all)
    }

    /// Projects changed after the cursor, with their tasks. A project's version is
    /// the latest `updated_on` of it and its issues. Only issues changed since the
    /// cursor's day are read to find those versions (older changes are behind the
    /// cursor either way), then the full issue list of each project returned.
    async fn changed_projects(
        &self,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        let mut all = self.projects().await?;
        let recent = match after {
            Some(c) => self.client.issues_updated_since(day_before(c)).await?,
            None => self.client.issues(None).await?,
        };
        let mut latest: HashMap<i64, String> = HashMap::new();
        for i in &recent {
            let (Some(project), Some(at)) = (
                i.get("project")
                    .and_then(|p| p.get("id"))
                    .and_then(Value::as_i64),
                i.get("updated_on").and_then(Value::as_str),
            ) else {
                continue;
            };
            let e = latest.entry(project).or_default();
            // Redmine's timestamps are UTC in one format, so text order is time order.
            if at > e.as_str() {
                *e = at.to_string();
            }
        }
        for p in &mut all {
            let own = p
                .get("updated_on")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let id = p.get("id").and_then(Value::as_i64).unwrap_or_default();
            let at = latest
                .get(&id)
                .filter(|t| **t > own)
                .cloned()
                .unwrap_or(own);
            p["ferry_updated_on"] = json!(at);
        }
        let records = all
            .into_iter()
            .map(|r| source_record(Domain::Projects, r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = after_cursor(records, after, limit);
        for rec in &mut out {
            let issues = self.client.issues(Some(&rec.id)).await?;
            rec.raw["ferry_issues"] = tasks(&issues);
        }
        Ok(out)
    }

    /// One project with its top-level project, following parents one call at a time.
    async fn project(&self, id: &str) -> Result<Option<Value>, ConnectorError> {
        let Some(mut p) = self.client.one(Domain::Projects, id).await? else {
            return Ok(None);
        };
        let mut parent = p.get("parent").cloned();
        let mut root = None;
        for _ in 0..64 {
            let Some(up) = parent.take() else { break };
            let up_id = up
                .get("id")
                .and_then(Value::as_i64)
                .unwrap_or_default()
                .to_string();
            root = Some(up.clone());
            parent = self
                .client
                .one(Domain::Projects, &up_id)
                .await?
                .and_then(|v| v.get("parent").cloned());
        }
        if let Some(r) = root {
            p["ferry_customer"] = r;
        }
        with_issues(&mut p, self.client.issues(Some(id)).await?);
        Ok(Some(p))
    }
}

#[async_trait]
impl PsaConnector for Redmine {
    fn system(&self) -> SystemId {
        system()
    }

    fn pollable(&self) -> Vec<Domain> {
        vec![
            Domain::Customers,
            Domain::Projects,
            Domain::Resources,
            Domain::TimeEntries,
        ]
    }

    fn swept(&self) -> Vec<Domain> {
        vec![Domain::TimeEntries]
    }

    /// Projects and users are read whole (firms have hundreds, not millions) and
    /// filtered here; issues only since the cursor (see `changed_projects`). Time entries are filtered by Redmine on the cursor's date
    /// (its `updated_on` filter compares dates, not instants) and then by instant
    /// and id here, so records sharing a timestamp are never lost.
    async fn changes(
        &self,
        domain: Domain,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<SourceRecord>, ConnectorError> {
        let raw = match domain {
            Domain::Customers => self
                .projects()
                .await?
                .into_iter()
                .filter(|p| p.get("parent").is_none())
                .collect(),
            Domain::Projects => return self.changed_projects(after, limit).await,
            Domain::Resources => self.client.all(Domain::Resources, &[]).await?,
            Domain::TimeEntries => match after {
                Some(c) => {
                    self.client
                        .time_entries_updated_since(day_before(c))
                        .await?
                }
                None => self.client.all(Domain::TimeEntries, &[]).await?,
            },
            other => {
                return Err(ConnectorError::Config {
                    message: format!("Redmine has no {other}"),
                });
            }
        };
        let records = raw
            .into_iter()
            .map(|r| source_record(domain, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(after_cursor(records, after, limit))
    }

    async fn fetch(
        &self,
        domain: Domain,
        id: &str,
    ) -> Result<Option<SourceRecord>, ConnectorError> {
        let raw = match domain {
            Domain::Customers => self
                .client
                .one(Domain::Projects, id)
                .await?
                // A project moved under another is no longer a customer.
                .filter(|p| p.get("parent").is_none()),
            Domain::Projects => self.project(id).await?,
            Domain::Resources | Domain::TimeEntries => self.client.one(domain, id).await?,
            other => {
                return Err(ConnectorError::Config {
                    message: format!("Redmine has no {other}"),
                });
            }
        };
        raw.map(|r| source_record(domain, r)).transpose()
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
        match domain {
            Domain::TimeEntries => self
                .client
                .time_entries_spent(from, to)
                .await?
                .into_iter()
                .map(|r| source_record(domain, r))
                .collect(),
            // Redmine has no expenses, invoices or other dated records.
            _ => Ok(Vec::new()),
        }
    }

    async fn apply_payment(
        &self,
        invoice_id: &str,
        _update: &PaymentUpdate,
    ) -> Result<(), ConnectorError> {
        Err(ConnectorError::Config {
            message: format!(
                "Redmine has no invoices, so payment status for {invoice_id} cannot be written back; \
                 set [domains.payments] direction = \"none\" in the template"
            ),
        })
    }
}
