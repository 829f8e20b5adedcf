//! Exact money: `rust_decimal` amounts with an ISO 4217 currency, rounded only
//! at boundaries and only by an explicit [`Rounding`] rule.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::schema::DecimalString;

/// An ISO 4217 currency code such as `USD`, validated against the ISO list.
///
/// Invariant: always a currency the ISO 4217 table knows, so its minor unit
/// (exponent) is always available for rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses a three-letter code; lower case is rejected so stored data stays canonical.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        iso_currency::Currency::from_code(code)
            .map(Currency)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_string()))
    }

    /// The three-letter code.
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point in the currency's minor unit (2 for USD, 0 for JPY).
    pub fn minor_units(&self) -> u32 {
        // Currencies without a minor unit (e.g. XAU) are treated as having none.
        self.0.exponent().map(u32::from).unwrap_or(0)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "ISO 4217 currency code"
        })
    }
}

/// Errors from money arithmetic and parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown ISO 4217 currency code {0:?}")]
    UnknownCurrency(String),
    #[error("cannot combine {left} and {right}: currencies differ")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount overflow")]
    Overflow,
}

/// How an amount is rounded to its currency's minor unit. Finance teams choose
/// this per template; there is no implicit default inside arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// 2.345 → 2.35, -2.345 → -2.35 (the common commercial rule).
    #[default]
    HalfAwayFromZero,
    /// Banker's rounding: 2.345 → 2.34, 2.355 → 2.36.
    HalfEven,
    /// Toward zero.
    Truncate,
}

impl Rounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfAwayFromZero => RoundingStrategy::MidpointAwayFromZero,
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::Truncate => RoundingStrategy::ToZero,
        }
    }

    /// Rounds `value` to `dp` decimal places under this rule.
    pub fn round(self, value: Decimal, dp: u32) -> Decimal {
        value.round_dp_with_strategy(dp, self.strategy())
    }
}

/// An exact amount in one currency. Serialised as `{"amount": "12.50", "currency": "USD"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Money {
    #[schemars(with = "DecimalString")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money {
            amount: Decimal::ZERO,
            currency,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// Adds two amounts of the same currency; different currencies are an error, never converted.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// Multiplies by an exact quantity (hours, units) without rounding.
    pub fn checked_mul(&self, quantity: Decimal) -> Result<Money, MoneyError> {
        let amount = self
            .amount
            .checked_mul(quantity)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// Rounds to the currency's minor unit with an explicit rule.
    pub fn rounded(&self, rule: Rounding) -> Money {
        Money::new(
            rule.round(self.amount, self.currency.minor_units()),
            self.currency,
        )
    }

    pub fn negated(&self) -> Money {
        Money::new(-self.amount, self.currency)
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn unknown_and_lowercase_currency_codes_are_rejected() {
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("XXY").is_err());
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), 3);
    }

    #[test]
    fn adding_different_currencies_is_an_error_not_a_conversion() {
        let a = Money::new(d("1.00"), usd());
        let b = Money::new(d("1.00"), Currency::parse("EUR").unwrap());
        assert!(matches!(
            a.checked_add(&b),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn rounding_follows_the_named_rule_at_the_currency_minor_unit() {
        let m = Money::new(d("2.345"), usd());
        assert_eq!(m.rounded(Rounding::HalfAwayFromZero).amount, d("2.35"));
        assert_eq!(m.rounded(Rounding::HalfEven).amount, d("2.34"));
        assert_eq!(m.rounded(Rounding::Truncate).amount, d("2.34"));
        let yen = Money::new(d("1050.5"), Currency::parse("JPY").unwrap());
        assert_eq!(yen.rounded(Rounding::HalfAwayFromZero).amount, d("1051"));
    }

    #[test]
    fn money_serialises_amounts_as_strings_and_reads_them_back_exactly() {
        let m = Money::new(d("0.1"), usd())
            .checked_add(&Money::new(d("0.2"), usd()))
            .unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"0.3","currency":"USD"}"#);
        let back: Money = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn hours_times_rate_is_exact() {
        let rate = Money::new(d("187.50"), usd());
        let cost = rate.checked_mul(d("7.75")).unwrap();
        assert_eq!(cost.amount, d("1453.1250"));
        assert_eq!(
            cost.rounded(Rounding::HalfAwayFromZero).amount,
            d("1453.13")
        );
    }
}
