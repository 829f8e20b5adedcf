//! The id cross-reference map: `pk = {tenant}#idmap`, `sk = doc_key`, so a
//! prefix listing is one Query. The ERP id is projected into the sparse `gsi1`
//! index (`{tenant}#erp#{erp_id}`) for the reverse lookup. Claims and commits
//! are conditional on the item's `rev`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{Claim, ClaimRequest, CommitRequest, IdMap, IdMapEntry};
use serde::{Deserialize, Serialize};

use crate::table::{Table, versioned};

const PORT: &str = "idmap";

#[derive(Clone, Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    rev: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    erp_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    erp_number: Option<String>,
    version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease_until: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
}

impl Item {
    fn entry(self) -> IdMapEntry {
        IdMapEntry {
            doc_key: self.sk,
            erp_id: self.erp_id,
            erp_number: self.erp_number,
            version: self.version,
            content_hash: self.content_hash,
            lease_until: self.lease_until,
            updated_at: self.updated_at,
        }
    }
}

pub struct DynamoIdMap {
    pub(crate) table: Table,
}

fn pk(t: &TenantId) -> String {
    format!("{t}#idmap")
}

impl DynamoIdMap {
    async fn read(
        &self,
        t: &TenantId,
        doc: &str,
        op: &'static str,
    ) -> Result<Option<Item>, PortError> {
        self.table.get(PORT, op, &pk(t), doc).await
    }

    /// Read, change, write conditionally on `rev`.
    async fn update<R>(
        &self,
        t: &TenantId,
        doc: &str,
        op: &'static str,
        change: impl Fn(Option<Item>) -> (Option<Item>, R),
    ) -> Result<R, PortError> {
        self.table
            .update(PORT, op, &pk(t), doc, |current| Ok(change(current)))
            .await
    }
}

versioned!(Item);

fn blank(t: &TenantId, doc: &str, now: DateTime<Utc>) -> Item {
    Item {
        pk: pk(t),
        sk: doc.to_string(),
        rev: 0,
        erp_id: None,
        erp_number: None,
        version: 0,
        content_hash: None,
        lease_until: None,
        updated_at: now,
        gsi1pk: None,
        gsi1sk: None,
    }
}

#[async_trait]
impl IdMap for DynamoIdMap {
    async fn get(&self, tenant: &TenantId, doc_key: &str) -> Result<Option<IdMapEntry>, PortError> {
        Ok(self.read(tenant, doc_key, "get").await?.map(Item::entry))
    }

    async fn claim(&self, req: ClaimRequest<'_>) -> Result<Claim, PortError> {
        self.update(req.tenant, req.doc_key, "claim", |current| {
            if let Some(e) = &current {
                if let Some(until) = e.lease_until
                    && until > req.now
                {
                    return (None, Claim::Busy { until });
                }
                let same_content = e.content_hash.as_deref() == Some(req.content_hash);
                if e.erp_id.is_some() && (req.version < e.version || same_content) {
                    return (
                        None,
                        Claim::Stale {
                            current_version: e.version,
                            content_hash: e.content_hash.clone(),
                        },
                    );
                }
            }
            let before = current.clone().map(Item::entry);
            let mut next = current.unwrap_or_else(|| blank(req.tenant, req.doc_key, req.now));
            next.lease_until = Some(req.lease_until);
            (Some(next), Claim::Granted { entry: before })
        })
        .await
    }

    async fn commit(&self, req: CommitRequest<'_>) -> Result<(), PortError> {
        self.update(req.tenant, req.doc_key, "commit", |current| {
            let mut next = current.unwrap_or_else(|| blank(req.tenant, req.doc_key, req.now));
            next.erp_id = req.erp_id.map(String::from);
            if let Some(num) = req.erp_number {
                next.erp_number = Some(num.to_string());
            }
            if req.version >= next.version {
                next.content_hash = Some(req.content_hash.to_string());
            }
            next.version = next.version.max(req.version);
            next.lease_until = None;
            next.updated_at = req.now;
            next.gsi1pk = req.erp_id.map(|id| format!("{}#erp#{id}", req.tenant));
            next.gsi1sk = req.erp_id.map(|_| req.doc_key.to_string());
            (Some(next), ())
        })
        .await
    }

    async fn release(&self, tenant: &TenantId, doc_key: &str) -> Result<(), PortError> {
        self.update(tenant, doc_key, "release", |current| match current {
            Some(mut e) if e.lease_until.is_some() => {
                e.lease_until = None;
                (Some(e), ())
            }
            _ => (None, ()),
        })
        .await
    }

    async fn hold(
        &self,
        tenant: &TenantId,
        doc_key: &str,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.update(tenant, doc_key, "hold", |current| match current {
            Some(mut e) => {
                e.lease_until = Some(until);
                (Some(e), ())
            }
            None => (None, ()),
        })
        .await
    }

    async fn find_by_erp_id(
        &self,
        tenant: &TenantId,
        erp_id: &str,
    ) -> Result<Option<IdMapEntry>, PortError> {
        let hits: Vec<Item> = self
            .table
            .query_gsi1(
                PORT,
                "find_by_erp_id",
                &format!("{tenant}#erp#{erp_id}"),
                true,
                Some(1),
            )
            .await?;
        // The index is eventually consistent: confirm against the item itself.
        match hits.into_iter().next() {
            Some(hit) => Ok(self
                .read(tenant, &hit.sk, "find_by_erp_id")
                .await?
                .filter(|i| i.erp_id.as_deref() == Some(erp_id))
                .map(Item::entry)),
            None => Ok(None),
        }
    }

    async fn list(&self, tenant: &TenantId, prefix: &str) -> Result<Vec<IdMapEntry>, PortError> {
        let items: Vec<Item> = self
            .table
            .query(PORT, "list", &pk(tenant), Some(prefix), true, None)
            .await?;
        Ok(items.into_iter().map(Item::entry).collect())
    }
}
