//! Ferry's keys, parsed rather than formatted by hand: a source record's key
//! (ledger, exceptions, the records a document was built from) and an ERP
//! document's key (id map, audit). Each is built only through its
//! constructors and read back only through [`RecordKey::parse`] and
//! [`DocKey::parse`], so no two places can spell a key differently. On the
//! wire and in the stores they are the same strings as before.

use std::fmt;
use std::ops::Deref;

use ferry_canon::{Domain, SourceRef, SystemId};
use serde::{Deserialize, Serialize};

/// A source record's key: `<domain>/<system>:<id>` (e.g.
/// `time_entries/connectwise:5000`). Source ids are unique per record type,
/// not per system, so the domain is part of the key. For a per-record
/// document it is also the document's key ([`DocKey::record`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecordKey(String);

impl RecordKey {
    pub fn new(domain: Domain, source: &SourceRef) -> RecordKey {
        Self::of(domain, &source.system, &source.id)
    }

    pub fn of(domain: Domain, system: &SystemId, id: &str) -> RecordKey {
        RecordKey(format!("{domain}/{system}:{id}"))
    }

    /// A key as Ferry wrote it; `None` for anything else.
    pub fn parse(s: &str) -> Option<RecordKey> {
        let (domain, rest) = s.split_once('/')?;
        let (system, id) = rest.split_once(':')?;
        Domain::parse(domain)?;
        SystemId::parse(system).ok()?;
        (!id.is_empty()).then(|| RecordKey(s.to_string()))
    }

    pub fn domain(&self) -> Domain {
        self.parts().0
    }

    pub fn system(&self) -> SystemId {
        self.parts().1
    }

    /// The record's id in its source system.
    pub fn id(&self) -> &str {
        self.parts().2
    }

