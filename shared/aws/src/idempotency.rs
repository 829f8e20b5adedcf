//! Idempotency records, the AWS Powertools protocol on DynamoDB:
//! `pk = {tenant}#idem#{key}`. `begin` is one conditional PutItem that wins when
//! no live record exists; when it loses, `ReturnValuesOnConditionCheckFailure`
//! hands back the record that beat it, so the caller learns "completed (here is
//! the response)", "in progress until…", or "payload differs" without a second
//! read. Only a takeover of an expired in-progress record needs a second write,
//! conditional on the attempt count it saw.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{Begin, BeginRequest, IdemRecord, IdemStatus, IdempotencyStore};
use ferry_core::rules::idempotency::{self as rules, BeginStep};
use serde::{Deserialize, Serialize};

use crate::table::{
    Cond, MAX_CONFLICTS, Table, classify, conflict, from_us, mapping_err, n, s, ttl_of, us,
};

const PORT: &str = "idempotency";
const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

#[derive(Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    status: String,
    payload_hash: String,
    expires_us: i64,
    ttl: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    in_progress_us: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<String>,
    attempts: u32,
}

impl Item {
    fn record(self, key: &str) -> IdemRecord {
        IdemRecord {
            key: key.to_string(),
            status: if self.status == COMPLETED {
                IdemStatus::Completed
            } else {
                IdemStatus::InProgress
            },
            payload_hash: self.payload_hash,
            expires_at: from_us(self.expires_us),
            in_progress_until: self.in_progress_us.map(from_us),
            response: self.response,
            attempts: self.attempts,
        }
    }
}

pub struct DynamoIdempotency {
    pub(crate) table: Table,
}

fn pk(t: &TenantId, key: &str) -> String {
    format!("{t}#idem#{key}")
}

fn key_of(t: &TenantId, key: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".into(), s(pk(t, key))), ("sk".into(), s("-"))])
}

impl DynamoIdempotency {
    /// The one conditional put: wins if absent or expired. On a lost race,
    /// returns the record that is there.
    async fn put_new(
        &self,
        req: &BeginRequest<'_>,
        item: &Item,
    ) -> Result<Option<Item>, PortError> {
        let attrs: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(item).map_err(mapping_err(PORT, "begin"))?;
        let sent = self
            .table
            .client
            .put_item()
            .table_name(&self.table.name)
            .set_item(Some(attrs))
            .condition_expression("attribute_not_exists(pk) OR expires_us <= :now")
            .expression_attribute_values(":now", n(us(req.now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => match c.item() {
                    Some(old) => serde_dynamo::from_item(old.clone())
                        .map(Some)
                        .map_err(mapping_err(PORT, "begin")),
                    None => Err(PortError::transient(
                        PORT,
                        "begin",
                        "condition failed without the old item",
                    )),
                },
                _ => Err(classify(PORT, "begin", &e)),
            },
        }
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotency {
    async fn begin(&self, req: BeginRequest<'_>) -> Result<Begin, PortError> {
        let fresh = |attempts: u32| Item {
            pk: pk(req.tenant, req.key),
            sk: "-".into(),
            status: IN_PROGRESS.into(),
            payload_hash: req.payload_hash.to_string(),
            expires_us: us(req.expires_at),
            ttl: ttl_of(req.expires_at),
            in_progress_us: Some(us(req.in_progress_until)),
            response: None,
            attempts,
        };
        for _ in 0..MAX_CONFLICTS {
            let Some(old) = self.put_new(&req, &fresh(1)).await? else {
                return Ok(Begin::Started { prior_attempts: 0 });
            };
            let seen = old.attempts;
            let prior = match rules::begin(Some(&old.record(req.key)), req.payload_hash, req.now) {
                BeginStep::Answer(a) => return Ok(a),
                BeginStep::Take { prior_attempts } => prior_attempts,
            };
            // An in-progress attempt past its expiry: take it over, counted,
            // if nobody else did since it was read.
            let cond = Cond::Expr(
                "#st = :inprog AND attempts = :a",
                vec![(":inprog", s(IN_PROGRESS)), (":a", n(i64::from(seen)))],
            );
            if self
                .table
                .put_named(PORT, "begin", &fresh(prior + 1), cond, &[("#st", "status")])
                .await?
            {
                return Ok(Begin::Started {
                    prior_attempts: prior,
                });
            }
        }
        Err(conflict(PORT, "begin"))
    }

    async fn complete(
        &self,
        tenant: &TenantId,
        key: &str,
        response: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let sent = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key_of(tenant, key)))
            .update_expression(
                "SET #st = :done, #resp = :r, expires_us = :e, #ttl = :ttl REMOVE in_progress_us",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#resp", "response")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":done", s(COMPLETED))
            .expression_attribute_values(":r", s(response))
            .expression_attribute_values(":e", n(us(expires_at)))
            .expression_attribute_values(":ttl", n(ttl_of(expires_at)))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if crate::table::is_condition_failure(&e) => Err(PortError::permanent(
                PORT,
                "complete",
                format!("no idempotency record for key {key}"),
            )),
            Err(e) => Err(classify(PORT, "complete", &e)),
        }
    }

    async fn abandon(
        &self,
        tenant: &TenantId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let sent = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(key_of(tenant, key)))
            .update_expression("SET in_progress_us = :now")
            .condition_expression("#st = :inprog")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":now", n(us(now)))
            .expression_attribute_values(":inprog", s(IN_PROGRESS))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // Absent or completed: nothing to abandon.
            Err(e) if crate::table::is_condition_failure(&e) => Ok(()),
            Err(e) => Err(classify(PORT, "abandon", &e)),
        }
    }

    async fn release(&self, tenant: &TenantId, key: &str) -> Result<(), PortError> {
        // Completed records stay: only an in-progress attempt is released.
        self.table
            .delete(
                PORT,
                "release",
                &pk(tenant, key),
                "-",
                Cond::Expr("attribute_exists(in_progress_us)", Vec::new()),
            )
            .await
            .map(|_| ())
    }

    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<IdemRecord>, PortError> {
        let item: Option<Item> = self.table.get(PORT, "get", &pk(tenant, key), "-").await?;
        Ok(item.map(|i| i.record(key)))
    }
}
