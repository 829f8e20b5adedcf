//! Redmine REST client: `X-Redmine-API-Key`, JSON bodies, `offset`/`limit`
//! paging (at most 100 per page) with `total_count`, and query filters
//! (`f[]=…&op[…]=…&v[…][]=…`).
//! Reference: https://www.redmine.org/projects/redmine/wiki/Rest_api

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use ferry_canon::Domain;
use ferry_core::ConnectorError;
use ferry_core::ports::Secret;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::config::RedmineConfig;
use super::raw;
use crate::api::{Api, Vendor};
use crate::credential::Credential;

/// Redmine's largest page.
pub const PAGE: usize = 100;

/// How often a scan restarts when records are added or removed while it pages.
const SCAN_ATTEMPTS: usize = 3;

/// Thin HTTP client; one per tenant connection.
pub struct Client {
    pub(crate) cfg: RedmineConfig,
    api: Api<RedmineApi>,
}

/// What Redmine adds to the shared client: the API key header and its error
/// shape (`{"errors": [...]}`). Redmine is the firm's own server, read at
/// Ferry's own pace.
struct RedmineApi {
    key: Credential,
}

#[async_trait]
impl Vendor for RedmineApi {
    type Credential = Secret;

    fn name(&self) -> &'static str {
        "redmine"
    }

    async fn credential(&self) -> Result<Secret, ConnectorError> {
        self.key.get().await
    }

    fn authorize(&self, req: RequestBuilder, key: &Secret) -> RequestBuilder {
        req.header("X-Redmine-API-Key", key.expose())
            .header(reqwest::header::ACCEPT, "application/json")
    }

    fn error_text(&self, body: &Value) -> Option<String> {
        serde_json::from_value::<raw::Errors>(body.clone())
            .ok()
            .filter(|e| !e.errors.is_empty())
            .map(|e| e.errors.join("; "))
    }
}

/// The collection path and JSON key of a domain.
pub fn collection(domain: Domain) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match domain {
        Domain::Customers | Domain::Projects => ("projects", "projects", "project"),
        Domain::Resources => ("users", "users", "user"),
        Domain::TimeEntries => ("time_entries", "time_entries", "time_entry"),
        _ => return None,
    })
}

/// Filters that list every record of a collection, not only the active ones.
fn every_status(domain: Domain) -> Vec<(String, String)> {
    match domain {
        Domain::Customers | Domain::Projects => vec![
            ("f[]".into(), "status".into()),
            ("op[status]".into(), "*".into()),
        ],
        // An empty status lists active, registered and locked users.
        Domain::Resources => vec![("status".into(), String::new())],
        _ => Vec::new(),
    }
}

impl Client {
    pub fn new(cfg: RedmineConfig, key: Credential) -> Self {
        let api = Api::new(
            RedmineApi { key },
            Duration::from_secs(cfg.timeout_seconds),
            None,
            None,
        );
        Client { cfg, api }
    }

    /// `GET /<path>.json`; `None` on 404.
    async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Option<Value>, ConnectorError> {
        let url = format!("{}/{path}.json", self.cfg.base_url.trim_end_matches('/'));
        let req = self.api.request(Method::GET, &url).query(query);
        let answer = self.api.send(req, &[StatusCode::NOT_FOUND]).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        // Every read answers a JSON object: an empty body is not "no such
        // record" (a deletion) nor an empty page (the end of a scan).
        if !answer.body.is_object() {
            return Err(ConnectorError::protocol(format!(
                "Redmine answered {} to GET {path} without a JSON object: {:?}",
                answer.status,
                answer.text.chars().take(200).collect::<String>()
            )));
        }
        Ok(Some(answer.body))
    }

    /// One record: `GET /<collection>/<id>.json`.
    pub async fn one(&self, domain: Domain, id: &str) -> Result<Option<Value>, ConnectorError> {
        let (path, _, one) = collection(domain).ok_or_else(|| ConnectorError::Config {
            message: format!("Redmine has no {domain}"),
        })?;
        if id.parse::<i64>().is_err() {
            return Err(ConnectorError::protocol(format!(
                "{id:?} is not a Redmine id"
            )));
        }
        Ok(self
            .get(&format!("{path}/{id}"), &[])
            .await?
            .and_then(|mut v| v.get_mut(one).map(Value::take)))
    }

    /// Every record of a domain matching `filters`, over all pages.
    pub async fn all(
        &self,
        domain: Domain,
        filters: &[(String, String)],
    ) -> Result<Vec<Value>, ConnectorError> {
        let (path, key, _) = collection(domain).ok_or_else(|| ConnectorError::Config {
            message: format!("Redmine has no {domain}"),
        })?;
        let mut base = every_status(domain);
        base.extend_from_slice(filters);
        self.scan(path, key, base).await
    }

