//! The project and customer a PSA record refers to, for use cases that read many
//! records in one go (reconciliation, template coverage): from the ledger where
//! Ferry holds them, else from the PSA; each read once per run.

use std::collections::HashMap;

use ferry_canon::{CanonicalRecord, Domain, SourceRef};

use crate::deps::{Deps, TenantContext};
use crate::error::{ConnectorError, PortError};
use crate::gate::Patience;
use crate::mapping::{self, Related};

/// Why a related record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RelatedError {
    #[error("reading a vendor: {0}")]
    Vendor(#[from] ConnectorError),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Reads related records with a cache for one run.
pub struct RelatedReader<'a> {
    deps: &'a Deps,
    ctx: &'a TenantContext,
    cache: HashMap<crate::keys::RecordKey, Option<CanonicalRecord>>,
}

impl<'a> RelatedReader<'a> {
    pub fn new(deps: &'a Deps, ctx: &'a TenantContext) -> Self {
        RelatedReader {
            deps,
            ctx,
            cache: HashMap::new(),
        }
    }

    /// The record's project and the customer it bills (absent when unknown).
    pub async fn related(
        &mut self,
        canon: &CanonicalRecord,
        patience: &mut Patience,
    ) -> Result<Related, RelatedError> {
        let mut r = Related::default();
        if let CanonicalRecord::Customers(a) = canon {
            r.account = Some(a.clone());
            return Ok(r);
        }
        if let Some(p) = mapping::project_of(canon)
            && let Some(CanonicalRecord::Projects(project)) =
                self.load(Domain::Projects, p, patience).await?
        {
            r.project = Some(project);
        }
        if let Some(a) = mapping::billed_account(canon, &r)
            && let Some(CanonicalRecord::Customers(account)) =
                self.load(Domain::Customers, &a, patience).await?
        {
            r.account = Some(account);
        }
        Ok(r)
    }

    async fn load(
        &mut self,
        domain: Domain,
        source: &SourceRef,
        patience: &mut Patience,
    ) -> Result<Option<CanonicalRecord>, RelatedError> {
        let key = crate::keys::RecordKey::new(domain, source);
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit.clone());
        }
        let from_ledger = self
            .deps
            .ledger
            .get(&self.ctx.tenant, &key)
            .await?
            .and_then(|e| e.canonical)
            .and_then(|c| serde_json::from_str::<CanonicalRecord>(&c).ok());
        let rec = match from_ledger {
            Some(r) => Some(r),
            None => match patience
                .call("reading a PSA record", || {
                    self.ctx.psa.fetch(domain, &source.id)
                })
                .await?
            {
                Some(src) => self.ctx.canonical(&src).ok(),
                None => None,
            },
        };
        self.cache.insert(key, rec.clone());
        Ok(rec)
    }
}
