//! ConnectWise PSA REST client: Basic auth (`companyId+publicKey:privateKey`)
//! plus the `clientId` header, `conditions` filters, `page`/`pageSize` paging.
//! Reference: https://developer.connectwise.com/Products/ConnectWise_PSA/REST

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use ferry_canon::Domain;
use ferry_core::ConnectorError;
use ferry_core::ports::{Cursor, Secret};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::config::{ConnectWiseConfig, ConnectWiseCredentials};
use super::raw;
use crate::api::{Api, Vendor};

/// The API version this client speaks (sent in `Accept`).
pub const API_VERSION: &str = "2025.1";

/// Largest page ConnectWise serves.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Thin HTTP client; one per tenant connection.
pub struct Client {
    pub(crate) cfg: ConnectWiseConfig,
    api: Api<ConnectWiseApi>,
}

/// What ConnectWise adds to the shared client: Basic auth of the company and
/// API member keys, the integration's `clientId`, the API version, and its
/// error shape. ConnectWise's limits are not published; Ferry reads it at its
/// own pace, without a shared budget.
struct ConnectWiseApi {
    company_id: String,
    creds: ConnectWiseCredentials,
}

/// The three keys a request is signed with.
struct Keys {
    public: Secret,
    private: Secret,
    client_id: Secret,
}

#[async_trait]
impl Vendor for ConnectWiseApi {
    type Credential = Keys;

    fn name(&self) -> &'static str {
        "connectwise"
    }

    async fn credential(&self) -> Result<Keys, ConnectorError> {
        Ok(Keys {
            public: self.creds.public_key.get().await?,
            private: self.creds.private_key.get().await?,
            client_id: self.creds.client_id.get().await?,
        })
    }

    fn authorize(&self, req: RequestBuilder, keys: &Keys) -> RequestBuilder {
        req.basic_auth(
            format!("{}+{}", self.company_id, keys.public.expose()),
            Some(keys.private.expose()),
        )
        .header("clientId", keys.client_id.expose())
        .header(
            reqwest::header::ACCEPT,
            format!("application/vnd.connectwise.com+json; version={API_VERSION}"),
        )
    }

    fn error_text(&self, body: &Value) -> Option<String> {
        let e: raw::ErrorBody = serde_json::from_value(body.clone()).ok()?;
        let mut m = e.message?;
        for d in e.errors.unwrap_or_default() {
            m.push_str(&format!(
                "; {}: {}",
                d.field.unwrap_or_default(),
                d.message.unwrap_or_default()
            ));
        }
        Some(m)
    }
}

/// The collection path of a domain.
pub fn path(domain: Domain) -> Option<&'static str> {
    Some(match domain {
        Domain::Customers => "company/companies",
        Domain::Projects => "project/projects",
        Domain::TimeEntries => "time/entries",
        Domain::Expenses => "expense/entries",
        Domain::Invoices | Domain::CreditMemos => "finance/invoices",
        _ => return None,
    })
}

/// A `[...]` datetime literal for `conditions`.
pub fn stamp(t: DateTime<Utc>) -> String {
    format!("[{}]", t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The domain's own filter (invoices and credit memos share an endpoint).
fn domain_condition(domain: Domain) -> Option<&'static str> {
    match domain {
        Domain::Invoices => Some("type != \"CreditMemo\""),
        Domain::CreditMemos => Some("type = \"CreditMemo\""),
        _ => None,
    }
}

/// `conditions` for records strictly after a compound cursor.
pub fn after_condition(after: &Cursor) -> String {
    let at = stamp(after.updated_at);
    match after.id.parse::<i64>() {
        Ok(id) => format!("(lastUpdated > {at} or (lastUpdated = {at} and id > {id}))"),
        Err(_) => format!("lastUpdated >= {at}"),
    }
}

fn and(parts: impl IntoIterator<Item = String>) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().collect();
    (!parts.is_empty()).then(|| parts.join(" and "))
}

/// The accounting-date field of a domain, for period queries.
fn date_field(domain: Domain) -> &'static str {
    match domain {
        Domain::TimeEntries => "timeStart",
        _ => "date",
    }
}

impl Client {
    pub fn new(cfg: ConnectWiseConfig, creds: ConnectWiseCredentials) -> Self {
        let api = Api::new(
            ConnectWiseApi {
                company_id: cfg.company_id.clone(),
                creds,
            },
            Duration::from_secs(cfg.timeout_seconds),
            None,
            None,
        );
        Client { cfg, api }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = format!("{}/{}", self.cfg.base_url.trim_end_matches('/'), path);
        self.api.request(method, &url)
    }

