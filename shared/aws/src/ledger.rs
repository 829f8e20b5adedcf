//! The record ledger: `pk = {tenant}#ledger`, `sk = source_key`, one item per
//! source record with its version, content hash, canonical JSON and
//! disposition. Writes are conditional on `rev`.
//!
//! `settle_doc` must find every record queued for a document without a scan or
//! an eventually consistent index, so queuing a record also writes a membership
//! item under `pk = {tenant}#docq#{doc_key}` (first, so a crash in between
//! leaves only a harmless extra member). `settle_doc` reads that partition
//! strongly consistently, settles each record that is still queued for the
//! document at a revision it covers, and drops the members it settled.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::{Domain, SourceVersion, TenantId};
use ferry_core::PortError;
use ferry_core::ports::{
    Disposition, DomainActivity, LedgerCount, LedgerEntry, Observation, Observe, Owner,
    RecordLedger,
};
use ferry_core::rules::ledger as rules;
use serde::{Deserialize, Serialize};

use crate::table::{Cond, Table, versioned};

const PORT: &str = "ledger";

#[derive(Clone, Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    rev: i64,
    domain: Domain,
    version: SourceVersion,
    content_hash: String,
    disposition: Disposition,
    /// The document the record was last queued or posted in (kept across versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_doc: Option<String>,
    received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    posted_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    canonical: Option<String>,
}

impl Item {
    fn entry(self) -> LedgerEntry {
        LedgerEntry {
            source_key: self.sk,
            domain: self.domain,
            version: self.version,
            content_hash: self.content_hash,
            disposition: self.disposition,
            received_at: self.received_at,
            posted_at: self.posted_at,
            canonical: self.canonical,
        }
    }
}

versioned!(Item);

#[derive(Serialize, Deserialize)]
struct Member {
    pk: String,
    sk: String,
}

pub struct DynamoLedger {
    pub(crate) table: Table,
}

fn pk(t: &TenantId) -> String {
    format!("{t}#ledger")
}

fn doc_pk(t: &TenantId, doc: &str) -> String {
    format!("{t}#docq#{doc}")
}

impl DynamoLedger {
    async fn read(
        &self,
        t: &TenantId,
        key: &str,
        op: &'static str,
    ) -> Result<Option<Item>, PortError> {
        self.table.get(PORT, op, &pk(t), key).await
    }

    /// Read, change, write conditionally on `rev`.
    async fn update<R>(
        &self,
        t: &TenantId,
        key: &str,
        op: &'static str,
        change: impl Fn(Option<Item>) -> (Option<Item>, R),
    ) -> Result<R, PortError> {
        self.table
            .update(PORT, op, &pk(t), key, |current| Ok(change(current)))
            .await
    }

    async fn all(&self, t: &TenantId, op: &'static str) -> Result<Vec<Item>, PortError> {
        self.table.query(PORT, op, &pk(t), None, true, None).await
    }
}

fn apply(item: &mut Item, d: &Disposition) {
    if let Disposition::Queued { doc_key, .. } | Disposition::Posted { doc_key, .. } = d {
        item.last_doc = Some(doc_key.clone());
    }
    item.disposition = d.clone();
}

#[async_trait]
impl RecordLedger for DynamoLedger {
    async fn observe(&self, obs: Observation<'_>) -> Result<Observe, PortError> {
        self.update(obs.tenant, obs.source_key, "observe", |current| {
            let held = current.as_ref().map(|e| rules::Held {
                version: &e.version,
                content_hash: &e.content_hash,
                disposition: &e.disposition,
                last_doc: e.last_doc.as_deref(),
            });
            let decided = rules::observe(held, obs.version, obs.content_hash);
            let next = decided.replace.then(|| Item {
                pk: pk(obs.tenant),
                sk: obs.source_key.to_string(),
                rev: 0,
                domain: obs.domain,
                version: obs.version.clone(),
                content_hash: obs.content_hash.to_string(),
                disposition: Disposition::Pending,
                last_doc: current.as_ref().and_then(|e| e.last_doc.clone()),
                received_at: obs.received_at,
                posted_at: None,
                canonical: obs.canonical.map(str::to_string),
            });
            (next, decided.answer)
        })
        .await
    }

    async fn settle(
        &self,
        tenant: &TenantId,
        source_key: &str,
        version: &SourceVersion,
        d: &Disposition,
    ) -> Result<bool, PortError> {
        if let Disposition::Queued { doc_key, .. } = d {
            let member = Member {
                pk: doc_pk(tenant, doc_key),
                sk: source_key.to_string(),
            };
            self.table
                .put(PORT, "settle", &member, Cond::Always)
                .await?;
        }
        self.update(tenant, source_key, "settle", |current| match current {
            Some(mut e) if e.version == *version => {
                apply(&mut e, d);
                (Some(e), true)
            }
            _ => (None, false),
        })
        .await
    }

