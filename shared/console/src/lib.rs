//! The partner's operations console: every customer at a glance under the
//! partner's brand, their exceptions (replay, assign, comment, resolve) and
//! the audit trail, server-rendered from one route table whose every route
//! names the permission it needs.
//!
//! The console is a library over two narrow ports: its own state
//! ([`ConsoleStore`]: directory, users, sessions, notes, the action log) and
//! Ferry's pipeline state ([`Fleet`]). `ferry console` serves it over the
//! embedded store; a partner stack will serve it from a Lambda.

pub mod auth;
pub mod chart;
pub mod fleet;
pub mod pages;
pub mod roles;
pub mod routes;
pub mod sqlite;
pub mod store;
pub mod views;

#[cfg(test)]
mod http_tests;

use std::sync::Arc;

use axum::http::HeaderMap;
use ferry_canon::TenantId;
use ferry_core::PortError;
use ferry_core::ports::Clock;

pub use fleet::{Fleet, LocalFleet};
pub use roles::{Need, Principal, Role};
pub use routes::{ROUTES, Route, router};
pub use sqlite::SqliteConsoleStore;
pub use store::{Action, ActionQuery, Brand, ConsoleStore, Customer, User};

use crate::store::Session;
use crate::views::{Look, Views};

/// Everything a page needs.
pub struct Console {
    pub store: Arc<dyn ConsoleStore>,
    pub fleet: Arc<dyn Fleet>,
    pub clock: Arc<dyn Clock>,
    pub views: Views,
    /// The partner whose brand the sign-in page wears, when the console
    /// serves one partner (a partner stack); neutral otherwise.
    pub home_partner: Option<String>,
    /// Failed sign-ins per name (this process's).
    pub throttle: auth::Throttle,
}

/// A live session's principal and CSRF token.
pub struct SignedIn {
    pub principal: Principal,
    pub csrf: String,
}

impl Console {
    pub fn new(
        store: Arc<dyn ConsoleStore>,
        fleet: Arc<dyn Fleet>,
        clock: Arc<dyn Clock>,
    ) -> Console {
        Console {
            store,
            fleet,
            clock,
            views: Views::new(),
            home_partner: None,
            throttle: auth::Throttle::default(),
        }
    }

    /// The principal of the request's session: none when there is no cookie,
    /// the session is unknown or expired, or its user is gone or incomplete
    /// (a customer role without a customer).
    pub async fn signed_in(&self, headers: &HeaderMap) -> Result<Option<SignedIn>, PortError> {
        let Some(id) = auth::session_id(headers) else {
            return Ok(None);
        };
        let Some(Session {
            user,
            csrf,
            expires,
            ..
        }) = self.store.session(&auth::id_hash(&id)).await?
        else {
            return Ok(None);
        };
        if expires <= self.clock.now() {
            return Ok(None);
        }
        let Some(u) = self.store.user(&user).await? else {
            return Ok(None);
        };
        if u.role.is_customer() != u.tenant.is_some() {
            return Ok(None);
        }
        Ok(Some(SignedIn {
            principal: Principal {
                user: u.name,
                partner: u.partner,
                role: u.role,
                tenant: u.tenant,
            },
            csrf,
        }))
    }

    /// The customers a principal sees, in the directory's order.
    pub async fn visible(&self, p: &Principal) -> Result<Vec<Customer>, PortError> {
        Ok(self
            .store
            .customers(&p.partner)
            .await?
            .into_iter()
            .filter(|c| p.sees(&c.tenant, &c.partner))
            .collect())
    }

    /// The look of a partner's pages.
    pub async fn look(&self, partner: Option<&str>) -> Look {
        match partner {
            Some(p) => match self.store.brand(p).await {
                Ok(b) => Look::of(b.as_ref()),
                Err(_) => Look::neutral(),
            },
            None => Look::neutral(),
        }
    }

    /// Records what a person did.
    pub async fn record(
        &self,
        p: &Principal,
        tenant: Option<&TenantId>,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), PortError> {
        self.store
            .record(&Action {
                at: self.clock.now(),
                user: p.user.clone(),
                partner: p.partner.clone(),
                tenant: tenant.cloned(),
                action: action.to_string(),
                target: target.to_string(),
                detail: detail.to_string(),
            })
            .await
    }
}
