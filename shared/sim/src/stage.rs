//! The demo's stage: every simulator the demo can run a firm on, PSA or ERP,
//! behind one shape. Each simulator folder has a `stage.rs` that starts its
//! server with the demo firm in it and does, in its vendor's terms, what the
//! people of the firm do during the demo (approve time, fix it, log more,
//! delete some; record payments, approve an invoice). `ferry run --psa X --erp Y`
//! runs on any pair listed here. Adding a simulator is its folder plus one line
//! in [`PSAS`] or [`ERPS`].

use async_trait::async_trait;
use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::demo::DemoFirm;

/// Every PSA simulator the demo can run on.
pub static PSAS: &[&dyn PsaStage] = &[
    &crate::connectwise::stage::STAGE,
    &crate::harvest::stage::STAGE,
];

/// Every ERP simulator the demo can run on.
pub static ERPS: &[&dyn ErpStage] = &[
    &crate::xero::stage::STAGE,
    &crate::netsuite::stage::STAGE,
    &crate::businesscentral::stage::STAGE,
];

/// The PSA simulator for connector `name`.
pub fn psa(name: &str) -> Option<&'static dyn PsaStage> {
    PSAS.iter().copied().find(|s| s.connector() == name)
}

/// The ERP simulator for connector `name`.
pub fn erp(name: &str) -> Option<&'static dyn ErpStage> {
    ERPS.iter().copied().find(|s| s.connector() == name)
}

/// Starts a PSA simulator.
#[async_trait]
pub trait PsaStage: Sync {
    /// The connector it stands in for (its registry name).
    fn connector(&self) -> &'static str;
    /// Starts the simulator on loopback with `firm` in it, as the firm had it
    /// before Ferry was connected.
    async fn start(&self, firm: &DemoFirm) -> std::io::Result<Box<dyn SimPsa>>;
}

/// Starts an ERP simulator.
#[async_trait]
pub trait ErpStage: Sync {
    fn connector(&self) -> &'static str;
    /// Starts the simulator, its books set up for `firm` (items, accounts, tax,
    /// dimensions, the period closed before the firm's month).
    async fn start(&self, firm: &DemoFirm) -> std::io::Result<Box<dyn SimErp>>;
}

/// A time entry as the demo sees it, in any PSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTime {
    pub id: String,
    pub project: String,
    pub date: NaiveDate,
    pub hours: Decimal,
    pub approved: bool,
    pub billable: bool,
}

/// An exception a bad record must raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Ferry's record key (`time_entries/harvest:5000123`).
    pub key: String,
    pub id: String,
    pub reason: &'static str,
    pub what: String,
    /// The ERP rule that makes it bad, if it is the ERP's to refuse.
    pub erp_rule: Option<crate::demo::ErpRule>,
}

/// How a webhook PSA delivers while the demo edits records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Normal,
    /// Every notice twice.
    Duplicated,
    /// Notices pairwise out of order.
    Reordered,
}

/// A fault a simulator puts in its next answers (the conformance suite's
/// malformed and refused answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 200 with a body that is not JSON.
    NotJson,
    /// 500.
    ServerError,
    /// 429 with `Retry-After`.
    Throttled,
}

impl Fault {
    pub const ALL: [Fault; 3] = [Fault::NotJson, Fault::ServerError, Fault::Throttled];
}

/// A running PSA simulator the demo drives.
#[async_trait]
pub trait SimPsa: Send + Sync {
    fn connector(&self) -> &'static str;
    /// Where the simulator serves its API (for people reading the demo's output).
    fn base_url(&self) -> String;
    /// The tenant file's `[psa.<connector>]` settings that reach this simulator.
    fn settings(&self) -> toml::Table;
    /// The secrets those settings need, with their values.
    fn secrets(&self) -> Vec<(&'static str, String)>;
    /// Registers Ferry's webhook URL; `false` when the vendor sends none (Ferry polls it).
    async fn subscribe(&self, url: &str) -> Result<bool, String>;
    /// Records the firm put here (for progress).
    fn records(&self) -> u64;
    /// The firm's time entries.
    fn time(&self) -> Vec<SimTime>;
    /// The firm's bad records as this PSA holds them, and what each must raise.
    fn bad(&self) -> Vec<Expected>;
    /// How notices are delivered from now on (webhook PSAs; others ignore it).
    async fn deliver(&self, how: Delivery);
    /// A person approves an entry.
    async fn approve_time(&self, id: &str);
    /// A person corrects an entry's hours.
    async fn set_hours(&self, id: &str, hours: Decimal);
    /// A person logs another entry like `like`, on `day`.
    async fn log_time(&self, like: &str, day: NaiveDate, hours: Decimal);
    /// A person deletes an entry.
    async fn delete_time(&self, id: &str);
    /// Records created after the first sync (a customer named like another one, its invoice).
    async fn add_late(&self);
    /// Payments written back on a PSA invoice, if any (for the demo's report).
    fn paid_invoices(&self) -> usize;
    /// Puts `fault` in the next answer.
    fn inject(&self, fault: Fault);
    /// The simulator itself, for tests that turn its own knobs.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A running ERP simulator the demo drives.
#[async_trait]
pub trait SimErp: Send + Sync {
    fn connector(&self) -> &'static str;
    fn base_url(&self) -> String;
    fn settings(&self) -> toml::Table;
    fn secrets(&self) -> Vec<(&'static str, String)>;
    async fn subscribe(&self, url: &str) -> Result<bool, String>;
    /// Posted invoices a customer can pay: ERP id and total.
    fn payable(&self) -> Vec<(String, Decimal)>;
    /// A customer pays `amount` of an invoice on `date`.
    async fn pay(&self, invoice: &str, amount: Decimal, date: NaiveDate) -> Result<(), String>;
    /// Finance approves (posts) the draft with Ferry's `reference`; `false`
    /// when no such draft exists.
    async fn approve(&self, reference: &str) -> Result<bool, String>;
    /// Whether the ERP refuses to change a document finance approved (Xero
    /// does; NetSuite changes an approved invoice until it is paid).
    fn refuses_edits_after_approval(&self) -> bool;
    /// Whether the ERP enforces `rule` (so a record breaking it is refused).
    fn enforces(&self, _rule: crate::demo::ErpRule) -> bool {
        true
    }
    /// Puts `fault` in the next answer.
    fn inject(&self, fault: Fault);
    /// The simulator itself, for tests that turn its own knobs.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A settings table from `key = value` pairs.
pub fn table<const N: usize>(pairs: [(&str, toml::Value); N]) -> toml::Table {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
