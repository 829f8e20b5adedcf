//! The append-only audit log: `pk = {tenant}#audit`. A counter item (`pk =
//! {tenant}#auditseq`) hands out sequence numbers with an atomic ADD; each entry
//! is written once under `sk = e#{seq:020}` with `attribute_not_exists(pk)`, and
//! projected into `gsi1` by document for the per-document history. The adapter
//! has no update or delete, and the stack's function roles deny UpdateItem and
//! DeleteItem on every `*#audit` partition (infra/template.yaml).
//!
//! DynamoDB items stop at 400 KB. An entry whose request and response would not
//! fit keeps their first bytes, their length and their SHA-256, so the evidence
//! still identifies exactly what was sent.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{AuditEntry, AuditLog};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::table::{Cond, Table, n, s, sdk_err};

const PORT: &str = "audit";
/// Room left for the rest of the item under DynamoDB's 400 KB limit.
const MAX_BODY: usize = 150 * 1024;

#[derive(Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    doc_key: String,
    entry: String,
    gsi1pk: String,
    gsi1sk: String,
}

pub struct DynamoAudit {
    pub(crate) table: Table,
}

fn pk(t: &TenantId) -> String {
    format!("{t}#audit")
}

/// Keeps a body whole if it fits, else its head plus length and digest.
fn fit(body: &str) -> String {
    if body.len() <= MAX_BODY {
        return body.to_string();
    }
    let mut cut = MAX_BODY;
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    format!(
        "{}… [truncated: {} bytes in all, sha256 {digest}]",
        &body[..cut],
        body.len()
    )
}

#[async_trait]
impl AuditLog for DynamoAudit {
    async fn append(&self, entry: &AuditEntry) -> Result<u64, PortError> {
        let counter = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .key("pk", s(format!("{}#auditseq", entry.tenant)))
            .key("sk", s("seq"))
            .update_expression("ADD next_seq :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(sdk_err(PORT, "append"))?;
        let seq: u64 = counter
            .attributes
            .as_ref()
            .and_then(|a| a.get("next_seq"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                PortError::transient(PORT, "append", "the sequence counter returned no value")
            })?;
        let stored = AuditEntry {
            request: fit(&entry.request),
            response: fit(&entry.response),
            ..entry.clone()
        };
        let item = Item {
            pk: pk(&entry.tenant),
            sk: format!("e#{seq:020}"),
            doc_key: entry.doc_key.clone(),
            entry: serde_json::to_string(&stored)
                .map_err(|e| PortError::permanent(PORT, "append", e))?,
            gsi1pk: format!("{}#auditdoc#{}", entry.tenant, entry.doc_key),
            gsi1sk: format!("{seq:020}"),
        };
        if !self.table.put(PORT, "append", &item, Cond::Absent).await? {
            return Err(PortError::transient(
                PORT,
                "append",
                format!("sequence number {seq} is already taken"),
            ));
        }
        Ok(seq)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        doc_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, PortError> {
        let items: Vec<Item> = match doc_key {
            Some(d) => {
                self.table
                    .query_gsi1(
                        PORT,
                        "list",
                        &format!("{tenant}#auditdoc#{d}"),
                        true,
                        Some(limit),
                    )
                    .await?
            }
            None => {
                let mut latest: Vec<Item> = self
                    .table
                    .query(PORT, "list", &pk(tenant), Some("e#"), false, Some(limit))
                    .await?;
                latest.reverse();
                latest
            }
        };
        items
            .into_iter()
            .map(|i| {
                serde_json::from_str(&i.entry).map_err(|e| PortError::permanent(PORT, "list", e))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_body_keeps_its_head_length_and_digest() {
        let big = "é".repeat(MAX_BODY);
        let kept = fit(&big);
        assert!(kept.len() < big.len());
        assert!(
            kept.contains(&format!("{} bytes in all", big.len())),
            "{}",
            &kept[kept.len() - 120..]
        );
        assert!(kept.contains(&hex::encode(Sha256::digest(big.as_bytes()))));
        assert_eq!(fit("{\"small\":1}"), "{\"small\":1}");
    }
}