    /// One call; `None` on 404.
    async fn send(&self, req: RequestBuilder) -> Result<Option<Value>, ConnectorError> {
        let answer = self.api.send(req, &[StatusCode::NOT_FOUND]).await?;
        Ok((answer.status != StatusCode::NOT_FOUND).then_some(answer.body))
    }

    /// `GET /{path}/{id}`; `None` on 404.
    pub async fn get(&self, domain: Domain, id: &str) -> Result<Option<Value>, ConnectorError> {
        let p = path(domain).ok_or_else(|| ConnectorError::Config {
            message: format!("ConnectWise has no endpoint for {domain}"),
        })?;
        self.send(self.request(Method::GET, &format!("{p}/{id}")))
            .await
    }

    /// One page of a collection.
    async fn page(
        &self,
        domain: Domain,
        conditions: Option<&str>,
        order_by: &str,
        page: u32,
        page_size: u32,
    ) -> Result<Vec<Value>, ConnectorError> {
        let p = path(domain).ok_or_else(|| ConnectorError::Config {
            message: format!("ConnectWise has no endpoint for {domain}"),
        })?;
        let mut query: Vec<(&str, String)> = vec![
            ("orderBy", order_by.to_string()),
            ("page", page.to_string()),
            ("pageSize", page_size.min(MAX_PAGE_SIZE).to_string()),
        ];
        if let Some(c) = conditions {
            query.push(("conditions", c.to_string()));
        }
        match self
            .send(self.request(Method::GET, p).query(&query))
            .await?
        {
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(ConnectorError::protocol(format!(
                "ConnectWise list answered {} instead of an array",
                kind(&other)
            ))),
            None => Err(ConnectorError::protocol("ConnectWise list answered 404")),
        }
    }

    /// Records changed strictly after the cursor, oldest first (keyset paging on
    /// `lastUpdated, id`, so concurrent changes cannot shift pages).
    /// Reference: `GET /{path}?conditions=lastUpdated>[..]&orderBy=lastUpdated asc, id asc`.
    pub async fn changed_since(
        &self,
        domain: Domain,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<Value>, ConnectorError> {
        let conditions = and(domain_condition(domain)
            .map(String::from)
            .into_iter()
            .chain(after.map(after_condition)));
        self.page(
            domain,
            conditions.as_deref(),
            "lastUpdated asc, id asc",
            1,
            limit,
        )
        .await
    }

    /// Every record whose accounting date is in `[from, to]`, page by page until
    /// a page comes back empty.
    pub async fn in_period(
        &self,
        domain: Domain,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Value>, ConnectorError> {
        let field = date_field(domain);
        let start = from.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let end = (to + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc();
        let conditions = and(domain_condition(domain)
            .map(String::from)
            .into_iter()
            .chain([format!(
                "{field} >= {} and {field} < {}",
                stamp(start),
                stamp(end)
            )]))
        .expect("a period condition");
        let mut out = Vec::new();
        for page in 1.. {
            let items = self
                .page(domain, Some(&conditions), "id asc", page, MAX_PAGE_SIZE)
                .await?;
            // Only an empty page ends the read: a server that serves fewer than
            // asked (a lower page cap) must not truncate it.
            if items.is_empty() {
                break;
            }
            out.extend(items);
        }
        Ok(out)
    }

    /// `GET /finance/invoices/{id}` then `POST /finance/invoices/{id}/payments`
    /// for the difference between the ERP's paid amount and ConnectWise's.
    pub async fn add_payment(
        &self,
        invoice_id: &str,
        amount: rust_decimal::Decimal,
        date: Option<NaiveDate>,
    ) -> Result<(), ConnectorError> {
        let body = serde_json::json!({
            "type": "Payment",
            "amount": crate::json::number(amount),
            "paymentDate": date.map(|d| format!("{d}T00:00:00Z")),
            "appliedBy": "Ferry",
        });
        let path = format!("finance/invoices/{invoice_id}/payments");
        match self
            .send(self.request(Method::POST, &path).json(&body))
            .await?
        {
            Some(_) => Ok(()),
            None => Err(ConnectorError::Rejected {
                status: 404,
                message: format!("ConnectWise invoice {invoice_id} does not exist"),
            }),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_cursor_condition_is_a_strict_compound_order() {
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
        assert_eq!(
            after_condition(&Cursor::new(t, "42")),
            "(lastUpdated > [2026-11-02T09:00:00Z] or (lastUpdated = [2026-11-02T09:00:00Z] and id > 42))"
        );
        assert_eq!(
            after_condition(&Cursor::new(t, "")),
            "lastUpdated >= [2026-11-02T09:00:00Z]"
        );
    }
}
