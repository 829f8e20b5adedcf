//! Summary staging: `pk = {tenant}#stage#{group}`; the group item (`sk =
//! #group`) holds the revision, header and flush schedule, and each member line
//! is its own item (`sk = m#{member}`). A change writes the member and bumps
//! the revision in one TransactWriteItems, conditional on the revision it read,
//! so a document rendered at revision r contains every change up to r.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{GroupSnapshot, StageRequest, Staging};
use serde::Deserialize;

use crate::table::{
    MAX_CONFLICTS, Table, classify, conflict, from_us, is_condition_failure, n, s, us,
};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;

const PORT: &str = "staging";
const GROUP: &str = "#group";

#[derive(Deserialize)]
struct Row {
    sk: String,
    #[serde(default)]
    revision: Option<i64>,
    #[serde(default)]
    last_change_us: Option<i64>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    line: Option<String>,
}

pub struct DynamoStaging {
    pub(crate) table: Table,
}

fn pk(t: &TenantId, group: &str) -> String {
    format!("{t}#stage#{group}")
}

fn member_sk(member: &str) -> String {
    format!("m#{member}")
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))])
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>, op: &'static str) -> Result<T, PortError> {
    r.map_err(|e| PortError::permanent(PORT, op, e))
}

impl DynamoStaging {
    async fn rows(
        &self,
        t: &TenantId,
        group: &str,
        op: &'static str,
    ) -> Result<Vec<Row>, PortError> {
        self.table
            .query(PORT, op, &pk(t, group), None, true, None)
            .await
    }
}

#[async_trait]
impl Staging for DynamoStaging {
    async fn stage(&self, req: StageRequest<'_>) -> Result<i64, PortError> {
        let gpk = pk(req.tenant, req.group);
        let msk = member_sk(req.member);
        for _ in 0..MAX_CONFLICTS {
            let group: Option<Row> = self.table.get(PORT, "stage", &gpk, GROUP).await?;
            let current: Option<Row> = self.table.get(PORT, "stage", &gpk, &msk).await?;
            let revision = group.as_ref().and_then(|g| g.revision).unwrap_or(0);
            let stored_header = group.as_ref().and_then(|g| g.header.clone());
            let old_line = current.and_then(|m| m.line);
            let member_op = match (req.line, &old_line) {
                (Some(new), Some(old)) if new == old => None,
                (Some(new), _) => Some(
                    TransactWriteItem::builder().put(build(
                        Put::builder()
                            .table_name(&self.table.name)
                            .item("pk", s(&gpk))
                            .item("sk", s(&msk))
                            .item("line", s(new))
                            .build(),
                        "stage",
                    )?),
                ),
                (None, Some(_)) => Some(
                    TransactWriteItem::builder().delete(build(
                        Delete::builder()
                            .table_name(&self.table.name)
                            .set_key(Some(key(&gpk, &msk)))
                            .build(),
                        "stage",
                    )?),
                ),
                (None, None) => None,
            };
            let new_header = req.header.filter(|h| stored_header.as_deref() != Some(*h));
            if member_op.is_none() && new_header.is_none() {
                return Ok(revision);
            }
            let next = revision + 1;
            let mut set = String::from("SET #rv = :next, last_change_us = :now");
            let mut update = Update::builder()
                .table_name(&self.table.name)
                .set_key(Some(key(&gpk, GROUP)))
                .expression_attribute_names("#rv", "revision")
                .expression_attribute_values(":next", n(next))
                .expression_attribute_values(":now", n(us(req.now)));
            if let Some(h) = new_header {
                set.push_str(", #hd = :h");
                update = update
                    .expression_attribute_names("#hd", "header")
                    .expression_attribute_values(":h", s(h));
            }
            update = if revision == 0 {
                update
                    .condition_expression("attribute_not_exists(#rv) OR #rv = :zero")
                    .expression_attribute_values(":zero", n(0))
            } else {
                update
                    .condition_expression("#rv = :old")
                    .expression_attribute_values(":old", n(revision))
            };
            let update = build(update.update_expression(set).build(), "stage")?;
            let mut items = vec![TransactWriteItem::builder().update(update).build()];
            items.extend(member_op.map(|b| b.build()));
            let sent = self
                .table
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(next),
                Err(e)
                    if e.code() == Some("TransactionCanceledException")
                        || is_condition_failure(&e) =>
                {
                    continue;
                }
                Err(e) => return Err(classify(PORT, "stage", &e)),
            }
        }
        Err(conflict(PORT, "stage"))
    }

    async fn snapshot(&self, tenant: &TenantId, group: &str) -> Result<GroupSnapshot, PortError> {
        let mut snap = GroupSnapshot {
            revision: 0,
            last_change_at: None,
            header: None,
            members: Vec::new(),
        };
        // The group item sorts first ('#' < 'm'), so the revision is read no later
        // than the members: the members hold at least every change up to it.
        for row in self.rows(tenant, group, "snapshot").await? {
            if row.sk == GROUP {
                snap.revision = row.revision.unwrap_or(0);
                snap.last_change_at = row.last_change_us.map(from_us);
                snap.header = row.header;
            } else if let (Some(member), Some(line)) = (row.sk.strip_prefix("m#"), row.line) {
                snap.members.push((member.to_string(), line));
            }
        }
        Ok(snap)
    }

    async fn schedule(
        &self,
        tenant: &TenantId,
        group: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let sent = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(&pk(tenant, group), GROUP)))
            .update_expression("SET sched_until_us = :until")
            .condition_expression("attribute_not_exists(sched_until_us) OR sched_until_us <= :now")
            .expression_attribute_values(":until", n(us(until)))
            .expression_attribute_values(":now", n(us(now)))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify(PORT, "schedule", &e)),
        }
    }

    async fn unschedule(&self, tenant: &TenantId, group: &str) -> Result<(), PortError> {
        let sent = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key(&pk(tenant, group), GROUP)))
            .update_expression("REMOVE sched_until_us")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(classify(PORT, "unschedule", &e)),
        }
    }
}
