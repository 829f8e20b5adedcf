//! NetSuite as the ERP target: customers, invoices and credit memos written by
//! asynchronous batch upsert on Ferry's external id (`X-NetSuite-Idempotency-Key`
//! per batch, so a repeated batch is the same job), read back with SuiteQL;
//! OAuth 2.0 client credentials (a JWT assertion); the account's concurrency
//! limit kept across processes (429 pauses the account); subsidiaries, and
//! departments, classes and locations as line fields.
//! Reference: NetSuite help, "REST Web Services" (`../shared/docs/VENDORS.md` §1).
//!
//! Size: the connector's two port impls and its batch protocol (about 400
//! lines), then its tests.

pub mod auth;
pub mod client;
pub mod config;
pub mod entry;
pub mod mapper;
pub mod queries;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ferry_canon::SystemId;
use ferry_core::ConnectorError;
use ferry_core::ports::{
    CallGate, ErpCapabilities, ErpChange, ErpDocument, ErpPayment, ErpReader, ErpRef,
    ErpTimesheetLine, ErpWriter, ItemResult, OutboundItem, RateLimits, TaxRounding, TaxRules,
};
use ferry_core::posting::{DocKind, PostingDoc};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use auth::ClientCredentials;
pub use client::Client;
pub use config::NetSuiteConfig;

/// The system id NetSuite documents carry.
pub fn system() -> SystemId {
    SystemId::parse("netsuite").expect("valid slug")
}

/// One account's NetSuite connection.
pub struct NetSuite {
    client: Client,
}