    async fn note_doc(
        &self,
        tenant: &TenantId,
        source_key: &str,
        version: &SourceVersion,
        doc_key: &str,
    ) -> Result<bool, PortError> {
        self.update(tenant, source_key, "note_doc", |current| match current {
            Some(mut e) if e.version == *version => {
                e.last_doc = Some(doc_key.to_string());
                (Some(e), true)
            }
            _ => (None, false),
        })
        .await
    }

    async fn settle_doc(
        &self,
        tenant: &TenantId,
        doc_key: &str,
        revision: i64,
        d: &Disposition,
        at: DateTime<Utc>,
    ) -> Result<u64, PortError> {
        let members: Vec<Member> = self
            .table
            .query(
                PORT,
                "settle_doc",
                &doc_pk(tenant, doc_key),
                None,
                true,
                None,
            )
            .await?;
        let mut settled = 0;
        for m in members {
            // Some(true): settled now; Some(false): still queued at a later revision; None: not ours.
            let outcome = self
                .update(tenant, &m.sk, "settle_doc", |current| match current {
                    Some(mut e) => match &e.disposition {
                        Disposition::Queued {
                            doc_key: k,
                            revision: r,
                        } if k == doc_key && *r <= revision => {
                            apply(&mut e, d);
                            if let Disposition::Posted { .. } = d {
                                e.posted_at = Some(at);
                            }
                            (Some(e), Some(true))
                        }
                        Disposition::Queued { doc_key: k, .. } if k == doc_key => {
                            (None, Some(false))
                        }
                        _ => (None, None),
                    },
                    None => (None, None),
                })
                .await?;
            if outcome == Some(true) {
                settled += 1;
            }
            if outcome != Some(false) {
                self.table
                    .delete(PORT, "settle_doc", &m.pk, &m.sk, Cond::Always)
                    .await?;
            }
        }
        Ok(settled)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        source_key: &str,
    ) -> Result<Option<LedgerEntry>, PortError> {
        Ok(self.read(tenant, source_key, "get").await?.map(Item::entry))
    }

    async fn counts(&self, tenant: &TenantId) -> Result<Vec<LedgerCount>, PortError> {
        let mut groups: BTreeMap<(&'static str, &'static str, String, Option<Owner>), u64> =
            BTreeMap::new();
        let items = self.all(tenant, "counts").await?;
        for i in &items {
            let (reason, owner) = match &i.disposition {
                Disposition::Skipped { reason } => (reason.clone(), None),
                Disposition::Exception { reason, owner, .. } => (reason.to_string(), Some(*owner)),
                _ => (String::new(), None),
            };
            *groups
                .entry((i.domain.as_str(), i.disposition.state(), reason, owner))
                .or_default() += 1;
        }
        Ok(groups
            .into_iter()
            .map(|((domain, state, reason, owner), count)| LedgerCount {
                domain: Domain::parse(domain).unwrap_or(Domain::Customers),
                state: state.to_string(),
                reason,
                owner,
                count,
            })
            .collect())
    }

    async fn activity(&self, tenant: &TenantId) -> Result<Vec<DomainActivity>, PortError> {
        let mut by_domain: BTreeMap<&'static str, DomainActivity> = BTreeMap::new();
        for i in self.all(tenant, "activity").await? {
            let a = by_domain
                .entry(i.domain.as_str())
                .or_insert_with(|| DomainActivity {
                    domain: i.domain,
                    last_posted_at: None,
                    oldest_unsettled_at: None,
                    unsettled: 0,
                });
            a.last_posted_at = a.last_posted_at.max(i.posted_at);
            if matches!(
                i.disposition,
                Disposition::Pending | Disposition::Queued { .. }
            ) {
                a.unsettled += 1;
                a.oldest_unsettled_at = Some(
                    a.oldest_unsettled_at
                        .map_or(i.received_at, |o| o.min(i.received_at)),
                );
            }
        }
        Ok(by_domain.into_values().collect())
    }

    async fn latencies(
        &self,
        tenant: &TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<Duration>, PortError> {
        Ok(self
            .all(tenant, "latencies")
            .await?
            .into_iter()
            .filter(|i| i.received_at >= since)
            .filter_map(|i| {
                i.posted_at
                    .map(|p| (p - i.received_at).to_std().unwrap_or_default())
            })
            .collect())
    }

    async fn list(&self, tenant: &TenantId, domain: Domain) -> Result<Vec<LedgerEntry>, PortError> {
        Ok(self
            .all(tenant, "list")
            .await?
            .into_iter()
            .filter(|i| i.domain == domain)
            .map(Item::entry)
            .collect())
    }
}
