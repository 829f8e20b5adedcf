//! ConnectWise on the demo's stage: the firm as ConnectWise holds it, changes
//! made as ConnectWise users make them, each announced by a signed callback.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use toml::Value as T;

use super::{CwFaults, CwSim, CwSimConfig, Kind};
use crate::demo::DemoFirm;
use crate::stage::{Delivery, Expected, Fault, PsaStage, SimPsa, SimTime, table};

pub struct Stage;

pub static STAGE: Stage = Stage;

#[async_trait]
impl PsaStage for Stage {
    fn connector(&self) -> &'static str {
        "connectwise"
    }

    async fn start(&self, firm: &DemoFirm) -> std::io::Result<Box<dyn SimPsa>> {
        let cw = CwSim::start(CwSimConfig::default()).await?;
        firm.seed(&cw);
        Ok(Box::new(OnStage {
            cw,
            firm: firm.clone(),
        }))
    }
}

/// The ConnectWise simulator with the firm in it.
pub struct OnStage {
    pub cw: CwSim,
    firm: DemoFirm,
}

/// The `[psa.connectwise]` settings that reach `cw`.
pub fn settings(cw: &CwSim) -> toml::Table {
    table([
        ("base_url", T::String(cw.base_url())),
        ("company_id", T::String(cw.config().company_id.clone())),
        ("home_currency", T::String("USD".into())),
        ("key_url_origins", T::Array(vec![T::String(cw.origin())])),
        ("max_callback_age_seconds", T::Integer(24 * 3600)),
        ("timeout_seconds", T::Integer(10)),
    ])
}

/// The secrets those settings need.
pub fn secrets(cw: &CwSim) -> Vec<(&'static str, String)> {
    let c = cw.config();
    vec![
        ("connectwise.public_key", c.public_key.clone()),
        ("connectwise.private_key", c.private_key.clone()),
        ("connectwise.client_id", c.client_id.clone()),
    ]
}

/// Registers `url` for callbacks on every record type (`POST /system/callbacks`).
pub async fn subscribe(cw: &CwSim, url: &str) -> Result<(), String> {
    let http = reqwest::Client::new();
    let c = cw.config();
    for kind in Kind::ALL {
        http.post(format!("{}/system/callbacks", cw.base_url()))
            .basic_auth(
                format!("{}+{}", c.company_id, c.public_key),
                Some(&c.private_key),
            )
            .header("clientId", &c.client_id)
            .json(
                &json!({ "url": url, "type": kind.callback_type(), "level": "owner",
                           "objectId": 1, "description": "Ferry" }),
            )
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("subscribing to ConnectWise {kind:?} callbacks: {e}"))?;
    }
    Ok(())
}

fn id(s: &str) -> i64 {
    s.parse().unwrap_or_default()
}

fn dec(v: &Value) -> Option<Decimal> {
    v.as_number()
        .and_then(|n| Decimal::from_str(&n.to_string()).ok())
}

