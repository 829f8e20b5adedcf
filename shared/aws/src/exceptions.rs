//! The exception store: `pk = {tenant}#exc`, `sk = exception id`. The record is
//! kept whole as JSON; `status`, `owner`, `domain`, `source_key`, `blocked_by`
//! and `first_seen_us` are top-level attributes so queries filter on the server.
//! A listing without a tenant scans (an operator's cross-tenant view).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{ExceptionQuery, ExceptionRecord, ExceptionStatus, ExceptionStore};
use serde::{Deserialize, Serialize};

use crate::table::{Table, mapping_err, s, sdk_err, us, versioned};

const PORT: &str = "exceptions";
const KIND: &str = "exception";

#[derive(Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    rev: i64,
    kind: String,
    status: String,
    owner: String,
    domain: String,
    source_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked_by: Option<String>,
    first_seen_us: i64,
    record: String,
}

fn pk(t: &TenantId) -> String {
    format!("{t}#exc")
}

versioned!(Item);

impl Item {
    fn of(r: &ExceptionRecord, rev: i64) -> Result<Item, PortError> {
        Ok(Item {
            pk: pk(&r.tenant),
            sk: r.id.clone(),
            rev,
            kind: KIND.into(),
            status: r.status.as_str().into(),
            owner: r.owner.as_str().into(),
            domain: r.domain.as_str().into(),
            source_key: r.source_key.clone(),
            blocked_by: r.blocked_by.clone(),
            first_seen_us: us(r.first_seen),
            record: serde_json::to_string(r).map_err(|e| PortError::permanent(PORT, "raise", e))?,
        })
    }

    fn record(&self) -> Result<ExceptionRecord, PortError> {
        serde_json::from_str(&self.record).map_err(|e| PortError::permanent(PORT, "read", e))
    }
}

pub struct DynamoExceptions {
    pub(crate) table: Table,
}

impl DynamoExceptions {
    async fn read(
        &self,
        t: &TenantId,
        id: &str,
        op: &'static str,
    ) -> Result<Option<Item>, PortError> {
        self.table.get(PORT, op, &pk(t), id).await
    }

    /// Every item of the tenant matching `filter` (a FilterExpression over the partition).
    async fn query(
        &self,
        op: &'static str,
        tenant: Option<&TenantId>,
        filter: Vec<String>,
        values: HashMap<String, AttributeValue>,
    ) -> Result<Vec<ExceptionRecord>, PortError> {
        let mut filter = filter;
        let mut values = values;
        let mut names = HashMap::from([("#st".to_string(), "status".to_string())]);
        names.insert("#ow".into(), "owner".into());
        names.insert("#dm".into(), "domain".into());
        names.insert("#kd".into(), "kind".into());
        filter.push("#kd = :kind".into());
        values.insert(":kind".into(), s(KIND));
        let expr = filter.join(" AND ");
        let used: HashMap<String, String> = names
            .into_iter()
            .filter(|(k, _)| expr.contains(k.as_str()))
            .collect();
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page_items = match tenant {
                Some(t) => {
                    let mut vals = values.clone();
                    vals.insert(":pk".into(), s(pk(t)));
                    let page = self
                        .table
                        .client
                        .query()
                        .table_name(&self.table.name)
                        .key_condition_expression("pk = :pk")
                        .filter_expression(&expr)
                        .set_expression_attribute_names(Some(used.clone()))
                        .set_expression_attribute_values(Some(vals))
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(sdk_err(PORT, op))?;
                    start = page.last_evaluated_key.filter(|k| !k.is_empty());
                    page.items.unwrap_or_default()
                }
                None => {
                    let page = self
                        .table
                        .client
                        .scan()
                        .table_name(&self.table.name)
                        .filter_expression(&expr)
                        .set_expression_attribute_names(Some(used.clone()))
                        .set_expression_attribute_values(Some(values.clone()))
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(sdk_err(PORT, op))?;
                    start = page.last_evaluated_key.filter(|k| !k.is_empty());
                    page.items.unwrap_or_default()
                }
            };
            for raw in page_items {
                let item: Item = serde_dynamo::from_item(raw).map_err(mapping_err(PORT, op))?;
                out.push(item.record()?);
            }
            if start.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| (a.first_seen, &a.id).cmp(&(b.first_seen, &b.id)));
        Ok(out)
    }

    async fn unresolved_where(
        &self,
        tenant: &TenantId,
        attr: &str,
        value: &str,
        op: &'static str,
    ) -> Result<Vec<ExceptionRecord>, PortError> {
        self.query(
            op,
            Some(tenant),
            vec![format!("{attr} = :v"), "#st <> :resolved".into()],
            HashMap::from([
                (":v".to_string(), s(value)),
                (
                    ":resolved".to_string(),
                    s(ExceptionStatus::Resolved.as_str()),
                ),
            ]),
        )
        .await
    }

    /// Read, change, write conditionally on `rev`. `false` when absent.
    async fn change(
        &self,
        tenant: &TenantId,
        id: &str,
        op: &'static str,
        f: impl Fn(&mut ExceptionRecord) -> bool,
    ) -> Result<bool, PortError> {
        self.table
            .update(PORT, op, &pk(tenant), id, |current: Option<Item>| {
                let Some(item) = current else {
                    return Ok((None, false));
                };
                let mut rec = item.record()?;
                if !f(&mut rec) {
                    return Ok((None, false));
                }
                Ok((Some(Item::of(&rec, 0)?), true))
            })
            .await
    }
}

