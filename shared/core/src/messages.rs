//! Messages on the pipeline's queues. The JSON form is the contract between
//! functions (and between versions of them): add fields with defaults only.

use chrono::{DateTime, Utc};
use ferry_canon::{Domain, SourceVersion, SystemId, TenantId};
use serde::{Deserialize, Serialize};

use crate::hash::hash_parts;
use crate::keys::RecordKey;
use crate::ports::webhook::ChangeAction;
use crate::posting::PostingDoc;

/// How a change reached Ferry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum Origin {
    Webhook { event_id: String },
    Poll,
    Replay { exception_id: String },
}

/// "This source record changed": from intake to transform. Thin when `record`
/// is absent (transform then fetches the current state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeNotice {
    pub tenant: TenantId,
    pub system: SystemId,
    pub domain: Domain,
    pub id: String,
    pub action: ChangeAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<SourceVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_json::Value>,
    pub origin: Origin,
    pub received_at: DateTime<Utc>,
    pub correlation_id: String,
}

impl ChangeNotice {
    /// The record's key in the ledger and exception store.
    pub fn source_key(&self) -> RecordKey {
        RecordKey::of(self.domain, &self.system, &self.id)
    }
}

/// "Write this document at this version": from transform to post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostCommand {
    pub tenant: TenantId,
    pub domain: Domain,
    pub doc: PostingDoc,
    /// Monotonic per document: the source version in microseconds.
    pub version: i64,
    /// Hash of `doc`: the idempotency payload hash.
    pub content_hash: String,
    /// The source records the document was built from.
    pub source_keys: Vec<RecordKey>,
    /// Hash of the canonical source content.
    pub source_hash: String,
    pub template_version: String,
    pub created_at: DateTime<Utc>,
    /// When the oldest change folded into this document was received (latency).
    pub first_received_at: DateTime<Utc>,
    pub correlation_id: String,
}

impl PostCommand {
    /// The idempotency key: one per document, version and template version.
    /// Same key with a different payload is refused by the idempotency store.
    pub fn idempotency_key(&self) -> String {
        let v = self.version.to_string();
        let h = hash_parts(&[
            self.tenant.as_str(),
            &self.doc.key,
            &v,
            &self.template_version,
        ]);
        format!("post-{}", &h[..40])
    }
}

/// "Post this summary group's current state": scheduled by transform at most
/// once per coalescing window per group; post renders the group from staging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushGroup {
    pub tenant: TenantId,
    /// The domain whose rule renders the group.
    pub domain: Domain,
    pub group: String,
    pub created_at: DateTime<Utc>,
    pub correlation_id: String,
}

/// One record to re-read from its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResyncItem {
    pub domain: Domain,
    pub system: SystemId,
    pub id: String,
}

impl ResyncItem {
    /// The record `key` names.
    pub fn of(key: &RecordKey) -> ResyncItem {
        ResyncItem {
            domain: key.domain(),
            system: key.system(),
            id: key.id().to_string(),
        }
    }
}

/// "Re-read these records and map them again": replay of a document the ERP
/// refused, so a fixed template or fixed source data is picked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resync {
    pub tenant: TenantId,
    pub items: Vec<ResyncItem>,
    pub origin: Origin,
    pub correlation_id: String,
}

/// Any message on a pipeline queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Envelope {
    Change(ChangeNotice),
    Resync(Resync),
    Post(Box<PostCommand>),
    Flush(FlushGroup),
}

impl Envelope {
    pub fn tenant(&self) -> &TenantId {
        match self {
            Envelope::Change(c) => &c.tenant,
            Envelope::Resync(r) => &r.tenant,
            Envelope::Post(p) => &p.tenant,
            Envelope::Flush(f) => &f.tenant,
        }
    }

    pub fn correlation_id(&self) -> &str {
        match self {
            Envelope::Change(c) => &c.correlation_id,
            Envelope::Resync(r) => &r.correlation_id,
            Envelope::Post(p) => &p.correlation_id,
            Envelope::Flush(f) => &f.correlation_id,
        }
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("envelope serialises")
    }

    pub fn from_body(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }
}
