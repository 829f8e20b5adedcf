//! The mapping template file format (TOML). A partner base and a customer
//! override are merged key by key (the override wins; tables merge, arrays and
//! values replace), then the merged document is read into these types.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ferry_canon::Rounding;
use serde::{Deserialize, Serialize};

use crate::ports::Owner;

/// The whole template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub template: Header,
    #[serde(default)]
    pub defaults: Defaults,
    /// Rules per domain, keyed by domain name (`customers`, `time_entries`, …).
    #[serde(default)]
    pub domains: BTreeMap<String, DomainRule>,
    /// Named lookup tables, e.g. PSA work role → ERP item code. The key `"*"` is the fallback.
    #[serde(default)]
    pub value_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// How each financial dimension is derived, keyed by dimension name.
    #[serde(default)]
    pub dimensions: BTreeMap<String, DimensionRule>,
    #[serde(default)]
    pub tax: TaxRule,
    #[serde(default)]
    pub periods: PeriodRule,
    #[serde(default)]
    pub bounds: Bounds,
}

/// Identity and version of the template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: String,
    pub version: String,
    /// The PSA connector this template reads from (e.g. `connectwise`).
    pub psa: String,
    /// The ERP connector this template writes to (e.g. `xero`).
    pub erp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Set in a customer override: who the customer is. Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
}

/// Defaults that apply to every document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Used when a record carries no currency.
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default)]
    pub rounding: Rounding,
    #[serde(default = "default_terms")]
    pub payment_terms_days: u32,
    /// Prefix of Ferry's references on ERP documents.
    #[serde(default = "default_prefix")]
    pub reference_prefix: String,
    /// Which currency time, expenses and billing events are billed in.
    #[serde(default)]
    pub billing_currency: BillingCurrency,
    /// The firm's time zone (IANA name, e.g. `Europe/Amsterdam`): a record the
    /// PSA stamps with an instant belongs to the firm's local date, for its
    /// document, its period, the closed-period gate and reconciliation alike.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
}

/// Which currency a line from the PSA's own prices is billed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BillingCurrency {
    /// The customer's currency, where the customer has one: PSAs such as
    /// ConnectWise price time and expenses in the customer's currency and do not
    /// repeat it on each entry. Rates the template itself gives are in
    /// `defaults.currency` and are never re-labelled: for a customer billed in
    /// another currency they are an exception.
    #[default]
    Customer,
    /// The currency each record states; a record whose currency is not its
    /// customer's is an exception (Ferry never converts amounts).
    Record,
}

/// Plausibility bounds: a record outside them is an exception naming the field
/// and the bound, not a document. Amounts are decimals written as strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Highest hourly bill rate, in any currency.
    #[serde(default = "default_max_rate")]
    pub max_hourly_rate: String,
    /// Highest amount of one expense, billing event or PSA invoice.
    #[serde(default = "default_max_amount")]
    pub max_amount: String,
    /// Latest accounting date accepted, in days after the clock's today.
    #[serde(default = "default_days_ahead")]
    pub max_days_ahead: u32,
    /// Earliest accounting date accepted, in days before the clock's today.
    #[serde(default = "default_days_back")]
    pub max_days_back: u32,
}

fn default_max_rate() -> String {
    "5000".into()
}
fn default_max_amount() -> String {
    "10000000".into()
}
fn default_days_ahead() -> u32 {
    62
}
fn default_days_back() -> u32 {
    3 * 366
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_hourly_rate: default_max_rate(),
            max_amount: default_max_amount(),
            max_days_ahead: default_days_ahead(),
            max_days_back: default_days_back(),
        }
    }
}

fn default_currency() -> String {
    "USD".into()
}
fn default_terms() -> u32 {
    30
}
fn default_prefix() -> String {
    "FERRY".into()
}
fn default_time_zone() -> String {
    "UTC".into()
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            currency: default_currency(),
            rounding: Rounding::default(),
            payment_terms_days: default_terms(),
            reference_prefix: default_prefix(),
            billing_currency: BillingCurrency::default(),
            time_zone: default_time_zone(),
        }
    }
}

