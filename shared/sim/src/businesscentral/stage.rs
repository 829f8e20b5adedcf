//! Business Central on the demo's stage: the firm's company (an item per work
//! role, G/L accounts for re-billed expenses and PSA invoices, sales tax groups,
//! departments as a dimension, periods closed through the month before),
//! customers paying invoices and finance posting drafts. Ferry subscribes to
//! the company's sales invoices itself; the payments come back as notifications.

use async_trait::async_trait;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use toml::Value as T;

use super::{BcFaults, BcSim, BcSimConfig, dec};
use crate::demo::{DEPARTMENTS, DemoFirm, ErpRule, ROLES, SALES_TAX_PERCENT};
use crate::stage::{ErpStage, Fault, SimErp, table};

pub struct Stage;

pub static STAGE: Stage = Stage;

/// The G/L accounts a partner sets up: re-billed expenses, services, fees.
pub const ACCOUNTS: [&str; 3] = ["40100", "40250", "40400"];

/// The firm's company.
pub fn company(firm: &DemoFirm) -> BcSimConfig {
    let mut cfg = BcSimConfig {
        closed_through: Some(firm.lock_date),
        ..BcSimConfig::default()
    };
    cfg.items = ROLES.iter().map(|r| r.2.to_string()).collect();
    cfg.accounts = ACCOUNTS.iter().map(|a| a.to_string()).collect();
    cfg.tax_groups.insert(
        "TAXABLE".into(),
        SALES_TAX_PERCENT.parse().expect("a decimal"),
    );
    cfg.tax_groups.insert("NONTAXABLE".into(), Decimal::ZERO);
    cfg.dimensions.insert(
        "DEPARTMENT".into(),
        DEPARTMENTS.iter().map(|d| d.0.to_string()).collect(),
    );
    cfg
}

#[async_trait]
impl ErpStage for Stage {
    fn connector(&self) -> &'static str {
        "businesscentral"
    }

    async fn start(&self, firm: &DemoFirm) -> std::io::Result<Box<dyn SimErp>> {
        Ok(Box::new(OnStage {
            bc: BcSim::start(company(firm)).await?,
        }))
    }
}

pub struct OnStage {
    pub bc: BcSim,
}

#[async_trait]
impl SimErp for OnStage {
    fn connector(&self) -> &'static str {
        "businesscentral"
    }

    fn base_url(&self) -> String {
        self.bc.base_url()
    }

    fn settings(&self) -> toml::Table {
        let c = self.bc.config();
        table([
            ("tenant_id", T::String(c.tenant_id.clone())),
            ("company_id", T::String(c.company_id.clone())),
            ("client_id", T::String(c.client_id.clone())),
            ("base_url", T::String(self.bc.base_url())),
            ("token_url", T::String(self.bc.token_url())),
            ("timeout_seconds", T::Integer(10)),
        ])
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "businesscentral.client_secret",
                self.bc.config().client_secret.clone(),
            ),
            (
                "businesscentral.client_state",
                "ferry-bc-client-state-demo".into(),
            ),
        ]
    }

    /// Ferry subscribes itself (through its connector); the company sends
    /// notifications from then on.
    async fn subscribe(&self, _url: &str) -> Result<bool, String> {
        Ok(true)
    }

    fn payable(&self) -> Vec<(String, Decimal)> {
        self.bc
            .documents("salesInvoices")
            .into_iter()
            .filter(|d| d["status"] == "Open")
            .filter_map(|d| {
                Some((
                    d["id"].as_str()?.to_string(),
                    dec(&d["totalAmountIncludingTax"]),
                ))
            })
            .collect()
    }

    async fn pay(&self, invoice: &str, amount: Decimal, date: NaiveDate) -> Result<(), String> {
        self.bc.pay(invoice, amount, date).await
    }

    async fn approve(&self, reference: &str) -> Result<bool, String> {
        Ok(self.bc.post_draft(reference).await)
    }

    fn refuses_edits_after_approval(&self) -> bool {
        true
    }

    /// Business Central lets two customers share a name (the number is the key).
    fn enforces(&self, rule: ErpRule) -> bool {
        rule != ErpRule::UniqueCustomerNames
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn inject(&self, fault: Fault) {
        let mut f = BcFaults::default();
        match fault {
            Fault::NotJson => f.garbage_next = 1,
            Fault::ServerError => f.fail_next = 1,
            Fault::Throttled => f.throttle_next = 1,
        }
        self.bc.set_faults(f);
    }
}
