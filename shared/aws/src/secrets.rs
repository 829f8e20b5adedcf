//! Credentials and webhook keys from AWS Secrets Manager: one secret per tenant
//! (= per customer stack), named `{prefix}{tenant}`, whose `SecretString` is a
//! JSON object of named values (`{"connectwise.private_key": "...", ...}`).
//! Values are cached in the function for `ttl`, so a rotated secret is picked
//! up within that time without a call per request; `invalidate` drops a
//! tenant's cache at once (after the vendor refused the credentials).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::{Clock, Secret, Secrets, fresh};

use crate::table::sdk_err;

const PORT: &str = "secrets";

struct Cached {
    at: DateTime<Utc>,
    values: BTreeMap<String, String>,
}

pub struct SecretsManager {
    client: Client,
    prefix: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<TenantId, Cached>>,
}

impl SecretsManager {
    pub fn new(
        client: Client,
        prefix: impl Into<String>,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        SecretsManager {
            client,
            prefix: prefix.into(),
            ttl,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The secret id of a tenant.
    pub fn secret_id(&self, tenant: &TenantId) -> String {
        format!("{}{tenant}", self.prefix)
    }

    /// Forgets the cached values of a tenant; the next `get` reads the secret again.
    pub fn invalidate(&self, tenant: &TenantId) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
    }

    fn cached(&self, tenant: &TenantId, name: &str) -> Option<Option<String>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(tenant)
            .filter(|c| fresh(c.at, self.clock.now(), self.ttl))
            .map(|c| c.values.get(name).cloned())
    }
}

impl SecretsManager {
    /// Reads the whole secret from Secrets Manager (no cache) and caches it.
    async fn load(&self, tenant: &TenantId) -> Result<BTreeMap<String, String>, PortError> {
        let id = self.secret_id(tenant);
        let out = self
            .client
            .get_secret_value()
            .secret_id(&id)
            .send()
            .await
            .map_err(sdk_err(PORT, "get"))?;
        let text = out.secret_string.ok_or_else(|| {
            PortError::permanent(PORT, "get", format!("secret {id} has no SecretString"))
        })?;
        let values: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| {
            PortError::permanent(
                PORT,
                "get",
                format!("secret {id} must be a JSON object of string values: {e}"),
            )
        })?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(
            tenant.clone(),
            Cached {
                at: self.clock.now(),
                values: values.clone(),
            },
        );
        Ok(values)
    }

    fn named(
        &self,
        tenant: &TenantId,
        name: &str,
        value: Option<String>,
    ) -> Result<Secret, PortError> {
        value.map(Secret::new).ok_or_else(|| {
            PortError::permanent(
                PORT,
                "get",
                format!("secret {} has no value {name:?}", self.secret_id(tenant)),
            )
        })
    }
}

#[async_trait]
impl Secrets for SecretsManager {
    async fn get_fresh(&self, tenant: &TenantId, name: &str) -> Result<Secret, PortError> {
        let value = self.load(tenant).await?.get(name).cloned();
        self.named(tenant, name, value)
    }

    async fn put(&self, tenant: &TenantId, values: &[(&str, &Secret)]) -> Result<(), PortError> {
        let mut all = self.load(tenant).await?;
        for (name, value) in values {
            all.insert((*name).to_string(), value.expose().to_string());
        }
        let body = serde_json::to_string(&all).map_err(|e| PortError::permanent(PORT, "put", e))?;
        self.client
            .put_secret_value()
            .secret_id(self.secret_id(tenant))
            .secret_string(body)
            .send()
            .await
            .map_err(sdk_err(PORT, "put"))?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(
            tenant.clone(),
            Cached {
                at: self.clock.now(),
                values: all,
            },
        );
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, name: &str) -> Result<Secret, PortError> {
        let value = match self.cached(tenant, name) {
            Some(v) => v,
            None => self.load(tenant).await?.get(name).cloned(),
        };
        self.named(tenant, name, value)
    }
}
