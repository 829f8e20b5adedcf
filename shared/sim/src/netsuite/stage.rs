//! NetSuite on the demo's stage: the firm's account (its items for each work
//! role and expense category, sales tax, departments, the month before closed),
//! customers paying invoices, finance approving pending invoices. NetSuite
//! sends no webhooks: payments come back through Ferry's payment sweep, and an
//! invoice finance approved can still be edited (until it is paid).

use async_trait::async_trait;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use toml::Value as T;

use super::{NetSuiteFaults, NetSuiteSim, NetSuiteSimConfig, dec};
use crate::demo::{DEPARTMENTS, DemoFirm, ROLES, SALES_TAX_PERCENT};
use crate::stage::{ErpStage, Fault, SimErp, table};

pub struct Stage;

pub static STAGE: Stage = Stage;

/// The items a partner sets up for the firm: one per work role, one for
/// re-billed expenses, one for PSA invoices' services.
pub const EXPENSE_ITEM: &str = "EXP-REBILL";
pub const SERVICES_ITEM: &str = "SERVICES";

/// The firm's account.
pub fn account(firm: &DemoFirm) -> NetSuiteSimConfig {
    let mut cfg = NetSuiteSimConfig {
        closed_through: Some(firm.lock_date),
        ..NetSuiteSimConfig::default()
    };
    cfg.items = ROLES
        .iter()
        .map(|r| r.2.to_string())
        .chain([EXPENSE_ITEM.to_string(), SERVICES_ITEM.to_string()])
        .collect();
    cfg.tax_codes
        .insert("TAX".into(), SALES_TAX_PERCENT.parse().expect("a decimal"));
    cfg.tax_codes.insert("EXEMPT".into(), Decimal::ZERO);
    cfg.segments.insert(
        "department".into(),
        DEPARTMENTS.iter().map(|d| d.0.to_string()).collect(),
    );
    cfg
}

#[async_trait]
impl ErpStage for Stage {
    fn connector(&self) -> &'static str {
        "netsuite"
    }

    async fn start(&self, firm: &DemoFirm) -> std::io::Result<Box<dyn SimErp>> {
        Ok(Box::new(OnStage {
            ns: NetSuiteSim::start(account(firm)).await?,
        }))
    }
}

pub struct OnStage {
    pub ns: NetSuiteSim,
}

/// The `[erp.netsuite]` settings that reach `ns`.
pub fn settings(ns: &NetSuiteSim) -> toml::Table {
    let c = ns.config();
    table([
        ("account_id", T::String(c.account_id.clone())),
        ("base_url", T::String(ns.base_url())),
        ("client_id", T::String(c.client_id.clone())),
        ("certificate_id", T::String(c.certificate_id.clone())),
        ("subsidiary", T::String(c.subsidiary.clone())),
        ("concurrency", T::Integer(c.concurrency.into())),
        ("timeout_seconds", T::Integer(10)),
        ("job_wait_seconds", T::Integer(20)),
    ])
}

#[async_trait]
impl SimErp for OnStage {
    fn connector(&self) -> &'static str {
        "netsuite"
    }

    fn base_url(&self) -> String {
        self.ns.base_url()
    }

    fn settings(&self) -> toml::Table {
        settings(&self.ns)
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        vec![(
            "netsuite.private_key",
            self.ns.private_key_pem().to_string(),
        )]
    }

    async fn subscribe(&self, _url: &str) -> Result<bool, String> {
        Ok(false)
    }

    fn payable(&self) -> Vec<(String, Decimal)> {
        self.ns
            .transactions("invoice")
            .into_iter()
            .filter(|t| t["status"] == "A" && t["approvalStatus"]["id"] == "2")
            .filter_map(|t| Some((t["id"].as_str()?.to_string(), dec(&t["total"]))))
            .collect()
    }

    async fn pay(&self, invoice: &str, amount: Decimal, date: NaiveDate) -> Result<(), String> {
        let id = invoice
            .parse()
            .map_err(|_| format!("{invoice} is not an id"))?;
        self.ns.pay(id, amount, date).map(drop)
    }

    async fn approve(&self, reference: &str) -> Result<bool, String> {
        Ok(self.ns.approve(reference))
    }

    fn refuses_edits_after_approval(&self) -> bool {
        false
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn inject(&self, fault: Fault) {
        let mut f = NetSuiteFaults::default();
        match fault {
            Fault::NotJson => f.garbage_next = 1,
            Fault::ServerError => f.fail_next = 1,
            Fault::Throttled => f.throttle_next = 1,
        }
        self.ns.set_faults(f);
    }
}
