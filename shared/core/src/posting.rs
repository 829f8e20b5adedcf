//! ERP-neutral posting documents: what transform decides to write, with every
//! ERP code (item, account, tax type, tracking) already resolved by the mapping
//! template. ERP connectors turn these into vendor requests.

use chrono::NaiveDate;
use ferry_canon::{Address, Currency, LineKind};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::keys::DocKey;

/// The kind of ERP document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Contact,
    Invoice,
    CreditNote,
    /// A project (an engagement) under a customer, in ERPs that have them.
    Project,
    /// One time entry as a timesheet line on its ERP project, in ERPs that keep timesheets.
    Timesheet,
}

impl DocKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DocKind::Contact => "contact",
            DocKind::Invoice => "invoice",
            DocKind::CreditNote => "credit_note",
            DocKind::Project => "project",
            DocKind::Timesheet => "timesheet",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DocKind::Contact,
            DocKind::Invoice,
            DocKind::CreditNote,
            DocKind::Project,
            DocKind::Timesheet,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A document to post, identified by Ferry's document key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostingDoc {
    pub kind: DocKind,
    /// Stable key of the document in Ferry (see [`DocKey`]).
    pub key: DocKey,
    /// Ferry's reference stored on the ERP document so it can be found again,
    /// no longer than the ERP's reference field (see `mapping::references`).
    pub reference: String,
    pub body: DocBody,
}

/// The document content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DocBody {
    Contact(ContactDoc),
    Invoice(InvoiceDoc),
    Project(ProjectDoc),
    Timesheet(TimesheetDoc),
}

/// Hours worked, as a timesheet line on the ERP project they were worked on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimesheetDoc {
    /// The project's id in the ERP (resolved through the id map).
    pub project_erp_id: String,
    /// The project's Ferry document key (none for the removal of the line of
    /// an entry no longer on a project).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::keys::optional_doc_key"
    )]
    pub project_key: Option<DocKey>,
    pub date: NaiveDate,
    pub hours: Decimal,
    /// Ferry's reference for the task the hours were worked on, if any (the line
    /// goes on the project when the ERP has no such task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_reference: Option<String>,
    /// Who worked them, by name (the ERP's employee of that name, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    pub description: String,
    /// Deleted at the source, or no longer approved or billable: remove the line.
    #[serde(default)]
    pub removed: bool,
}

/// A project as the ERP should hold it, under its customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectDoc {
    pub name: String,
    /// The PSA's short code for the project, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The customer's id in the ERP (resolved through the id map).
    pub contact_erp_id: String,
    /// The customer's Ferry document key.
    pub contact_key: DocKey,
    /// Closed or deleted at the source.
    #[serde(default)]
    pub closed: bool,
    /// The project's tasks, each with Ferry's reference for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<TaskDoc>,
}

/// A task under a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDoc {
    pub reference: String,
    pub name: String,
}

/// A customer as the ERP should hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_terms_days: Option<u32>,
    /// The customer was deleted or deactivated at the source.
    #[serde(default)]
    pub archived: bool,
}

/// The state a document should be in at the ERP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocStatus {
    Draft,
    Authorised,
    /// Remove a draft (source deleted, or a summary became empty).
    Deleted,
    /// Cancel an authorised document.
    Voided,
}

/// A tracking (dimension) assignment on a line: ERP category and option names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tracking {
    pub category: String,
    pub option: String,
}

/// One line of an invoice or credit note. `line_amount` is `quantity × unit_amount`
/// rounded by the template's rule; amounts are tax-exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostingLine {
    pub kind: LineKind,
    pub description: String,
    pub quantity: Decimal,
    pub unit_amount: Decimal,
    pub line_amount: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracking: Vec<Tracking>,
}

/// An invoice or credit note as the ERP should hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDoc {
    /// The customer's id in the ERP (resolved through the id map).
    pub contact_erp_id: String,
    /// The customer's Ferry document key (for audit and dependency tracking).
    pub contact_key: DocKey,
    /// The document number to use, when the PSA numbered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    pub date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    pub currency: Currency,
    pub status: DocStatus,
    pub lines: Vec<PostingLine>,
    /// Sum of `line_amount`s: the tax-exclusive subtotal.
    pub subtotal: Decimal,
}

impl PostingDoc {
    /// The invoice body, if this is an invoice or credit note.
    pub fn invoice(&self) -> Option<&InvoiceDoc> {
        match &self.body {
            DocBody::Invoice(i) => Some(i),
            _ => None,
        }
    }

    pub fn contact(&self) -> Option<&ContactDoc> {
        match &self.body {
            DocBody::Contact(c) => Some(c),
            _ => None,
        }
    }

    pub fn project(&self) -> Option<&ProjectDoc> {
        match &self.body {
            DocBody::Project(p) => Some(p),
            _ => None,
        }
    }

    pub fn timesheet(&self) -> Option<&TimesheetDoc> {
        match &self.body {
            DocBody::Timesheet(t) => Some(t),
            _ => None,
        }
    }

    /// Whether writing this document removes something from the ERP (a deleted
    /// or voided invoice, a removed timesheet line).
    pub fn is_removal(&self) -> bool {
        self.invoice()
            .is_some_and(|i| matches!(i.status, DocStatus::Deleted | DocStatus::Voided))
            || self.timesheet().is_some_and(|t| t.removed)
    }
}