    /// Issues (open and closed), which Ferry carries as their project's tasks;
    /// `project` limits them to one project without its subprojects.
    pub async fn issues(&self, project: Option<&str>) -> Result<Vec<Value>, ConnectorError> {
        let mut filters = vec![("status_id".to_string(), "*".to_string())];
        if let Some(p) = project {
            filters.push(("project_id".into(), p.to_string()));
            filters.push(("subproject_id".into(), "!*".into()));
        }
        self.scan("issues", "issues", filters).await
    }

    /// Issues (open and closed) updated on or after `day`.
    pub async fn issues_updated_since(&self, day: NaiveDate) -> Result<Vec<Value>, ConnectorError> {
        self.scan(
            "issues",
            "issues",
            vec![
                ("status_id".into(), "*".into()),
                ("updated_on".into(), format!(">={day}")),
            ],
        )
        .await
    }

    /// Every record of `/<path>.json` matching `base`, over all pages. Offset paging
    /// can skip a record when another is deleted mid-scan, so a scan whose
    /// `total_count` changed starts again.
    async fn scan(
        &self,
        path: &str,
        key: &str,
        base: Vec<(String, String)>,
    ) -> Result<Vec<Value>, ConnectorError> {
        let limit = self.cfg.page_size.clamp(1, PAGE);
        'scan: for _ in 0..SCAN_ATTEMPTS {
            let mut out: Vec<Value> = Vec::new();
            let mut total: Option<u64> = None;
            loop {
                let mut query = base.clone();
                query.push(("limit".into(), limit.to_string()));
                query.push(("offset".into(), out.len().to_string()));
                let page: raw::Page = match self.get(path, &query).await? {
                    Some(v) => serde_json::from_value(v).map_err(|e| {
                        ConnectorError::protocol(format!("Redmine {path} page: {e}"))
                    })?,
                    None => {
                        return Err(ConnectorError::protocol(format!(
                            "Redmine /{path}.json answered 404"
                        )));
                    }
                };
                if total.is_some_and(|t| Some(t) != page.total_count) {
                    continue 'scan;
                }
                total = page.total_count;
                let items = match page.rest.get(key) {
                    Some(Value::Array(items)) => items.clone(),
                    _ => {
                        return Err(ConnectorError::protocol(format!(
                            "Redmine {path} page without a {key} list"
                        )));
                    }
                };
                let n = items.len();
                out.extend(items);
                // With a count, a short page ends the read only when the count is
                // reached (a server serving fewer than asked must not truncate it).
                let done = match total {
                    Some(t) => out.len() as u64 >= t || n == 0,
                    None => n < limit,
                };
                if done {
                    return Ok(out);
                }
            }
        }
        Err(ConnectorError::transient(format!(
            "Redmine {path} kept changing while Ferry read it; trying again later"
        )))
    }

    /// Time entries updated on or after `day` (Redmine compares `updated_on` by date).
    pub async fn time_entries_updated_since(
        &self,
        day: NaiveDate,
    ) -> Result<Vec<Value>, ConnectorError> {
        self.all(
            Domain::TimeEntries,
            &[
                ("f[]".into(), "updated_on".into()),
                ("op[updated_on]".into(), ">=".into()),
                ("v[updated_on][]".into(), day.to_string()),
            ],
        )
        .await
    }

    /// Time entries spent in `[from, to]`.
    pub async fn time_entries_spent(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Value>, ConnectorError> {
        self.all(
            Domain::TimeEntries,
            &[
                ("from".into(), from.to_string()),
                ("to".into(), to.to_string()),
            ],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::ports::Secret;
    use std::io::{Read, Write};

    /// One HTTP answer on loopback, for every request, until the test ends.
    fn serve(answer: &'static str) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer.as_bytes());
            }
        });
        format!("http://{addr}")
    }

    fn client(base_url: String) -> Client {
        Client::new(
            RedmineConfig {
                base_url,
                home_currency: "USD".into(),
                billable_field: None,
                approved_field: None,
                page_size: crate::redmine::client::PAGE,
                timeout_seconds: 5,
            },
            Credential::Fixed(Secret::new("k".to_string())),
        )
    }

    #[tokio::test]
    async fn an_empty_answer_is_an_error_never_a_deleted_record_or_an_empty_page() {
        let empty = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let c = client(serve(empty));
        let one = c.one(Domain::TimeEntries, "7").await;
        assert!(
            matches!(one, Err(ConnectorError::Protocol { .. })),
            "{one:?}"
        );
        let all = c.all(Domain::TimeEntries, &[]).await;
        assert!(
            matches!(all, Err(ConnectorError::Protocol { .. })),
            "{all:?}"
        );
        let gone = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let c = client(serve(gone));
        assert!(matches!(c.one(Domain::TimeEntries, "7").await, Ok(None)));
    }
}