#[async_trait]
impl ExceptionStore for DynamoExceptions {
    async fn raise(&self, record: ExceptionRecord) -> Result<ExceptionRecord, PortError> {
        self.table
            .update(
                PORT,
                "raise",
                &pk(&record.tenant),
                &record.id,
                |prev: Option<Item>| {
                    let previous = prev.map(|p| p.record()).transpose()?;
                    let stored =
                        ferry_core::rules::exceptions::merge(previous.as_ref(), record.clone());
                    Ok((Some(Item::of(&stored, 0)?), stored))
                },
            )
            .await
    }

    async fn get(&self, tenant: &TenantId, id: &str) -> Result<Option<ExceptionRecord>, PortError> {
        self.read(tenant, id, "get")
            .await?
            .map(|i| i.record())
            .transpose()
    }

    async fn list(&self, q: &ExceptionQuery) -> Result<Vec<ExceptionRecord>, PortError> {
        let mut filter = Vec::new();
        let mut values = HashMap::new();
        if !q.statuses.is_empty() {
            let marks: Vec<String> = (0..q.statuses.len()).map(|i| format!(":s{i}")).collect();
            filter.push(format!("#st IN ({})", marks.join(", ")));
            for (m, st) in marks.into_iter().zip(&q.statuses) {
                values.insert(m, s(st.as_str()));
            }
        }
        if let Some(o) = q.owner {
            filter.push("#ow = :owner".into());
            values.insert(":owner".into(), s(o.as_str()));
        }
        if let Some(d) = q.domain {
            filter.push("#dm = :domain".into());
            values.insert(":domain".into(), s(d.as_str()));
        }
        if let Some(before) = q.first_seen_before {
            filter.push("first_seen_us < :before".into());
            values.insert(":before".into(), crate::table::n(us(before)));
        }
        let mut out = self
            .query("list", q.tenant.as_ref(), filter, values)
            .await?;
        if let Some(l) = q.limit {
            out.truncate(l);
        }
        Ok(out)
    }

    async fn set_status(
        &self,
        tenant: &TenantId,
        id: &str,
        status: ExceptionStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        self.change(tenant, id, "set_status", |r| {
            r.status = status;
            r.last_seen = now;
            true
        })
        .await
    }

    async fn resolve_source(
        &self,
        tenant: &TenantId,
        source_key: &str,
        now: DateTime<Utc>,
    ) -> Result<u32, PortError> {
        let mut n = 0;
        for e in self.open_for_source(tenant, source_key).await? {
            let changed = self
                .change(tenant, &e.id, "resolve_source", |r| {
                    if r.status == ExceptionStatus::Resolved {
                        return false;
                    }
                    r.status = ExceptionStatus::Resolved;
                    r.last_seen = now;
                    true
                })
                .await?;
            n += u32::from(changed);
        }
        Ok(n)
    }

    async fn open_for_source(
        &self,
        tenant: &TenantId,
        source_key: &str,
    ) -> Result<Vec<ExceptionRecord>, PortError> {
        self.unresolved_where(tenant, "source_key", source_key, "open_for_source")
            .await
    }

    async fn blocked_by(
        &self,
        tenant: &TenantId,
        blocker: &str,
    ) -> Result<Vec<ExceptionRecord>, PortError> {
        self.unresolved_where(tenant, "blocked_by", blocker, "blocked_by")
            .await
    }
}
