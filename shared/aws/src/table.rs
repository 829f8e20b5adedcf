//! The one DynamoDB table every store shares (single-table design).
//!
//! Keys: `pk` and `sk` are strings; `pk` always starts with the tenant id (or,
//! for the rate budget, the ERP account key). A sparse global secondary index
//! `gsi1` (`gsi1pk`, `gsi1sk`) serves the two reverse lookups (ERP id → document,
//! document → audit entries). `ttl` (epoch seconds) is the table's TTL attribute;
//! DynamoDB deletes expired items lazily, so every read also checks expiry itself.
//!
//! Items are serde structs mapped with `serde_dynamo`; read-modify-write stores
//! carry a `rev` attribute and write with `rev = :rev` (optimistic concurrency),
//! retrying a bounded number of times on conflict.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use ferry_core::PortError;
use ferry_core::error::RetryClass;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Attribute values by placeholder (`:now`).
pub type Values = Vec<(&'static str, AttributeValue)>;

/// How many times a read-modify-write retries after losing a race.
pub const MAX_CONFLICTS: usize = 16;

#[derive(Clone)]
pub struct Table {
    pub(crate) client: Client,
    pub(crate) name: String,
}

/// Maps an SDK error to a port error with the right retry class.
pub fn sdk_err<E, R>(port: &'static str, op: &'static str) -> impl Fn(SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    move |e| classify(port, op, &e)
}

pub(crate) fn classify<E, R>(port: &'static str, op: &'static str, e: &SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or_default().to_string();
    let message = format!(
        "{} {}",
        if code.is_empty() { "error" } else { &code },
        e.message()
            .map(str::to_string)
            .unwrap_or_else(|| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
    );
    let class = match e {
        SdkError::ServiceError(_) => match code.as_str() {
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "Throttling"
            | "RequestLimitExceeded"
            | "RequestThrottled"
            | "TooManyRequestsException"
            | "LimitExceededException"
            | "AWS.SimpleQueueService.RequestThrottled" => {
                RetryClass::Throttled { retry_after: None }
            }
            "InternalServerError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "TransactionConflictException"
            | "TransactionInProgressException" => RetryClass::Transient,
            _ => RetryClass::Permanent,
        },
        // Timeouts, connection failures, unparseable responses: worth another try.
        _ => RetryClass::Transient,
    };
    PortError {
        port,
        op,
        message,
        class,
    }
}

pub(crate) fn mapping_err(
    port: &'static str,
    op: &'static str,
) -> impl Fn(serde_dynamo::Error) -> PortError {
    move |e| PortError::permanent(port, op, format!("item mapping: {e}"))
}

pub(crate) fn conflict(port: &'static str, op: &'static str) -> PortError {
    PortError::transient(
        port,
        op,
        format!("lost {MAX_CONFLICTS} optimistic-concurrency races in a row"),
    )
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// The condition of a write.
pub enum Cond {
    Always,
    /// The item does not exist yet.
    Absent,
    /// `rev` matches, or the item is absent when `None`.
    Expect(Option<i64>),
    /// A custom condition expression with its values.
    Expr(&'static str, Values),
}

impl Cond {
    fn parts(self) -> (Option<String>, Values) {
        match self {
            Cond::Always => (None, Vec::new()),
            Cond::Absent | Cond::Expect(None) => {
                (Some("attribute_not_exists(pk)".into()), Vec::new())
            }
            Cond::Expect(Some(r)) => (Some("#rev = :rev".into()), vec![(":rev", n(r))]),
            Cond::Expr(e, v) => (Some(e.to_string()), v),
        }
    }
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Table {
            client,
            name: name.into(),
        }
    }

    /// A strongly consistent read of one item.
    pub async fn get<T: DeserializeOwned>(
        &self,
        port: &'static str,
        op: &'static str,
        pk: &str,
        sk: &str,
    ) -> Result<Option<T>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err(port, op))?;
        out.item
            .map(|i| serde_dynamo::from_item(i).map_err(mapping_err(port, op)))
            .transpose()
    }

    /// Writes `item` if `cond` holds; `Ok(false)` when it does not.
    pub async fn put<T: Serialize>(
        &self,
        port: &'static str,
        op: &'static str,
        item: &T,
        cond: Cond,
    ) -> Result<bool, PortError> {
        self.put_named(port, op, item, cond, &[]).await
    }

    /// [`Self::put`] with attribute-name placeholders (for reserved words such as `status`).
    pub async fn put_named<T: Serialize>(
        &self,
        port: &'static str,
        op: &'static str,
        item: &T,
        cond: Cond,
        names: &[(&str, &str)],
    ) -> Result<bool, PortError> {
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(item).map_err(mapping_err(port, op))?;
        let (expr, values) = cond.parts();
        let mut req = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item));
        if let Some(expr) = expr {
            if expr.contains("#rev") {
                req = req.expression_attribute_names("#rev", "rev");
            }
            req = req.condition_expression(expr);
            for (k, v) in values {
                req = req.expression_attribute_values(k, v);
            }
            for (k, v) in names {
                req = req.expression_attribute_names(*k, *v);
            }
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify(port, op, &e)),
        }
    }

    /// Deletes an item if `cond` holds; `Ok(false)` when it does not.
    pub async fn delete(
        &self,
        port: &'static str,
        op: &'static str,
        pk: &str,
        sk: &str,
        cond: Cond,
    ) -> Result<bool, PortError> {
        let (expr, values) = cond.parts();
        let mut req = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key(pk, sk)));
        if let Some(expr) = expr {
            if expr.contains("#rev") {
                req = req.expression_attribute_names("#rev", "rev");
            }
            req = req.condition_expression(expr);
            for (k, v) in values {
                req = req.expression_attribute_values(k, v);
            }
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(classify(port, op, &e)),
        }
    }

    /// Every item of a partition (optionally with a sort-key prefix), in sort-key
    /// order (or reversed), strongly consistent, following pages up to `limit` items.
    pub async fn query<T: DeserializeOwned>(
        &self,
        port: &'static str,
        op: &'static str,
        pk: &str,
        sk_prefix: Option<&str>,
        forward: bool,
        limit: Option<usize>,
    ) -> Result<Vec<T>, PortError> {
        self.query_on(port, op, None, pk, sk_prefix, forward, limit)
            .await
    }

    /// [`Self::query`] on the `gsi1` index (eventually consistent, as GSIs are).
    pub async fn query_gsi1<T: DeserializeOwned>(
        &self,
        port: &'static str,
        op: &'static str,
        pk: &str,
        forward: bool,
        limit: Option<usize>,
    ) -> Result<Vec<T>, PortError> {
        self.query_on(port, op, Some("gsi1"), pk, None, forward, limit)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn query_on<T: DeserializeOwned>(
        &self,
        port: &'static str,
        op: &'static str,
        index: Option<&str>,
        pk: &str,
        sk_prefix: Option<&str>,
        forward: bool,
        limit: Option<usize>,
    ) -> Result<Vec<T>, PortError> {
        let (pk_name, sk_name) = match index {
            Some(_) => ("gsi1pk", "gsi1sk"),
            None => ("pk", "sk"),
        };
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.name)
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", s(pk))
                .scan_index_forward(forward)
                .set_exclusive_start_key(start.take());
            req = match index {
                Some(i) => req.index_name(i),
                None => req.consistent_read(true),
            };
            req = match sk_prefix.filter(|p| !p.is_empty()) {
                Some(p) => req
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :p)")
                    .expression_attribute_names("#sk", sk_name)
                    .expression_attribute_values(":p", s(p)),
                None => req.key_condition_expression("#pk = :pk"),
            };
            if let Some(l) = limit {
                let left = l.saturating_sub(out.len()).max(1);
                req = req.limit(i32::try_from(left).unwrap_or(i32::MAX));
            }
            let page = req.send().await.map_err(sdk_err(port, op))?;
            for item in page.items.unwrap_or_default() {
                out.push(serde_dynamo::from_item(item).map_err(mapping_err(port, op))?);
            }
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// An item written with optimistic concurrency: its `rev` counts its writes.
pub trait Versioned {
    fn rev(&self) -> i64;
    fn set_rev(&mut self, rev: i64);
}

