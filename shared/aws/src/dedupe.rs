//! Webhook event-id dedupe: `pk = {tenant}#event#{id}`. One conditional put
//! that succeeds when the id is absent or its record has expired; `ttl` lets
//! DynamoDB delete old ids.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::EventDedupe;
use serde::{Deserialize, Serialize};

use crate::table::{Cond, Table, n, ttl_of, us};

const PORT: &str = "dedupe";

#[derive(Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    seen_us: i64,
    expires_us: i64,
    ttl: i64,
}

pub struct DynamoDedupe {
    pub(crate) table: Table,
}

fn pk(t: &TenantId, id: &str) -> String {
    format!("{t}#event#{id}")
}

#[async_trait]
impl EventDedupe for DynamoDedupe {
    async fn first_seen(
        &self,
        tenant: &TenantId,
        event_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let item = Item {
            pk: pk(tenant, event_id),
            sk: "-".into(),
            seen_us: us(now),
            expires_us: us(expires_at),
            ttl: ttl_of(expires_at),
        };
        self.table
            .put(
                PORT,
                "first_seen",
                &item,
                Cond::Expr(
                    "attribute_not_exists(pk) OR expires_us <= :now",
                    vec![(":now", n(us(now)))],
                ),
            )
            .await
    }

    async fn keep(
        &self,
        tenant: &TenantId,
        event_id: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let item = Item {
            pk: pk(tenant, event_id),
            sk: "-".into(),
            seen_us: us(now),
            expires_us: us(expires_at),
            ttl: ttl_of(expires_at),
        };
        self.table
            .put(PORT, "keep", &item, Cond::Always)
            .await
            .map(|_| ())
    }

    async fn forget(&self, tenant: &TenantId, event_id: &str) -> Result<(), PortError> {
        self.table
            .delete(PORT, "forget", &pk(tenant, event_id), "-", Cond::Always)
            .await
            .map(|_| ())
    }
}
