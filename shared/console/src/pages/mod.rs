//! The pages, one file per area. Each handler receives the guard's
//! [`Signed`](crate::routes::Signed): permission and tenant scope are already
//! checked; actions check the exception's owner themselves.

pub mod actions;
pub mod audit;
pub mod customers;
pub mod exceptions;
pub mod reconciliation;
pub mod session;
pub mod trends;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ferry_canon::Decimal;
use serde::Serialize;

use crate::Console;
use crate::roles::Principal;
use crate::routes::Signed;
use crate::views::Look;

/// What every signed-in page's frame shows.
#[derive(Serialize)]
pub struct Frame {
    pub look: Look,
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub partner_role: bool,
}

impl Frame {
    pub async fn of(console: &Console, signed: &Signed) -> Frame {
        Frame {
            look: console.look(Some(&signed.principal.partner)).await,
            user: signed.principal.user.clone(),
            role: signed.principal.role.as_str(),
            csrf: signed.csrf.clone(),
            partner_role: !signed.principal.role.is_customer(),
        }
    }
}

/// Why a page or action did not go ahead: a store that did not answer (503,
/// logged), or a refusal with its status and a sentence. Handlers return
/// `Result<Response, Refusal>` and use `?`.
#[derive(Debug)]
pub enum Refusal {
    Unavailable(String),
    Status(StatusCode, String),
}

impl Refusal {
    pub fn new(status: StatusCode, why: impl Into<String>) -> Refusal {
        Refusal::Status(status, why.into())
    }
}

impl From<ferry_core::PortError> for Refusal {
    fn from(e: ferry_core::PortError) -> Refusal {
        Refusal::Unavailable(e.to_string())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unavailable(e) => unavailable(e),
            Refusal::Status(status, why) => (status, why).into_response(),
        }
    }
}

/// A page's outcome.
pub type Answer = Result<Response, Refusal>;

/// The customer a tenant-scoped route is about (the guard put it there).
pub fn customer_of(signed: &Signed) -> Result<crate::store::Customer, Refusal> {
    signed
        .customer
        .clone()
        .ok_or_else(|| Refusal::Unavailable("a customer page without its customer".into()))
}

/// A store that did not answer: the page says so and logs it.
pub fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console read failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the console could not read Ferry's state; try again shortly",
    )
        .into_response()
}

/// "3d 4h", "2h 10m", "45s": an age a person reads at a glance.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
    }
}

/// Seconds from `then` to `now`.
pub fn since(now: DateTime<Utc>, then: DateTime<Utc>) -> i64 {
    (now - then).num_seconds()
}

/// Amounts per currency, each with its code: never summed across currencies.
pub fn money(by_currency: &BTreeMap<String, Decimal>) -> Vec<String> {
    by_currency
        .iter()
        .filter(|(_, a)| !a.is_zero())
        .map(|(c, a)| format!("{c} {a}"))
        .collect()
}

/// Whether the principal may act on an exception owned by `owner`.
pub fn acts(p: &Principal, owner: ferry_core::ports::Owner) -> bool {
    p.role.acts_for(owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_money() {
        assert_eq!(age(-5), "0s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(60), "1m");
        assert_eq!(age(3_600 + 120), "1h 2m");
        assert_eq!(age(86_400 * 3 + 3_600 * 4 + 59), "3d 4h");
        let mut m = BTreeMap::new();
        m.insert("EUR".to_string(), Decimal::new(-12_345, 2));
        m.insert("USD".to_string(), Decimal::ZERO);
        m.insert("GBP".to_string(), Decimal::new(1, 0));
        assert_eq!(money(&m), vec!["EUR -123.45", "GBP 1"]);
    }
}
