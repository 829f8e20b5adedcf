//! The canonical records, one type per synced domain. Vendor connectors map
//! their raw types into these through fallible conversions; nothing here
//! knows about any vendor.
//!
//! Size: the canonical model's record types, declarations only; one place so
//! the schema (`ferry schema`) reads as one.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::{RecordMeta, SourceRef};
use crate::money::{Currency, Money};
use crate::schema::DecimalString;

/// A value of one financial dimension, e.g. department `ENG` "Engineering".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct DimensionValue {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl DimensionValue {
    pub fn new(code: impl Into<String>) -> Self {
        DimensionValue {
            code: code.into(),
            name: None,
        }
    }
}

/// The financial dimensions the product understands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DimensionKind {
    LegalEntity,
    Department,
    CostCenter,
    Class,
    Location,
}

impl DimensionKind {
    pub const ALL: [DimensionKind; 5] = [
        DimensionKind::LegalEntity,
        DimensionKind::Department,
        DimensionKind::CostCenter,
        DimensionKind::Class,
        DimensionKind::Location,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            DimensionKind::LegalEntity => "legal_entity",
            DimensionKind::Department => "department",
            DimensionKind::CostCenter => "cost_center",
            DimensionKind::Class => "class",
            DimensionKind::Location => "location",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The dimensions tagged on a record or line. Unset means "not known here";
/// a template decides which are required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Dimensions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_entity: Option<DimensionValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<DimensionValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<DimensionValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<DimensionValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<DimensionValue>,
}

impl Dimensions {
    pub fn get(&self, kind: DimensionKind) -> Option<&DimensionValue> {
        match kind {
            DimensionKind::LegalEntity => self.legal_entity.as_ref(),
            DimensionKind::Department => self.department.as_ref(),
            DimensionKind::CostCenter => self.cost_center.as_ref(),
            DimensionKind::Class => self.class.as_ref(),
            DimensionKind::Location => self.location.as_ref(),
        }
    }

    pub fn set(&mut self, kind: DimensionKind, value: Option<DimensionValue>) {
        let slot = match kind {
            DimensionKind::LegalEntity => &mut self.legal_entity,
            DimensionKind::Department => &mut self.department,
            DimensionKind::CostCenter => &mut self.cost_center,
            DimensionKind::Class => &mut self.class,
            DimensionKind::Location => &mut self.location,
        };
        *slot = value;
    }
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 where the source gives one, otherwise the source's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// Active or not, for master data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActiveStatus {
    Active,
    Inactive,
}

/// A customer (account) the firm bills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Account {
    pub meta: RecordMeta,
    pub name: String,
    /// The short code the PSA shows (ConnectWise `identifier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub status: ActiveStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// The source system's tax code name for this customer, mapped by the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_terms_days: Option<u32>,
    #[serde(default)]
    pub dimensions: Dimensions,
}

/// A person at a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Contact {
    pub meta: RecordMeta,
    pub account: SourceRef,
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default)]
    pub primary: bool,
}

/// How a project is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingType {
    TimeAndMaterials,
    FixedFee,
    Milestone,
    NonBillable,
}

impl BillingType {
    pub fn as_str(&self) -> &'static str {
        match self {
            BillingType::TimeAndMaterials => "time_and_materials",
            BillingType::FixedFee => "fixed_fee",
            BillingType::Milestone => "milestone",
            BillingType::NonBillable => "non_billable",
        }
    }
}

/// Lifecycle of a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    Open,
    OnHold,
    Closed,
}

/// A task inside a phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Task {
    pub id: String,
    pub name: String,
    #[serde(default = "default_true")]
    pub billable: bool,
}

fn default_true() -> bool {
    true
}

/// A phase of a project, holding tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Phase {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Task>,
}

/// Milestone status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneStatus {
    Planned,
    Reached,
    Billed,
}

/// A billable milestone of a fixed-fee or milestone project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Milestone {
    pub id: String,
    pub name: String,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
    pub status: MilestoneStatus,
}

/// A project, its structure and billing type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Project {
    pub meta: RecordMeta,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub account: SourceRef,
    pub billing_type: BillingType,
    pub status: ProjectStatus,
    pub currency: Currency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<SourceRef>,
    #[serde(default)]
    pub dimensions: Dimensions,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub milestones: Vec<Milestone>,
    /// Source custom fields by name, as text, for template value maps.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_fields: BTreeMap<String, String>,
}

/// A role (work role) with its standard rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Role {
    pub meta: RecordMeta,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_rate: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_rate: Option<Money>,
    pub status: ActiveStatus,
}

/// A person (or contractor) whose time and expenses are recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Resource {
    pub meta: RecordMeta,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_role: Option<SourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_rate: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_rate: Option<Money>,
    pub status: ActiveStatus,
    #[serde(default)]
    pub dimensions: Dimensions,
}

/// Approval state of time and expenses. Only `Approved` may post (finance gate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Draft,
    Submitted,
    Approved,
    Rejected,
}

impl ApprovalStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ApprovalStatus::Draft => "draft",
            ApprovalStatus::Submitted => "submitted",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
        }
    }
}

/// Hours worked by a resource on a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TimeEntry {
    pub meta: RecordMeta,
    pub resource: SourceRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<SourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<SourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<SourceRef>,
    /// The work role the hours were worked in; templates map it to an ERP item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_type: Option<String>,
    /// The accounting date the hours belong to: the firm's local date.
    pub date: NaiveDate,
    /// When the work started, where the PSA stamps an instant rather than a
    /// date; the accounting date is then its date in the firm's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[schemars(with = "DecimalString")]
    pub hours: Decimal,
    pub billable: bool,
    pub approval: ApprovalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_rate: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_rate: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The PSA invoice this entry was billed on, if the PSA billed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<SourceRef>,
    #[serde(default)]
    pub dimensions: Dimensions,
}

