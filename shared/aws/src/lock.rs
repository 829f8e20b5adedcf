//! Named per-tenant locks: `pk = {tenant}#lock#{name}`, taken with one
//! conditional PutItem that succeeds when the lock is free, expired, or already
//! ours; released with a DeleteItem conditional on the holder. `ttl` lets
//! DynamoDB remove abandoned locks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::LockStore;
use serde::{Deserialize, Serialize};

use crate::table::{Cond, Table, n, s, ttl_of, us};

const PORT: &str = "locks";

#[derive(Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    holder: String,
    until_us: i64,
    ttl: i64,
}

pub struct DynamoLocks {
    pub(crate) table: Table,
}

fn pk(t: &TenantId, name: &str) -> String {
    format!("{t}#lock#{name}")
}

#[async_trait]
impl LockStore for DynamoLocks {
    async fn try_acquire(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let item = Item {
            pk: pk(tenant, name),
            sk: "-".into(),
            holder: holder.to_string(),
            until_us: us(until),
            ttl: ttl_of(until) + 3600,
        };
        self.table
            .put(
                PORT,
                "try_acquire",
                &item,
                Cond::Expr(
                    "attribute_not_exists(pk) OR until_us <= :now OR holder = :me",
                    vec![(":now", n(us(now))), (":me", s(holder))],
                ),
            )
            .await
    }

    async fn release(&self, tenant: &TenantId, name: &str, holder: &str) -> Result<(), PortError> {
        self.table
            .delete(
                PORT,
                "release",
                &pk(tenant, name),
                "-",
                Cond::Expr("holder = :me", vec![(":me", s(holder))]),
            )
            .await
            .map(|_| ())
    }
}