#[async_trait]
impl SimPsa for OnStage {
    fn connector(&self) -> &'static str {
        "connectwise"
    }

    fn base_url(&self) -> String {
        self.cw.base_url()
    }

    fn settings(&self) -> toml::Table {
        table([
            ("base_url", T::String(self.cw.base_url())),
            ("company_id", T::String(self.cw.config().company_id.clone())),
            ("home_currency", T::String("USD".into())),
            (
                "key_url_origins",
                T::Array(vec![T::String(self.cw.origin())]),
            ),
            ("max_callback_age_seconds", T::Integer(24 * 3600)),
            ("timeout_seconds", T::Integer(10)),
        ])
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        let c = self.cw.config();
        vec![
            ("connectwise.public_key", c.public_key.clone()),
            ("connectwise.private_key", c.private_key.clone()),
            ("connectwise.client_id", c.client_id.clone()),
        ]
    }

    /// `POST /system/callbacks` for each record type.
    async fn subscribe(&self, url: &str) -> Result<bool, String> {
        let http = reqwest::Client::new();
        let c = self.cw.config();
        for kind in Kind::ALL {
            http.post(format!("{}/system/callbacks", self.cw.base_url()))
                .basic_auth(
                    format!("{}+{}", c.company_id, c.public_key),
                    Some(&c.private_key),
                )
                .header("clientId", &c.client_id)
                .json(
                    &json!({ "url": url, "type": kind.callback_type(), "level": "owner",
                               "objectId": 1, "description": "Ferry" }),
                )
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| format!("subscribing to ConnectWise {kind:?} callbacks: {e}"))?;
        }
        Ok(true)
    }

    fn records(&self) -> u64 {
        let f = &self.firm;
        (f.companies.len() + f.projects.len() + f.time.len() + f.expenses.len() + f.invoices.len())
            as u64
    }

    fn time(&self) -> Vec<SimTime> {
        self.cw
            .all(Kind::Time)
            .iter()
            .filter_map(|t| {
                Some(SimTime {
                    id: t["id"].as_i64()?.to_string(),
                    project: t["project"]["id"].as_i64()?.to_string(),
                    date: NaiveDate::parse_from_str(
                        t["timeStart"].as_str()?.get(..10)?,
                        "%Y-%m-%d",
                    )
                    .ok()?,
                    hours: dec(&t["actualHours"])?,
                    approved: t["status"] == "ApprovedByTierTwo",
                    billable: t["billableOption"] == "Billable",
                })
            })
            .collect()
    }

    fn bad(&self) -> Vec<Expected> {
        self.firm
            .bad
            .iter()
            .map(|b| Expected {
                key: b.record_key(),
                id: b.id.to_string(),
                reason: b.expect_reason,
                what: b.what.clone(),
                erp_rule: b.erp_rule,
            })
            .collect()
    }

    async fn deliver(&self, how: Delivery) {
        match how {
            Delivery::Normal => {
                self.cw.flush_held().await;
                self.cw.set_faults(CwFaults::default());
            }
            Delivery::Duplicated => self.cw.set_faults(CwFaults {
                duplicate_callbacks: true,
                ..CwFaults::default()
            }),
            Delivery::Reordered => self.cw.set_faults(CwFaults {
                reorder_callbacks: true,
                ..CwFaults::default()
            }),
        }
    }

    async fn approve_time(&self, id: &str) {
        self.cw
            .update(Kind::Time, self::id(id), |t| {
                t["status"] = json!("ApprovedByTierTwo")
            })
            .await;
    }

    async fn set_hours(&self, id: &str, hours: Decimal) {
        self.cw
            .update(Kind::Time, self::id(id), |t| {
                t["actualHours"] = crate::num(hours)
            })
            .await;
    }

    async fn log_time(&self, like: &str, day: NaiveDate, hours: Decimal) {
        let Some(mut n) = self.cw.get(Kind::Time, id(like)) else {
            return;
        };
        if let Some(o) = n.as_object_mut() {
            o.remove("id");
            o.remove("_info");
        }
        n["timeStart"] = json!(format!("{day}T16:00:00Z"));
        n["actualHours"] = crate::num(hours);
        n["notes"] = json!("late entry");
        self.cw.create(Kind::Time, n).await;
    }

    async fn delete_time(&self, id: &str) {
        self.cw.delete(Kind::Time, self::id(id)).await;
    }

    async fn add_late(&self) {
        self.firm.add_late(&self.cw).await;
    }

    fn paid_invoices(&self) -> usize {
        self.cw
            .all(Kind::Invoice)
            .iter()
            .filter_map(|i| i["id"].as_i64())
            .filter(|i| !self.cw.payments(*i).is_empty())
            .count()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn inject(&self, fault: Fault) {
        let one = |f: &mut CwFaults| match fault {
            Fault::NotJson => f.garbage_next = 1,
            Fault::ServerError => f.fail_next = 1,
            Fault::Throttled => f.throttle_next = 1,
        };
        let mut f = CwFaults::default();
        one(&mut f);
        self.cw.set_faults(f);
    }
}