/// A cost incurred by a resource, possibly re-billed to the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Expense {
    pub meta: RecordMeta,
    pub resource: SourceRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<SourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<SourceRef>,
    pub date: NaiveDate,
    /// The expense type (e.g. "Airfare"); templates map it to an ERP account.
    pub category: String,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax: Option<Money>,
    pub billable: bool,
    pub approval: ApprovalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default)]
    pub dimensions: Dimensions,
}

/// State of a billing event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BillingEventStatus {
    Pending,
    Ready,
    Invoiced,
}

/// Something billable that is not time or expense: a milestone reached, a fixed-fee instalment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BillingEvent {
    pub meta: RecordMeta,
    pub project: SourceRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestone: Option<String>,
    pub date: NaiveDate,
    pub description: String,
    pub amount: Money,
    pub status: BillingEventStatus,
}

/// Invoice or credit memo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    Invoice,
    CreditMemo,
}

/// Lifecycle of an invoice as the canonical model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Draft,
    Submitted,
    Authorised,
    Paid,
    Voided,
}

/// What a line bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Time,
    Expense,
    Fee,
    Product,
    Other,
}

/// One line of an invoice or credit memo. `amount` is `quantity × unit_price`
/// rounded to the currency by the template's rule; tax is separate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceLine {
    pub kind: LineKind,
    pub description: String,
    #[schemars(with = "DecimalString")]
    pub quantity: Decimal,
    pub unit_price: Money,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_amount: Option<Money>,
    #[serde(default)]
    pub dimensions: Dimensions,
}

/// An invoice or credit memo with its lines and tax. Amounts read as the
/// document does: what an invoice charges, what a credit memo credits, so both
/// are positive in the ordinary case. A document below zero for its kind (a
/// standard invoice of −50) keeps its sign; it is never made positive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Invoice {
    pub meta: RecordMeta,
    pub kind: InvoiceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    pub account: SourceRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<SourceRef>,
    pub issue_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    pub currency: Currency,
    pub lines: Vec<InvoiceLine>,
    pub subtotal: Money,
    pub tax_total: Money,
    pub total: Money,
    pub status: InvoiceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_paid: Option<Money>,
}

/// How much of a payment was applied to one invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaymentApplication {
    pub invoice: SourceRef,
    pub amount: Money,
}

/// Payment status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Applied,
    Reversed,
}

/// A customer payment, applied to invoices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Payment {
    pub meta: RecordMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<SourceRef>,
    pub date: NaiveDate,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub applications: Vec<PaymentApplication>,
    pub status: PaymentStatus,
}

/// One line of a purchase commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommitmentLine {
    pub description: String,
    #[schemars(with = "DecimalString")]
    pub quantity: Decimal,
    pub unit_cost: Money,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
}

/// Purchase commitment status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommitmentStatus {
    Draft,
    Approved,
    Received,
    Closed,
    Cancelled,
}

/// A purchase order or subcontract committed against a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PurchaseCommitment {
    pub meta: RecordMeta,
    pub supplier: SourceRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<SourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    pub date: NaiveDate,
    pub lines: Vec<CommitmentLine>,
    pub total: Money,
    pub status: CommitmentStatus,
    #[serde(default)]
    pub dimensions: Dimensions,
}

/// How revenue is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecognitionMethod {
    StraightLine,
    PercentComplete,
    Milestone,
    AsBilled,
}

/// Revenue planned or recognised in one accounting period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RevenueScheduleEntry {
    /// First day of the accounting period.
    pub period: NaiveDate,
    pub amount: Money,
    pub recognised: bool,
}

/// A project's (or invoice's) revenue spread over periods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RevenueSchedule {
    pub meta: RecordMeta,
    pub project: SourceRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<SourceRef>,
    pub method: RecognitionMethod,
    pub total: Money,
    pub entries: Vec<RevenueScheduleEntry>,
}

/// One rate of a tax code, valid over a date range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaxRate {
    pub name: String,
    /// Percent, e.g. `8.875`.
    #[schemars(with = "DecimalString")]
    pub percent: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_from: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_to: Option<NaiveDate>,
}

/// A tax code and its component rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaxCode {
    pub meta: RecordMeta,
    pub code: String,
    pub name: String,
    pub rates: Vec<TaxRate>,
    pub status: ActiveStatus,
}

impl TaxCode {
    /// The total percent effective on `date` (sum of component rates in force).
    pub fn percent_on(&self, date: NaiveDate) -> Decimal {
        self.rates
            .iter()
            .filter(|r| r.effective_from.is_none_or(|f| f <= date))
            .filter(|r| r.effective_to.is_none_or(|t| date <= t))
            .map(|r| r.percent)
            .sum()
    }
}

/// A value of a financial dimension as master data (e.g. the department list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Dimension {
    pub meta: RecordMeta,
    pub kind: DimensionKind,
    pub value: DimensionValue,
    pub status: ActiveStatus,
    /// The legal entity this value belongs to, where dimensions are per entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_entity: Option<String>,
}

/// A currency the firm transacts in, with its base flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CurrencyRecord {
    pub meta: RecordMeta,
    pub currency: Currency,
    #[serde(default)]
    pub base: bool,
}
