//! Credentials a connector reads on use, not once at start: from the tenant's
//! secret store (which caches them, on AWS for `FERRY_SECRET_TTL_SECONDS`), so a
//! rotated key or password takes effect without restarting the function.

use std::sync::Arc;

use ferry_canon::TenantId;
use ferry_core::ConnectorError;
use ferry_core::ports::{Secret, Secrets};

#[derive(Clone)]
pub enum Credential {
    /// A value given directly (tests, tools).
    Fixed(Secret),
    /// The named value of the tenant's secret, read on every use.
    Stored {
        secrets: Arc<dyn Secrets>,
        tenant: TenantId,
        name: &'static str,
    },
}

impl Credential {
    pub fn stored(secrets: &Arc<dyn Secrets>, tenant: &TenantId, name: &'static str) -> Self {
        Credential::Stored {
            secrets: secrets.clone(),
            tenant: tenant.clone(),
            name,
        }
    }

    pub async fn get(&self) -> Result<Secret, ConnectorError> {
        match self {
            Credential::Fixed(s) => Ok(s.clone()),
            Credential::Stored {
                secrets,
                tenant,
                name,
            } => secrets.get(tenant, name).await.map_err(|e| match e.class {
                ferry_core::RetryClass::Permanent => ConnectorError::Config {
                    message: format!("credential {name}: {e}"),
                },
                _ => ConnectorError::transient(format!("credential {name}: {e}")),
            }),
        }
    }
}
