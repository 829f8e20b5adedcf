//! The rate budget per ERP account: one item per account (`pk =
//! {account}#budget`, and account keys start with the tenant's ERP
//! organisation). It holds the admitted calls of the last minute (exact
//! instants), per-minute counts for the last day, and any pause the ERP asked
//! for. Every acquire is a read and a write conditional on `rev`, so processes
//! sharing an account never admit more than the limits together.
//!
//! The day window counts whole minutes: a minute's calls leave the window when
//! the minute's end is a day old, which is never earlier than the exact window.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ferry_core::PortError;
use ferry_core::ports::{Acquire, RateBudget, RateLimits, Usage};
use serde::{Deserialize, Serialize};

use crate::table::{Table, us, versioned};

const PORT: &str = "budget";
const MINUTE_US: i64 = 60_000_000;
const DAY_US: i64 = 86_400_000_000;

#[derive(Default, Serialize, Deserialize)]
struct Item {
    pk: String,
    sk: String,
    rev: i64,
    /// Instants (µs) of calls admitted in the last minute.
    #[serde(default)]
    minute: Vec<i64>,
    /// Calls admitted per minute (key: minute start in µs, as text) over the last day.
    #[serde(default)]
    day: BTreeMap<String, u32>,
    #[serde(default)]
    paused_until_us: i64,
}

versioned!(Item);

impl Item {
    fn new(account: &str) -> Item {
        Item {
            pk: pk(account),
            sk: "-".into(),
            ..Item::default()
        }
    }

    fn prune(&mut self, now: i64) {
        self.minute.retain(|t| *t > now - MINUTE_US);
        self.day.retain(|k, _| {
            k.parse::<i64>()
                .is_ok_and(|start| start + MINUTE_US > now - DAY_US)
        });
    }

    fn day_total(&self) -> u32 {
        self.day.values().sum()
    }
}

pub struct DynamoBudget {
    pub(crate) table: Table,
}

fn pk(account: &str) -> String {
    format!("{account}#budget")
}

fn wait(us: i64) -> Acquire {
    Acquire::Wait(Duration::from_micros(us.max(1).unsigned_abs()))
}

impl DynamoBudget {
    async fn read(&self, account: &str, op: &'static str) -> Result<Option<Item>, PortError> {
        self.table.get(PORT, op, &pk(account), "-").await
    }
}

#[async_trait]
impl RateBudget for DynamoBudget {
    async fn acquire(
        &self,
        account: &str,
        limits: &RateLimits,
        now: DateTime<Utc>,
    ) -> Result<Acquire, PortError> {
        let now = us(now);
        let account_pk = pk(account);
        self.table
            .update(
                PORT,
                "acquire",
                &account_pk,
                "-",
                |current: Option<Item>| {
                    let mut item = current.unwrap_or_else(|| Item::new(account));
                    if item.paused_until_us > now {
                        return Ok((None, wait(item.paused_until_us - now)));
                    }
                    item.prune(now);
                    if item.minute.len() >= limits.per_minute as usize {
                        let oldest = item.minute.iter().min().copied().unwrap_or(now);
                        return Ok((None, wait(oldest + MINUTE_US - now)));
                    }
                    if item.day_total() >= limits.per_day {
                        let oldest = item
                            .day
                            .keys()
                            .filter_map(|k| k.parse::<i64>().ok())
                            .min()
                            .unwrap_or(now);
                        return Ok((None, wait(oldest + MINUTE_US + DAY_US - now)));
                    }
                    item.minute.push(now);
                    *item
                        .day
                        .entry((now - now.rem_euclid(MINUTE_US)).to_string())
                        .or_default() += 1;
                    Ok((Some(item), Acquire::Granted))
                },
            )
            .await
    }

    async fn pause_until(&self, account: &str, until: DateTime<Utc>) -> Result<(), PortError> {
        let until = us(until);
        self.table
            .update(
                PORT,
                "pause_until",
                &pk(account),
                "-",
                |current: Option<Item>| {
                    let mut item = current.unwrap_or_else(|| Item::new(account));
                    if item.paused_until_us >= until {
                        return Ok((None, ()));
                    }
                    item.paused_until_us = until;
                    Ok((Some(item), ()))
                },
            )
            .await
    }

    async fn usage(&self, account: &str, now: DateTime<Utc>) -> Result<Usage, PortError> {
        let now = us(now);
        let Some(mut item) = self.read(account, "usage").await? else {
            return Ok(Usage::default());
        };
        item.prune(now);
        Ok(Usage {
            last_minute: u32::try_from(item.minute.len()).unwrap_or(u32::MAX),
            last_day: item.day_total(),
        })
    }
}