impl Table {
    /// Read, change, write conditionally on `rev`, retrying on a lost race.
    /// `change` sees the current item (or `None`) and returns the item to write
    /// (`None`: nothing to write) and the caller's answer.
    pub async fn update<T, R>(
        &self,
        port: &'static str,
        op: &'static str,
        pk: &str,
        sk: &str,
        change: impl Fn(Option<T>) -> Result<(Option<T>, R), PortError>,
    ) -> Result<R, PortError>
    where
        T: Serialize + DeserializeOwned + Versioned,
    {
        for _ in 0..MAX_CONFLICTS {
            let current: Option<T> = self.get(port, op, pk, sk).await?;
            let expect = current.as_ref().map(Versioned::rev);
            let (next, answer) = change(current)?;
            let Some(mut next) = next else {
                return Ok(answer);
            };
            next.set_rev(expect.unwrap_or(0) + 1);
            if self.put(port, op, &next, Cond::Expect(expect)).await? {
                return Ok(answer);
            }
        }
        Err(conflict(port, op))
    }
}

/// Implements [`Versioned`] for item structs with a `rev: i64` field.
macro_rules! versioned {
    ($($t:ty),+) => {$(
        impl $crate::table::Versioned for $t {
            fn rev(&self) -> i64 {
                self.rev
            }
            fn set_rev(&mut self, rev: i64) {
                self.rev = rev;
            }
        }
    )+};
}
pub(crate) use versioned;

/// True for a failed condition (`ConditionalCheckFailedException`).
pub fn is_condition_failure<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(e, SdkError::ServiceError(_)) && e.code() == Some("ConditionalCheckFailedException")
}

/// Epoch seconds, for the `ttl` attribute.
pub fn ttl_of(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

/// Microseconds since the epoch: comparable numbers for conditions.
pub fn us(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`us`].
pub fn from_us(v: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(v).unwrap_or_default()
}
