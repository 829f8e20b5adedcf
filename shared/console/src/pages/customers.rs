//! The customers overview (one row per customer, what needs attention
//! first) and one customer's page.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::response::Response;
use ferry_core::usecases::health::Health;
use serde::Serialize;
use serde_json::json;

use crate::Console;
use crate::pages::{Frame, age, money, since, unavailable};
use crate::routes::Signed;
use crate::store::Customer;

/// One customer's row.
#[derive(Serialize)]
pub struct Row {
    pub tenant: String,
    pub name: String,
    pub tier: String,
    pub psa: String,
    pub erp: String,
    /// (domain, how long ago) of the latest post per domain.
    pub last_posted: Vec<(String, String)>,
    pub unsettled: u64,
    pub oldest_wait: Option<String>,
    pub sla: String,
    /// The oldest waiting record is older than the tier allows.
    pub late: bool,
    pub open: u32,
    pub by_owner: Vec<(String, u32)>,
    pub oldest_exception: Option<String>,
    pub held_back: Vec<String>,
    pub hours_held_back: String,
    /// The latest period's reconciliation: `clean`, `differences` or `signed off`, with its period.
    pub reconciliation: Option<(String, String, String)>,
}

impl Row {
    pub fn of(c: &Customer, h: &Health) -> Row {
        let wait = h.oldest_wait_seconds();
        Row {
            tenant: c.tenant.to_string(),
            name: c.name.clone(),
            tier: c.tier.clone(),
            psa: c.psa.clone(),
            erp: c.erp.clone(),
            last_posted: h
                .last_posted
                .iter()
                .map(|(d, t)| (d.as_str().to_string(), age(since(h.at, *t))))
                .collect(),
            unsettled: h.unsettled,
            oldest_wait: wait.map(age),
            sla: age(c.sla_seconds),
            late: wait.is_some_and(|w| w > c.sla_seconds),
            open: h.open(),
            by_owner: h
                .open_by_owner
                .iter()
                .map(|(o, n)| (o.as_str().to_string(), *n))
                .collect(),
            oldest_exception: h.oldest_exception.map(|t| age(since(h.at, t))),
            held_back: money(&h.held_back),
            hours_held_back: h.hours_held_back.normalize().to_string(),
            reconciliation: None,
        }
    }

    /// Late first, then the most open exceptions, then money held back, then
    /// an unreconciled last period, then by name.
    fn attention(&self) -> (bool, u32, bool, bool) {
        (
            self.late,
            self.open,
            !self.held_back.is_empty(),
            self.reconciliation
                .as_ref()
                .is_some_and(|(state, ..)| state == "differences"),
        )
    }
}

/// Orders rows by what needs attention.
pub fn by_attention(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        b.attention()
            .cmp(&a.attention())
            .then_with(|| a.name.cmp(&b.name))
    });
}

/// The latest period's reconciliation as (state, from, to).
async fn last_reconciliation(
    console: &Console,
    tenant: &ferry_canon::TenantId,
) -> Result<Option<(String, String, String)>, ferry_core::PortError> {
    let Some(last) = console.fleet.reports(tenant, 1).await?.into_iter().next() else {
        return Ok(None);
    };
    let signed = console
        .store
        .sign_offs(tenant)
        .await?
        .iter()
        .any(|s| s.covers(last.from, last.to, last.generated_at));
    let state = match (last.clean, signed) {
        (true, true) => "signed off",
        (true, false) => "clean",
        (false, _) => "differences",
    };
    Ok(Some((
        state.to_string(),
        last.from.to_string(),
        last.to.to_string(),
    )))
}

pub async fn list(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
) -> Response {
    let customers = match console.visible(&signed.principal).await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let mut rows = Vec::with_capacity(customers.len());
    for c in &customers {
        let mut row = match console.fleet.health(&c.tenant).await {
            Ok(h) => Row::of(c, &h),
            Err(e) => return unavailable(e),
        };
        row.reconciliation = match last_reconciliation(&console, &c.tenant).await {
            Ok(r) => r,
            Err(e) => return unavailable(e),
        };
        rows.push(row);
    }
    by_attention(&mut rows);
    let frame = Frame::of(&console, &signed).await;
    console
        .views
        .page("customers.html", json!({ "frame": frame, "rows": rows }))
}

pub async fn one(
    State(console): State<Arc<Console>>,
    Extension(signed): Extension<Signed>,
) -> Response {
    let Some(c) = signed.customer.clone() else {
        return unavailable("a customer page without its customer");
    };
    let health = match console.fleet.health(&c.tenant).await {
        Ok(h) => h,
        Err(e) => return unavailable(e),
    };
    let exceptions = match console
        .fleet
        .exceptions(&ferry_core::usecases::health::unsettled_exceptions(
            &c.tenant,
        ))
        .await
    {
        Ok(e) => e,
        Err(e) => return unavailable(e),
    };
    let rows = super::exceptions::rows(&console, &signed, &exceptions).await;
    let frame = Frame::of(&console, &signed).await;
    console.views.page(
        "customer.html",
        json!({
            "frame": frame,
            "customer": c,
            "row": Row::of(&c, &health),
            "exceptions": rows,
            "bulk_tenant": c.tenant.as_str(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use ferry_canon::{Decimal, TenantId};
    use std::collections::BTreeMap;

    fn customer(t: &str, sla: i64) -> Customer {
        Customer {
            tenant: TenantId::parse(t).expect("slug"),
            partner: "p".into(),
            name: t.to_uppercase(),
            tier: "gold".into(),
            sla_seconds: sla,
            psa: "connectwise".into(),
            erp: "xero".into(),
        }
    }

    fn health(t: &str, wait: Option<i64>, open: u32, held: bool) -> Health {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .expect("t");
        let mut open_by_owner = BTreeMap::new();
        if open > 0 {
            open_by_owner.insert(ferry_core::ports::Owner::Finance, open);
        }
        let mut held_back = BTreeMap::new();
        if held {
            held_back.insert("EUR".to_string(), Decimal::new(5, 0));
        }
        Health {
            tenant: TenantId::parse(t).expect("slug"),
            at,
            last_posted: BTreeMap::new(),
            unsettled: u64::from(wait.is_some()),
            oldest_unsettled: wait.map(|w| at - chrono::Duration::seconds(w)),
            open_by_owner,
            oldest_exception: None,
            held_back,
            hours_held_back: Decimal::ZERO,
        }
    }

    #[test]
    fn late_customers_come_first_then_open_exceptions_then_money() {
        let mut rows = vec![
            Row::of(&customer("calm", 600), &health("calm", None, 0, false)),
            Row::of(&customer("busy", 600), &health("busy", Some(10), 3, false)),
            Row::of(&customer("late", 600), &health("late", Some(601), 0, false)),
            Row::of(&customer("owed", 600), &health("owed", None, 3, true)),
            Row::of(&customer("edge", 600), &health("edge", Some(600), 0, false)),
        ];
        by_attention(&mut rows);
        let order: Vec<&str> = rows.iter().map(|r| r.tenant.as_str()).collect();
        assert_eq!(order, ["late", "owed", "busy", "calm", "edge"]);
        assert!(rows[0].late, "one second past the SLA is late");
        assert!(!rows[4].late, "exactly the SLA is not late");
    }
}
