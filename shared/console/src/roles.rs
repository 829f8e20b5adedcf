//! Who may do what: four roles, each a set of permissions over a scope.
//! Every route names the permission it needs ([`Need`]); the router checks it
//! before the page runs (see `routes`), and every query takes the principal's
//! scope, so a customer user cannot name another customer's data.

use std::fmt;

use ferry_canon::TenantId;
use ferry_core::ports::Owner;
use serde::{Deserialize, Serialize};

/// A console role. Partner roles see all of their partner's customers;
/// customer roles see one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    PartnerAdmin,
    PartnerSupport,
    CustomerFinance,
    CustomerOperations,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::PartnerAdmin,
        Role::PartnerSupport,
        Role::CustomerFinance,
        Role::CustomerOperations,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::PartnerAdmin => "partner_admin",
            Role::PartnerSupport => "partner_support",
            Role::CustomerFinance => "customer_finance",
            Role::CustomerOperations => "customer_operations",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Customer roles belong to one tenant; partner roles to none.
    pub fn is_customer(&self) -> bool {
        matches!(self, Role::CustomerFinance | Role::CustomerOperations)
    }

    /// Whether the role holds a permission at all (scope is checked apart).
    pub fn may(&self, need: Need) -> bool {
        match need {
            Need::Public | Need::SignedIn | Need::Read | Need::Act => true,
            Need::SignOff => matches!(self, Role::PartnerAdmin | Role::CustomerFinance),
            Need::ManageUsers => matches!(self, Role::PartnerAdmin),
        }
    }

    /// The exception owners a role may act for: partner roles act on any;
    /// a customer role only on what its function owns.
    pub fn acts_for(&self, owner: Owner) -> bool {
        match self {
            Role::PartnerAdmin | Role::PartnerSupport => true,
            Role::CustomerFinance => owner == Owner::Finance,
            Role::CustomerOperations => owner == Owner::ProjectOperations,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route needs. `Act` is checked again against the exception's owner
/// ([`Role::acts_for`]) by the action itself, since it depends on the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// Anyone, signed in or not (sign-in page, stylesheet).
    Public,
    /// Any signed-in user (sign out).
    SignedIn,
    /// See a customer's data.
    Read,
    /// Replay, assign, comment, resolve.
    Act,
    /// Sign off a reconciled period.
    SignOff,
    /// Add and change users.
    ManageUsers,
}

/// The signed-in user a request acts as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user: String,
    pub partner: String,
    pub role: Role,
    /// The customer of a customer role.
    pub tenant: Option<TenantId>,
}

impl Principal {
    /// Whether this principal may see `tenant`, which belongs to `partner`.
    pub fn sees(&self, tenant: &TenantId, partner: &str) -> bool {
        if partner != self.partner {
            return false;
        }
        match &self.tenant {
            Some(own) => own == tenant,
            None => !self.role.is_customer(),
        }
    }

    /// Whether the principal may do `need` on `tenant` (of `partner`).
    pub fn may_on(&self, need: Need, tenant: &TenantId, partner: &str) -> bool {
        self.role.may(need) && self.sees(tenant, partner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).expect("slug")
    }

    fn who(role: Role, partner: &str, tenant: Option<&str>) -> Principal {
        Principal {
            user: "u".into(),
            partner: partner.into(),
            role,
            tenant: tenant.map(t),
        }
    }

    #[test]
    fn a_customer_role_sees_its_own_customer_only() {
        let fin = who(Role::CustomerFinance, "p1", Some("acme"));
        assert!(fin.sees(&t("acme"), "p1"));
        assert!(!fin.sees(&t("globex"), "p1"), "another customer");
        assert!(
            !fin.sees(&t("acme"), "p2"),
            "the same slug under another partner"
        );
        let support = who(Role::PartnerSupport, "p1", None);
        assert!(support.sees(&t("globex"), "p1"));
        assert!(
            !support.sees(&t("globex"), "p2"),
            "another partner's customer"
        );
        let broken = who(Role::CustomerOperations, "p1", None);
        assert!(
            !broken.sees(&t("acme"), "p1"),
            "a customer role without a customer sees nothing"
        );
    }

    #[test]
    fn permissions_and_owners_per_role() {
        assert!(Role::CustomerFinance.may(Need::SignOff));
        assert!(!Role::CustomerOperations.may(Need::SignOff));
        assert!(!Role::PartnerSupport.may(Need::SignOff));
        assert!(!Role::PartnerSupport.may(Need::ManageUsers));
        assert!(Role::PartnerAdmin.may(Need::ManageUsers));
        assert!(Role::CustomerFinance.acts_for(Owner::Finance));
        assert!(!Role::CustomerFinance.acts_for(Owner::ProjectOperations));
        assert!(!Role::CustomerOperations.acts_for(Owner::Support));
        assert!(Role::PartnerSupport.acts_for(Owner::Support));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