/// An RFC 4122 UUID (version 8, name-based) for Ferry's idempotency key:
/// NetSuite wants a UUID, and the same batch must carry the same one.
pub fn idempotency_uuid(key: &str) -> String {
    let h = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl NetSuite {
    pub fn new(cfg: NetSuiteConfig, auth: Arc<ClientCredentials>, gate: Arc<dyn CallGate>) -> Self {
        NetSuite {
            client: Client::new(cfg, auth, gate),
        }
    }

    pub fn capabilities_for(cfg: &NetSuiteConfig) -> ErpCapabilities {
        ErpCapabilities {
            kinds: &[DocKind::Contact, DocKind::Invoice, DocKind::CreditNote],
            // Ferry's reference is the external id; it also goes in otherRefNum.
            reference_len: 45,
            max_batch: cfg.batch_size.clamp(1, config::MAX_BATCH),
            unit_price_decimals: 4,
        }
    }

    /// NetSuite limits concurrency, not calls per minute: the budget's
    /// windows are set so high they never bind, and `concurrent` is the account's.
    pub fn limits_for(cfg: &NetSuiteConfig) -> RateLimits {
        RateLimits {
            per_minute: 100_000,
            per_day: 100_000_000,
            concurrent: cfg.concurrency.max(1),
        }
    }

    pub fn account_key_for(cfg: &NetSuiteConfig) -> String {
        format!("netsuite:{}", cfg.account_id)
    }

    /// Waits for a batch job, polling with growing pauses up to `job_wait_seconds`.
    async fn wait(&self, job: &client::Job) -> Result<(), ConnectorError> {
        let budget = Duration::from_secs(self.client.cfg.job_wait_seconds);
        let mut waited = Duration::ZERO;
        let mut pause = Duration::from_millis(100);
        loop {
            if self.client.job(&job.url).await?.completed {
                return Ok(());
            }
            if waited >= budget {
                return Err(ConnectorError::Unanswered {
                    message: format!(
                        "NetSuite job {} was still running after {} s; the next attempt finds its documents by external id",
                        job.url,
                        budget.as_secs()
                    ),
                });
            }
            tokio::time::sleep(pause).await;
            waited += pause;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Removes a document (a summary emptied, a source deleted). NetSuite
    /// deletes an unpaid transaction outright; one already gone counts as removed.
    async fn remove(&self, ty: &str, item: &OutboundItem) -> Result<ItemResult, ConnectorError> {
        let id = match &item.erp_id {
            Some(id) => id.clone(),
            None => format!("eid:{}", item.doc.reference),
        };
        Ok(match self.client.delete(ty, &id).await? {
            Ok(()) => ItemResult::Ok {
                erp_id: item.erp_id.clone().unwrap_or(id),
                erp_number: None,
                response: Value::Null,
            },
            Err(message) => ItemResult::Rejected {
                messages: vec![message],
                response: Value::Null,
            },
        })
    }

    /// A completed batch's outcome per item: the documents found by external
    /// id are written; a task NetSuite reports failed is refused in its words.
    async fn outcomes(
        &self,
        kind: DocKind,
        job: &client::Job,
        items: &[&OutboundItem],
    ) -> Result<Vec<ItemResult>, ConnectorError> {
        let failed = self.client.failed_tasks(&job.url).await?;
        let refs: Vec<&str> = items.iter().map(|i| i.doc.reference.as_str()).collect();
        let found = self
            .client
            .suiteql(&queries::by_external_id(kind, &refs))
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for (n, item) in items.iter().enumerate() {
            if failed.contains(&(n + 1)) {
                let result = self.client.task_result(&job.url, n + 1).await?;
                let message = client::error_text(&result)
                    .unwrap_or_else(|| "NetSuite failed the record without a message".into());
                out.push(ItemResult::Rejected {
                    messages: vec![message],
                    response: result,
                });
                continue;
            }
            let row = found
                .iter()
                .find(|r| r.get("externalid").and_then(Value::as_str) == Some(&item.doc.reference));
            out.push(match row.and_then(|r| queries::text(r, "id")) {
                Some(erp_id) => ItemResult::Ok {
                    erp_id,
                    erp_number: row.and_then(|r| queries::text(r, "number")),
                    response: row.cloned().unwrap_or(Value::Null),
                },
                None => ItemResult::Unconfirmed {
                    message: format!(
                        "NetSuite's job finished but no {} has external id {}",
                        kind.as_str(),
                        item.doc.reference
                    ),
                    response: Value::Null,
                },
            });
        }
        Ok(out)
    }
}

fn not_written(kind: DocKind) -> ConnectorError {
    ConnectorError::Config {
        message: format!("Ferry writes no {} to NetSuite", kind.as_str()),
    }
}

#[async_trait]
impl ErpWriter for NetSuite {
    fn system(&self) -> SystemId {
        system()
    }

    fn account_key(&self) -> String {
        Self::account_key_for(&self.client.cfg)
    }

    fn limits(&self) -> RateLimits {
        Self::limits_for(&self.client.cfg)
    }

    fn capabilities(&self) -> ErpCapabilities {
        Self::capabilities_for(&self.client.cfg)
    }

    fn render(&self, item: &OutboundItem) -> Result<Value, ConnectorError> {
        mapper::render(&self.client.cfg, item)
    }

    /// Removals one by one (`DELETE`); everything else in one asynchronous
    /// batch upsert under the attempt's idempotency key, waited for, then read
    /// back by external id.
    async fn upsert(
        &self,
        kind: DocKind,
        items: &[OutboundItem],
        idempotency_key: &str,
    ) -> Result<Vec<ItemResult>, ConnectorError> {
        let ty = mapper::record_type(kind).ok_or_else(|| not_written(kind))?;
        let (removals, writes): (Vec<(usize, &OutboundItem)>, Vec<(usize, &OutboundItem)>) = items
            .iter()
            .enumerate()
            .partition(|(_, i)| i.doc.is_removal());
        let mut results: Vec<Option<ItemResult>> = vec![None; items.len()];
        if !writes.is_empty() {
            let bodies = writes
                .iter()
                .map(|(_, i)| mapper::render(&self.client.cfg, i))
                .collect::<Result<Vec<_>, _>>()?;
            let job = self
                .client
                .submit_upsert(ty, bodies, &idempotency_uuid(idempotency_key))
                .await?;
            self.wait(&job).await?;
            let sent: Vec<&OutboundItem> = writes.iter().map(|(_, i)| *i).collect();
            for ((n, _), r) in writes.iter().zip(self.outcomes(kind, &job, &sent).await?) {
                results[*n] = Some(r);
            }
        }
        for (n, item) in removals {
            results[n] = Some(self.remove(ty, item).await?);
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every item answered"))
            .collect())
    }

    /// `GET /record/v1/{type}/eid:{reference}`.
    async fn find_by_reference(&self, doc: &PostingDoc) -> Result<Option<ErpRef>, ConnectorError> {
        let Some(ty) = mapper::record_type(doc.kind) else {
            return Ok(None);
        };
        let found = self
            .client
            .record(ty, &format!("eid:{}", doc.reference))
            .await?;
        Ok(found.and_then(|r| {
            Some(ErpRef {
                erp_id: queries::text(&r, "id")?,
                number: queries::text(&r, "tranId").or_else(|| queries::text(&r, "entityId")),
            })
        }))
    }
}

#[async_trait]
impl ErpReader for NetSuite {
    async fn list_documents(
        &self,
        kind: DocKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ErpDocument>, ConnectorError> {
        let Some(which) = queries::Which::dated(kind, from, to) else {
            return Ok(Vec::new());
        };
        self.documents(kind, &which).await
    }

    async fn fetch_document(
        &self,
        kind: DocKind,
        erp_id: &str,
    ) -> Result<Option<ErpDocument>, ConnectorError> {
        if erp_id.parse::<u64>().is_err() {
            return Err(ConnectorError::protocol(format!(
                "{erp_id:?} is not a NetSuite id"
            )));
        }
        let Some(which) = queries::Which::one(kind, erp_id) else {
            return Ok(None);
        };
        Ok(self.documents(kind, &which).await?.into_iter().next())
    }

    async fn changed_invoices(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ErpChange>, ConnectorError> {
        let mut out = Vec::new();
        for r in self
            .client
            .suiteql(&queries::changed_invoices(since))
            .await?
        {
            let (Some(id), Some(at)) = (
                queries::text(&r, "id"),
                queries::text(&r, "lastmodifieddate").and_then(|s| queries::instant(&s)),
            ) else {
                return Err(ConnectorError::protocol(format!(
                    "NetSuite changed invoice row without id or lastmodifieddate: {r}"
                )));
            };
            out.push(ErpChange {
                erp_id: id,
                updated_at: at,
            });
        }
        Ok(ErpChange::oldest_first(out))
    }

    async fn list_payments(
        &self,
        from: NaiveDate,
        to: Option<NaiveDate>,
    ) -> Result<Vec<ErpPayment>, ConnectorError> {
        self.client
            .suiteql(&queries::payments(from, to))
            .await?
            .iter()
            .map(|r| mapper::read_payment(&self.client.cfg, r))
            .collect()
    }

    /// The end of the latest closed accounting period.
    async fn closed_through(&self) -> Result<Option<NaiveDate>, ConnectorError> {
        let rows = self.client.suiteql(queries::CLOSED_THROUGH).await?;
        Ok(rows
            .first()
            .and_then(|r| queries::text(r, "closed_through"))
            .and_then(|d| mapper::date(&d)))
    }

    /// Sales tax codes and rates (by external id, as the template names them);
    /// NetSuite computes tax per line.
    async fn tax_rules(&self) -> Result<Option<TaxRules>, ConnectorError> {
        let mut rates = std::collections::BTreeMap::new();
        for r in self.client.suiteql(queries::TAX_CODES).await? {
            let (Some(code), Some(rate)) = (
                queries::text(&r, "externalid"),
                queries::text(&r, "rate").and_then(|s| s.trim_end_matches('%').parse().ok()),
            ) else {
                continue;
            };
            rates.insert(code, rate);
        }
        Ok(Some(TaxRules {
            rates,
            rounding: TaxRounding::PerLine,
        }))
    }

    async fn list_timesheets(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
    ) -> Result<Vec<ErpTimesheetLine>, ConnectorError> {
        // Ferry writes no time to NetSuite.
        Ok(Vec::new())
    }
}

impl NetSuite {
    /// Transactions and their lines, joined.
    async fn documents(
        &self,
        kind: DocKind,
        which: &queries::Which,
    ) -> Result<Vec<ErpDocument>, ConnectorError> {
        let heads = self.client.suiteql(&queries::heads(which)).await?;
        if heads.is_empty() {
            return Ok(Vec::new());
        }
        let lines = self.client.suiteql(&queries::lines(which)).await?;
        let by = mapper::lines_by_transaction(&lines);
        heads
            .iter()
            .map(|h| {
                let id = queries::text(h, "id").unwrap_or_default();
                let ls = by.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                mapper::read_document(kind, &self.client.cfg, h, ls)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idempotency_key_is_one_rfc_4122_uuid_per_attempt_key() {
        let a = idempotency_uuid("post/tenant/invoice/abc");
        assert_eq!(a, idempotency_uuid("post/tenant/invoice/abc"), "stable");
        assert_ne!(a, idempotency_uuid("post/tenant/invoice/abd"));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'), "version 8 (name-based): {a}");
        assert!(
            matches!(parts[3].chars().next(), Some('8' | '9' | 'a' | 'b')),
            "RFC 4122 variant: {a}"
        );
    }

    #[test]
    fn a_jwt_assertion_verifies_with_the_public_key_and_fails_when_altered() {
        use ring::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING};
        use ring::signature::{EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let public =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap()
                .public_key()
                .as_ref()
                .to_vec();
        let jwt = auth::sign_jwt(
            pkcs8.as_ref(),
            &serde_json::json!({"alg": "ES256", "kid": "k"}),
            &serde_json::json!({"iss": "c"}),
        )
        .expect("signed");
        let (input, sig) = jwt.rsplit_once('.').expect("three parts");
        use base64::Engine as _;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        let key = ring::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public);
        assert!(key.verify(input.as_bytes(), &sig).is_ok());
        assert!(key.verify(format!("{input}x").as_bytes(), &sig).is_err());
        assert!(auth::sign_jwt(b"not a key", &Value::Null, &Value::Null).is_err());
        assert!(
            auth::pem_der("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----").is_err()
        );
    }

    fn cfg() -> NetSuiteConfig {
        toml::from_str(
            "account_id = \"1\"\nclient_id = \"c\"\ncertificate_id = \"k\"\nsubsidiary = \"1\"",
        )
        .expect("config")
    }

    #[test]
    fn an_invoices_credit_lines_read_as_the_document_shows_them_and_states_are_ferrys() {
        let row = serde_json::json!({ "id": "7", "trandate": "10/31/2026", "currency": "1",
            "status": "A", "approvalstatus": "2", "foreigntotal": 108.88, "taxtotal": "8.88",
            "foreignamountpaid": 0, "foreignamountunpaid": 108.88 });
        let line = serde_json::json!({ "transaction": "7", "item": "CONS", "quantity": -2, "foreignamount": "-100" });
        let d = mapper::read_document(DocKind::Invoice, &cfg(), &row, &[&line]).expect("read");
        assert_eq!(d.lines[0].quantity, rust_decimal::Decimal::from(2));
        assert_eq!(d.lines[0].line_amount, rust_decimal::Decimal::from(100));
        assert_eq!(d.subtotal, rust_decimal::Decimal::from(100));
        assert_eq!(d.state, ferry_core::ports::ErpState::Posted);
        assert_eq!(d.date, NaiveDate::from_ymd_opt(2026, 10, 31).unwrap());
        let credit = mapper::read_document(
            DocKind::CreditNote,
            &cfg(),
            &row,
            &[&serde_json::json!({
            "transaction": "7", "item": "CONS", "quantity": 2, "foreignamount": 100 })],
        )
        .expect("read");
        assert_eq!(
            credit.lines[0].line_amount,
            rust_decimal::Decimal::from(100)
        );
        let pending = serde_json::json!({ "approvalstatus": "1", "status": "A", "id": "7", "trandate": "2026-10-31", "currency": "1" });
        assert_eq!(
            mapper::read_document(DocKind::Invoice, &cfg(), &pending, &[])
                .unwrap()
                .state,
            ferry_core::ports::ErpState::Submitted
        );
        let odd = serde_json::json!({ "status": "Z", "id": "7", "trandate": "2026-10-31", "currency": "1" });
        assert!(
            mapper::read_document(DocKind::Invoice, &cfg(), &odd, &[]).is_err(),
            "an unknown state is an error"
        );
        let yen = serde_json::json!({ "status": "A", "id": "7", "trandate": "2026-10-31", "currency": "99" });
        assert!(
            mapper::read_document(DocKind::Invoice, &cfg(), &yen, &[]).is_err(),
            "an unmapped currency is an error"
        );
    }
}
