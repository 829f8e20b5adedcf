//! Xero Accounting API types, permissive, as the official OpenAPI describes them
//! (`specs/xero/xero_accounting.yaml`, MIT). Amounts are exact decimals.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `{"Message": ...}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ValidationError {
    #[serde(rename = "Message")]
    pub message: Option<String>,
}

/// Contact reference inside a document.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct ContactRef {
    #[serde(rename = "ContactID")]
    pub contact_id: Option<String>,
}

/// A line as Xero returns it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LineItem {
    pub description: Option<String>,
    pub quantity: Option<Decimal>,
    pub unit_amount: Option<Decimal>,
    pub item_code: Option<String>,
    pub account_code: Option<String>,
    pub tax_type: Option<String>,
    pub line_amount: Option<Decimal>,
}

/// An invoice or credit note as Xero returns it (the shared fields).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Document {
    #[serde(rename = "InvoiceID")]
    pub invoice_id: Option<String>,
    #[serde(rename = "CreditNoteID")]
    pub credit_note_id: Option<String>,
    pub invoice_number: Option<String>,
    pub credit_note_number: Option<String>,
    pub reference: Option<String>,
    pub r#type: Option<String>,
    pub status: Option<String>,
    pub date: Option<String>,
    pub currency_code: Option<String>,
    pub sub_total: Option<Decimal>,
    pub total_tax: Option<Decimal>,
    pub total: Option<Decimal>,
    pub amount_paid: Option<Decimal>,
    pub amount_due: Option<Decimal>,
    pub remaining_credit: Option<Decimal>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    pub contact: Option<ContactRef>,
    pub status_attribute_string: Option<String>,
    pub has_errors: Option<bool>,
    #[serde(default)]
    pub validation_errors: Vec<ValidationError>,
}

/// A contact as Xero returns it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Contact {
    #[serde(rename = "ContactID")]
    pub contact_id: Option<String>,
    pub contact_number: Option<String>,
    pub name: Option<String>,
    pub contact_status: Option<String>,
    pub status_attribute_string: Option<String>,
    pub has_validation_errors: Option<bool>,
    #[serde(default)]
    pub validation_errors: Vec<ValidationError>,
}

/// Invoice or credit note reference inside a payment.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct DocRef {
    #[serde(rename = "InvoiceID")]
    pub invoice_id: Option<String>,
    #[serde(rename = "CreditNoteID")]
    pub credit_note_id: Option<String>,
    #[serde(rename = "CurrencyCode")]
    pub currency_code: Option<String>,
}

/// A payment as Xero returns it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Payment {
    #[serde(rename = "PaymentID")]
    pub payment_id: Option<String>,
    pub invoice: Option<DocRef>,
    pub credit_note: Option<DocRef>,
    pub date: Option<String>,
    pub amount: Option<Decimal>,
    pub reference: Option<String>,
    pub status: Option<String>,
}

/// The organisation (for the period lock date).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Organisation {
    pub name: Option<String>,
    pub base_currency: Option<String>,
    pub period_lock_date: Option<String>,
}

/// `schemas.Error`: `{ErrorNumber, Type, Message, Elements[ValidationErrors]}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Error {
    pub error_number: Option<i64>,
    pub r#type: Option<String>,
    pub message: Option<String>,
    #[serde(default)]
    pub elements: Vec<Element>,
}

/// One element of a validation error.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Element {
    #[serde(default)]
    pub validation_errors: Vec<ValidationError>,
}

/// A webhook delivery (`xero-webhooks.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    #[serde(default)]
    pub events: Vec<WebhookEvent>,
    pub first_event_sequence: Option<i64>,
    pub last_event_sequence: Option<i64>,
    pub entropy: Option<String>,
}

/// One webhook event.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub resource_url: Option<String>,
    pub resource_id: Option<String>,
    pub event_date_utc: Option<String>,
    pub event_type: Option<String>,
    pub event_category: Option<String>,
    pub tenant_id: Option<String>,
    pub tenant_type: Option<String>,
}
