//! ConnectWise PSA REST types, permissive: every field optional, unknown fields
//! ignored. Numbers are read as exact decimals. Only the mapper interprets them.
//! Reference: https://developer.connectwise.com/Products/ConnectWise_PSA/REST

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `{id, identifier, name}` reference to another record.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    pub id: Option<i64>,
    pub identifier: Option<String>,
    pub name: Option<String>,
}

/// Currency reference.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrencyReference {
    pub id: Option<i64>,
    pub currency_code: Option<String>,
    pub name: Option<String>,
}

/// `_info` metadata on every record.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    pub last_updated: Option<String>,
    pub updated_by: Option<String>,
    pub date_entered: Option<String>,
}

/// Custom field value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomField {
    pub id: Option<i64>,
    pub caption: Option<String>,
    pub value: Option<serde_json::Value>,
}

/// `GET /company/companies/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    pub id: Option<i64>,
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub status: Option<Reference>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<Reference>,
    pub phone_number: Option<String>,
    pub website: Option<String>,
    pub tax_code: Option<Reference>,
    pub currency: Option<CurrencyReference>,
    pub billing_terms: Option<Reference>,
    pub invoice_to_email_address: Option<String>,
    pub deleted_flag: Option<bool>,
    #[serde(rename = "_info")]
    pub info: Option<Info>,
}

/// `GET /project/projects/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub company: Option<Reference>,
    /// `ActualRates`, `FixedFee`, `NotToExceed`, `OverrideRate`.
    pub billing_method: Option<String>,
    pub billing_amount: Option<Decimal>,
    pub status: Option<Reference>,
    pub closed_flag: Option<bool>,
    pub department: Option<Reference>,
    pub location: Option<Reference>,
    pub business_unit_id: Option<i64>,
    pub currency: Option<CurrencyReference>,
    pub estimated_start: Option<String>,
    pub estimated_end: Option<String>,
    pub manager: Option<Reference>,
    pub r#type: Option<Reference>,
    pub custom_fields: Option<Vec<CustomField>>,
    #[serde(rename = "_info")]
    pub info: Option<Info>,
}

/// `GET /time/entries/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeEntry {
    pub id: Option<i64>,
    pub company: Option<Reference>,
    pub charge_to_id: Option<i64>,
    /// `ServiceTicket`, `ProjectTicket`, `ChargeCode`, `Activity`.
    pub charge_to_type: Option<String>,
    pub project: Option<Reference>,
    pub phase: Option<Reference>,
    pub member: Option<Reference>,
    pub work_type: Option<Reference>,
    pub work_role: Option<Reference>,
    pub time_start: Option<String>,
    pub time_end: Option<String>,
    pub actual_hours: Option<Decimal>,
    /// `Billable`, `DoNotBill`, `NoCharge`, `NoDefault`.
    pub billable_option: Option<String>,
    pub notes: Option<String>,
    pub hourly_rate: Option<Decimal>,
    pub hourly_cost: Option<String>,
    /// Approval workflow state (`Open`, `PendingApproval`, …, `ApprovedByTierTwo`, `Billed`).
    pub status: Option<String>,
    pub invoice: Option<Reference>,
    pub currency: Option<CurrencyReference>,
    #[serde(rename = "_info")]
    pub info: Option<Info>,
}

/// Tax on an expense.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpenseTax {
    pub amount: Option<Decimal>,
    pub r#type: Option<Reference>,
}

/// `GET /expense/entries/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpenseEntry {
    pub id: Option<i64>,
    pub company: Option<Reference>,
    pub charge_to_id: Option<i64>,
    pub charge_to_type: Option<String>,
    pub project: Option<Reference>,
    pub r#type: Option<Reference>,
    pub member: Option<Reference>,
    pub classification: Option<Reference>,
    pub amount: Option<Decimal>,
    pub billable_option: Option<String>,
    pub date: Option<String>,
    pub notes: Option<String>,
    pub status: Option<String>,
    pub taxes: Option<Vec<ExpenseTax>>,
    pub currency: Option<CurrencyReference>,
    pub invoice: Option<Reference>,
    #[serde(rename = "_info")]
    pub info: Option<Info>,
}

/// Invoice status reference.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingStatus {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub is_closed: Option<bool>,
}

/// `GET /finance/invoices/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    pub id: Option<i64>,
    pub invoice_number: Option<String>,
    /// `Agreement`, `CreditMemo`, `DownPayment`, `Miscellaneous`, `Progress`, `Standard`.
    pub r#type: Option<String>,
    pub status: Option<BillingStatus>,
    pub company: Option<Reference>,
    pub apply_to_type: Option<String>,
    pub apply_to_id: Option<i64>,
    pub project: Option<Reference>,
    pub date: Option<String>,
    pub due_date: Option<String>,
    pub reference: Option<String>,
    pub currency: Option<CurrencyReference>,
    pub tax_code: Option<Reference>,
    pub service_total: Option<Decimal>,
    pub expense_total: Option<Decimal>,
    pub product_total: Option<Decimal>,
    pub agreement_amount: Option<Decimal>,
    pub subtotal: Option<Decimal>,
    pub sales_tax: Option<Decimal>,
    pub total: Option<Decimal>,
    pub payments: Option<Decimal>,
    pub credits: Option<Decimal>,
    pub balance: Option<Decimal>,
    #[serde(rename = "_info")]
    pub info: Option<Info>,
}

/// `POST /finance/invoices/{id}/payments`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: Option<i64>,
    pub r#type: Option<String>,
    pub invoice: Option<Reference>,
    pub amount: Option<Decimal>,
    pub payment_date: Option<String>,
    pub applied_by: Option<String>,
}

/// A callback delivery (`/system/callbacks` subscription).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Callback {
    #[serde(rename = "MessageId")]
    pub message_id: Option<String>,
    #[serde(rename = "FromUrl")]
    pub from_url: Option<String>,
    #[serde(rename = "CompanyId")]
    pub company_id: Option<String>,
    #[serde(rename = "MemberId")]
    pub member_id: Option<String>,
    /// `added`, `updated`, `deleted`.
    #[serde(rename = "Action")]
    pub action: Option<String>,
    /// `company`, `project`, `time`, `expense`, `invoice`, ….
    #[serde(rename = "Type")]
    pub r#type: Option<String>,
    #[serde(rename = "ID")]
    pub id: Option<i64>,
    #[serde(rename = "ProductInstanceId")]
    pub product_instance_id: Option<String>,
    /// The record as JSON text (ConnectWise sends a string).
    #[serde(rename = "Entity")]
    pub entity: Option<serde_json::Value>,
    #[serde(rename = "Metadata")]
    pub metadata: Option<CallbackMetadata>,
    #[serde(rename = "CallbackObjectRecId")]
    pub callback_object_rec_id: Option<i64>,
}

/// Callback metadata: where to fetch the signing key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct CallbackMetadata {
    pub key_url: Option<String>,
}

/// `GET <key_url>` answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct SigningKey {
    pub signing_key: Option<String>,
}

/// The error body ConnectWise returns.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
    pub errors: Option<Vec<ErrorDetail>>,
}

/// One error detail.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ErrorDetail {
    pub code: Option<String>,
    pub message: Option<String>,
    pub field: Option<String>,
}
