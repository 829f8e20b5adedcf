//! Why a record did not post: one stable machine code per cause, stored and
//! shown in its dotted form (`validation.unmapped_value`). Dashboards,
//! alarms and runbooks key on these; they never change meaning.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! reason_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)+) => {
        /// A stable reason code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReasonCode {
            $($(#[$doc])* $variant,)+
        }

        impl ReasonCode {
            /// Every code, in declaration order.
            pub const ALL: &[ReasonCode] = &[$(ReasonCode::$variant,)+];

            /// The dotted form.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(ReasonCode::$variant => $code,)+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($code => Some(ReasonCode::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

reason_codes! {
    /// A PSA value the template's value map does not cover.
    UnmappedValue = "validation.unmapped_value",
    /// A field the template or the ERP needs is empty.
    RequiredField = "validation.required_field",
    /// A dimension the rule requires did not resolve.
    RequiredDimension = "validation.required_dimension",
    /// Amounts in a currency the document cannot carry (Ferry never converts).
    CurrencyMismatch = "validation.currency_mismatch",
    /// No tax code could be determined and `[tax]` is required.
    UnknownTaxCode = "validation.unknown_tax_code",
    /// No rate for billable work.
    MissingRate = "validation.missing_rate",
    /// Hours outside what a time entry can hold.
    HoursOutOfRange = "validation.hours_out_of_range",
    /// A rate outside `[bounds]`.
    RateOutOfRange = "validation.rate_out_of_range",
    /// An amount outside `[bounds]`.
    AmountOutOfRange = "validation.amount_out_of_range",
    /// A date outside `[bounds]`.
    DateOutOfRange = "validation.date_out_of_range",
    /// An amount that must be positive is not.
    AmountNotPositive = "validation.amount_not_positive",
    /// A negative invoice (credits are credit memos).
    NegativeAmount = "validation.negative_amount",
    /// A unit price with more decimals than the ERP keeps.
    UnitPricePrecision = "validation.unit_price_precision",
    /// An invoice whose lines do not add up to its total.
    TotalsMismatch = "validation.totals_mismatch",
    /// A record names a project or customer the PSA does not have.
    UnknownReference = "validation.unknown_reference",
    /// A source record Ferry cannot read as the canonical model.
    SourceRecord = "validation.source_record",
    /// A related record (project, customer) Ferry cannot read.
    RelatedRecord = "validation.related_record",
    /// Dated in a period the ERP has closed.
    ClosedPeriod = "validation.closed_period",
    /// The ERP refused the document; its own words are kept.
    ErpValidation = "erp.validation",
    /// The ERP refused the call itself (not one document).
    ErpRefusedCall = "erp.refused_call",
    /// The ERP could not be reached or kept failing.
    ErpUnavailable = "erp.unavailable",
    /// The PSA refused a write-back.
    PsaRefused = "psa.refused",
    /// Waits on another record that has an exception of its own.
    DependencyBlocked = "dependency.blocked",
    /// Waits on a record the ERP does not have yet.
    DependencyNotInErp = "dependency.not_in_erp",
    /// A message for a tenant this process does not serve.
    TenantNotServed = "tenant.not_served",
    /// Delivered as often as the queue allows, without an outcome.
    RetryExhausted = "retry.exhausted",
    /// An idempotency key reused with another payload: a bug, never a duplicate.
    IdempotencyPayloadMismatch = "idempotency.payload_mismatch",
    /// A dead-lettered message Ferry cannot read.
    MessageUnreadable = "message.unreadable",
    /// A template expression failed on this record.
    TemplateExpressionError = "template.expression_error",
    /// A template rate that is not a decimal.
    TemplateInvalidRate = "template.invalid_rate",
    /// A template currency that is not an ISO code.
    TemplateInvalidCurrency = "template.invalid_currency",
    /// A record the template has no rule to turn into a line.
    TemplateUnsupported = "template.unsupported",
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReasonCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ReasonCode::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown reason code {s:?}")))
    }
}

impl PartialEq<&str> for ReasonCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_dotted_and_round_trips() {
        let mut seen = std::collections::BTreeSet::new();
        for c in ReasonCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            let (family, name) = s.split_once('.').expect("dotted");
            assert!(!family.is_empty() && !name.is_empty(), "{s}");
            assert_eq!(ReasonCode::parse(s), Some(*c));
            let json = serde_json::to_string(c).expect("serialises");
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(
                serde_json::from_str::<ReasonCode>(&json).expect("reads"),
                *c
            );
        }
        assert_eq!(ReasonCode::parse("validation.unmaped_value"), None);
        assert!(serde_json::from_str::<ReasonCode>("\"nope\"").is_err());
    }
}