/// Which way a domain flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// PSA records become ERP documents.
    PsaToErp,
    /// ERP records flow back to the PSA (payment status).
    ErpToPsa,
    /// Read for lookups (e.g. projects for time entries) but never posted.
    Reference,
    /// Not synced.
    None,
}

/// Which system is the source of truth for a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Authority {
    Psa,
    Erp,
}

/// One ERP document per source record, or one per summary group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    #[default]
    PerRecord,
    Summary,
}

/// The rule for one domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainRule {
    pub direction: Direction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<Authority>,
    /// Who owns this domain's exceptions when the failure is about the record itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    #[serde(default)]
    pub granularity: Granularity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryRule>,
    /// Finance gate: only approved records post; others are skipped with the reason.
    #[serde(default)]
    pub approved_only: bool,
    #[serde(default)]
    pub billable_only: bool,
    /// Further skip rules: a CEL expression and the reason recorded when it is true.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_when: Vec<SkipRule>,
    /// ERP item code for lines built from this domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ValueSource>,
    /// ERP account code for lines built from this domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<ValueSource>,
    /// Hourly bill rate for time entries that carry none (PSAs without rates,
    /// such as Redmine): a decimal, fixed or looked up in a value map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<ValueSource>,
    /// Line description: a CEL expression producing a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Dimensions that must resolve, or the record becomes an exception.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_dimensions: Vec<String>,
    /// Also record each time entry as a timesheet line on its project in the ERP
    /// (ERPs that keep timesheets, such as Tryton). Needs projects to post.
    #[serde(default)]
    pub timesheets: bool,
    /// Status to create invoices in (`draft` or `authorised`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_status: Option<String>,
}

/// A skip rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipRule {
    /// CEL expression over `record`, `project`, `account`; true means skip.
    pub when: String,
    pub reason: String,
}

/// Where a value comes from: a CEL expression, optionally looked up in a value map,
/// with a default when the expression yields nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// A fixed value (instead of `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What a summary document is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryKey {
    Project,
    Period,
}

/// Summarised posting: records fold into one document per group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryRule {
    /// Domains naming the same document share it (time and expenses on one invoice).
    pub document: String,
    #[serde(default = "default_group_by")]
    pub group_by: Vec<SummaryKey>,
    /// Post the document this long after the first change that made it differ
    /// from the ERP; later changes in the window ride along. At most one post
    /// per group per window, however busy the group is.
    #[serde(default = "default_coalesce")]
    pub coalesce_seconds: u64,
}

fn default_group_by() -> Vec<SummaryKey> {
    vec![SummaryKey::Project, SummaryKey::Period]
}
fn default_coalesce() -> u64 {
    2
}

/// How a dimension is derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionRule {
    #[serde(flatten)]
    pub source: ValueSource,
    /// The ERP's name for this dimension (a Xero tracking category name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erp_category: Option<String>,
}

/// How tax codes map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxRule {
    #[serde(flatten)]
    pub source: ValueSource,
    /// When true, a record whose tax code does not map is an exception.
    #[serde(default)]
    pub required: bool,
}

impl Default for TaxRule {
    fn default() -> Self {
        TaxRule {
            source: ValueSource {
                from: None,
                map: None,
                default: None,
                value: None,
            },
            required: false,
        }
    }
}

/// Closed accounting periods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodRule {
    /// Records dated on or before this date are refused (finance owns them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_through: Option<NaiveDate>,
    /// Also honour the ERP's own lock date.
    #[serde(default = "default_true")]
    pub use_erp_lock_date: bool,
}

fn default_true() -> bool {
    true
}

impl Default for PeriodRule {
    fn default() -> Self {
        PeriodRule {
            closed_through: None,
            use_erp_lock_date: true,
        }
    }
}
