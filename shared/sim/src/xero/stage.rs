//! Xero on the demo's stage: the firm's organisation (items, accounts, sales
//! tax, departments as tracking, the month before closed), customers paying
//! invoices and finance approving drafts, each announced by a signed webhook.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use toml::Value as T;

use super::{XeroFaults, XeroSim};
use crate::demo::DemoFirm;
use crate::stage::{ErpStage, Fault, SimErp, table};

pub struct Stage;

pub static STAGE: Stage = Stage;

#[async_trait]
impl ErpStage for Stage {
    fn connector(&self) -> &'static str {
        "xero"
    }

    async fn start(&self, firm: &DemoFirm) -> std::io::Result<Box<dyn SimErp>> {
        Ok(Box::new(OnStage {
            xero: XeroSim::start(firm.xero_config()).await?,
        }))
    }
}

/// The `[erp.xero]` settings that reach `xero`.
pub fn settings(xero: &XeroSim) -> toml::Table {
    table([
        ("base_url", T::String(xero.base_url())),
        ("tenant_id", T::String(xero.config().tenant_id.clone())),
        ("timeout_seconds", T::Integer(10)),
        ("minute_headroom", T::Integer(5)),
        ("batch_size", T::Integer(50)),
        ("token_url", T::String(xero.token_url())),
    ])
}

/// The secrets those settings need.
pub fn secrets(xero: &XeroSim) -> Vec<(&'static str, String)> {
    vec![
        ("xero.access_token", xero.config().token.clone()),
        ("xero.webhook_key", xero.config().webhook_key.clone()),
    ]
}

pub struct OnStage {
    pub xero: XeroSim,
}

#[async_trait]
impl SimErp for OnStage {
    fn connector(&self) -> &'static str {
        "xero"
    }

    fn base_url(&self) -> String {
        self.xero.base_url()
    }

    fn settings(&self) -> toml::Table {
        settings(&self.xero)
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        secrets(&self.xero)
    }

    async fn subscribe(&self, url: &str) -> Result<bool, String> {
        self.xero.set_webhook(Some(url.to_string()));
        Ok(true)
    }

    fn payable(&self) -> Vec<(String, Decimal)> {
        self.xero
            .invoices()
            .into_iter()
            .filter(|i| i["Status"] == "AUTHORISED")
            .filter_map(|i| {
                let total = i["Total"]
                    .as_number()
                    .and_then(|x| Decimal::from_str(&x.to_string()).ok())?;
                Some((i["InvoiceID"].as_str()?.to_string(), total))
            })
            .collect()
    }

    async fn pay(&self, invoice: &str, amount: Decimal, date: NaiveDate) -> Result<(), String> {
        self.xero.pay_invoice(invoice, amount, date).await.map(drop)
    }

    async fn approve(&self, reference: &str) -> Result<bool, String> {
        let Some(id) = self
            .xero
            .invoices()
            .into_iter()
            .find(|i| i["Reference"] == reference && i["Status"] == "DRAFT")
            .and_then(|i| i["InvoiceID"].as_str().map(String::from))
        else {
            return Ok(false);
        };
        self.xero.authorise(&id).await.map(|()| true)
    }

    fn refuses_edits_after_approval(&self) -> bool {
        true
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn inject(&self, fault: Fault) {
        let mut f = XeroFaults {
            retry_after_secs: 1,
            ..XeroFaults::default()
        };
        match fault {
            Fault::NotJson => f.garbage_next = 1,
            Fault::ServerError => f.fail_next = 1,
            Fault::Throttled => f.throttle_next = 1,
        }
        self.xero.set_faults(f);
    }
}