    fn parts(&self) -> (Domain, SystemId, &str) {
        let (domain, rest) = self.0.split_once('/').expect("parsed");
        let (system, id) = rest.split_once(':').expect("parsed");
        (
            Domain::parse(domain).expect("parsed"),
            SystemId::parse(system).expect("parsed"),
            id,
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const TIMESHEET: &str = "timesheets/";
const SUMMARY: &str = "summary/";
const PSA_PAYMENTS: &str = "psa-payments/";

/// An ERP document's key in Ferry, one of:
/// - a per-record document: its record's key (`invoices/connectwise:77`);
/// - a line-based record (time, an expense) invoiced on its own, under its
///   rule's domain: `<domain>/<record key>`;
/// - a time entry's timesheet line: `timesheets/<record key>`;
/// - a summary document: `summary/<group>`, the group being
///   `<document>/<project key>/<YYYY-MM>`;
/// - a PSA invoice's payment status written back: `psa-payments/<record key>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocKey(String);

/// What a document key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocOf<'a> {
    Record(RecordKey),
    LineInvoice { domain: Domain, record: RecordKey },
    Timesheet(RecordKey),
    Summary { group: &'a str },
    PsaPayments(RecordKey),
}

impl DocKey {
    /// The document made of one source record.
    pub fn record(record: &RecordKey) -> DocKey {
        DocKey(record.0.clone())
    }

    /// A line-based record invoiced on its own under `domain`'s rule.
    pub fn line_invoice(domain: Domain, record: &RecordKey) -> DocKey {
        DocKey(format!("{domain}/{record}"))
    }

    /// A time entry's timesheet line.
    pub fn timesheet(entry: &RecordKey) -> DocKey {
        DocKey(format!("{TIMESHEET}{entry}"))
    }

    /// A summary document: one per group.
    pub fn summary(group: &str) -> DocKey {
        DocKey(format!("{SUMMARY}{group}"))
    }

    /// The payment status of a PSA invoice, written back to the PSA.
    pub fn psa_payments(invoice: &RecordKey) -> DocKey {
        DocKey(format!("{PSA_PAYMENTS}{invoice}"))
    }

    /// A key as Ferry wrote it; `None` for anything else.
    pub fn parse(s: &str) -> Option<DocKey> {
        classify(s).map(|_| DocKey(s.to_string()))
    }

    /// What the key names.
    pub fn of(&self) -> DocOf<'_> {
        classify(&self.0).expect("a DocKey is only made of a key that classifies")
    }

    /// The summary group, for a summary document.
    pub fn summary_group(&self) -> Option<&str> {
        self.0.strip_prefix(SUMMARY)
    }

    /// The source record a document of one record is made of (per-record
    /// documents and line invoices).
    pub fn as_record(&self) -> Option<RecordKey> {
        match self.of() {
            DocOf::Record(r) | DocOf::LineInvoice { record: r, .. } => Some(r),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a document key names, or `None` when it is none of Ferry's forms: the
/// one reading of the forms, for [`DocKey::parse`] and [`DocKey::of`].
fn classify(s: &str) -> Option<DocOf<'_>> {
    if let Some(group) = s.strip_prefix(SUMMARY) {
        return (!group.is_empty()).then_some(DocOf::Summary { group });
    }
    if let Some(r) = s.strip_prefix(TIMESHEET) {
        return RecordKey::parse(r).map(DocOf::Timesheet);
    }
    if let Some(r) = s.strip_prefix(PSA_PAYMENTS) {
        return RecordKey::parse(r).map(DocOf::PsaPayments);
    }
    if let Some(r) = RecordKey::parse(s) {
        return Some(DocOf::Record(r));
    }
    let (domain, record) = s.split_once('/')?;
    Some(DocOf::LineInvoice {
        domain: Domain::parse(domain)?,
        record: RecordKey::parse(record)?,
    })
}

/// An optional document key where earlier versions wrote `""` for none.
pub fn optional_doc_key<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<DocKey>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => DocKey::try_from(s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

macro_rules! string_like {
    ($t:ident, $what:literal) => {
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$t> for String {
            fn from(k: $t) -> String {
                k.0
            }
        }

        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(s: String) -> Result<$t, String> {
                $t::parse(&s).ok_or_else(|| format!("{s:?} is not {}", $what))
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<$t, String> {
                $t::parse(s).ok_or_else(|| format!("{s:?} is not {}", $what))
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$t> for String {
            fn eq(&self, other: &$t) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$t> for str {
            fn eq(&self, other: &$t) -> bool {
                self == other.0
            }
        }
    };
}

string_like!(RecordKey, "a record key (<domain>/<system>:<id>)");
string_like!(DocKey, "a document key");

#[cfg(test)]
mod tests {
    use super::*;

    fn cw(id: &str) -> SourceRef {
        SourceRef::new(SystemId::parse("some_psa").expect("system"), id)
    }

    #[test]
    fn a_record_key_reads_back_as_the_parts_it_was_made_of() {
        let k = RecordKey::new(Domain::TimeEntries, &cw("5000"));
        assert_eq!(k, "time_entries/some_psa:5000");
        assert_eq!(k.domain(), Domain::TimeEntries);
        assert_eq!(k.system().as_str(), "some_psa");
        assert_eq!(k.id(), "5000");
        assert_eq!(RecordKey::parse(k.as_str()), Some(k.clone()));
        // Ids may hold the separators themselves.
        let odd = RecordKey::new(Domain::Projects, &cw("7:a/b"));
        assert_eq!(odd.id(), "7:a/b");
        assert_eq!(
            RecordKey::parse(odd.as_str()).expect("parses").id(),
            "7:a/b"
        );
        for bad in [
            "",
            "time_entries",
            "time_entries/some_psa",
            "time_entries/some_psa:",
            "nonsense/some_psa:1",
            "time_entries/Not A System:1",
        ] {
            assert_eq!(RecordKey::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_kind_of_document_key_reads_back_as_what_it_names() {
        let entry = RecordKey::new(Domain::TimeEntries, &cw("5000"));
        let invoice = RecordKey::new(Domain::Invoices, &cw("77"));
        let cases = [
            (DocKey::record(&invoice), DocOf::Record(invoice.clone())),
            (DocKey::timesheet(&entry), DocOf::Timesheet(entry.clone())),
            (
                DocKey::line_invoice(Domain::TimeEntries, &entry),
                DocOf::LineInvoice {
                    domain: Domain::TimeEntries,
                    record: entry.clone(),
                },
            ),
            (
                DocKey::summary("project_billing/some_psa:7/2026-10"),
                DocOf::Summary {
                    group: "project_billing/some_psa:7/2026-10",
                },
            ),
            (
                DocKey::psa_payments(&invoice),
                DocOf::PsaPayments(invoice.clone()),
            ),
        ];
        for (key, of) in cases {
            assert_eq!(key.of(), of, "{key}");
            assert_eq!(DocKey::parse(key.as_str()), Some(key.clone()));
            let json = serde_json::to_string(&key).expect("serialises");
            assert_eq!(json, format!("\"{key}\""), "the wire form is the string");
            assert_eq!(serde_json::from_str::<DocKey>(&json).expect("reads"), key);
        }
        assert_eq!(DocKey::record(&invoice).as_record(), Some(invoice));
        assert_eq!(
            DocKey::line_invoice(Domain::TimeEntries, &entry).as_record(),
            Some(entry.clone())
        );
        assert_eq!(DocKey::timesheet(&entry).as_record(), None);
        assert_eq!(
            DocKey::summary("g/x:1/2026-10").summary_group(),
            Some("g/x:1/2026-10")
        );
        for bad in [
            "",
            "summary/",
            "timesheets/",
            "timesheets/x",
            "psa-payments/1",
            "x",
        ] {
            assert_eq!(DocKey::parse(bad), None, "{bad:?}");
            assert!(serde_json::from_str::<DocKey>(&format!("\"{bad}\"")).is_err());
        }
    }
}
