//! Tryton's typed JSON: decimals, dates and datetimes travel as objects tagged by
//! `__class__` (`{"__class__": "Decimal", "decimal": "150.00"}`,
//! `{"__class__": "date", "year": 2026, "month": 11, "day": 25}`, and `datetime`
//! with hour, minute, second and microsecond). Reference: `trytond/protocols/jsonrpc.py`
//! (JSONEncoder / JSONDecoder), used by both the JSON-RPC and the REST API.

use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// A decimal as Tryton's `Decimal` object (exact digits, never a float).
pub fn decimal(d: Decimal) -> Value {
    json!({ "__class__": "Decimal", "decimal": d.to_string() })
}

/// A date as Tryton's `date` object.
pub fn date(d: NaiveDate) -> Value {
    json!({ "__class__": "date", "year": d.year(), "month": d.month(), "day": d.day() })
}

/// A datetime (UTC, as Tryton stores them) as Tryton's `datetime` object.
pub fn datetime(t: DateTime<Utc>) -> Value {
    use chrono::Timelike;
    json!({
        "__class__": "datetime",
        "year": t.year(), "month": t.month(), "day": t.day(),
        "hour": t.hour(), "minute": t.minute(), "second": t.second(),
        "microsecond": t.nanosecond() / 1000,
    })
}

/// Hours as Tryton's `timedelta` object, in exact seconds.
pub fn timedelta_hours(hours: Decimal) -> Value {
    json!({ "__class__": "timedelta", "seconds": crate::json::number(hours * Decimal::from(3600)) })
}

/// Seconds of a `timedelta` object, as hours.
pub fn read_timedelta_hours(v: &Value) -> Option<Decimal> {
    if class(v) != Some("timedelta") {
        return None;
    }
    read_decimal(v.get("seconds")?).map(|s| s / Decimal::from(3600))
}

fn class(v: &Value) -> Option<&str> {
    v.get("__class__").and_then(Value::as_str)
}

fn int(v: &Value, k: &str) -> Option<u32> {
    v.get(k)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

/// Reads a decimal: a `Decimal` object, or a plain JSON number (Tryton's float
/// fields such as quantities) taken by its exact text.
pub fn read_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Object(_) if class(v) == Some("Decimal") => v
            .get("decimal")
            .and_then(Value::as_str)
            .and_then(|s| Decimal::from_str(s).ok()),
        Value::Number(n) => {
            let s = n.to_string();
            Decimal::from_str(&s)
                .or_else(|_| Decimal::from_scientific(&s))
                .ok()
        }
        _ => None,
    }
}

/// Reads a `date` object.
pub fn read_date(v: &Value) -> Option<NaiveDate> {
    if class(v) != Some("date") {
        return None;
    }
    NaiveDate::from_ymd_opt(
        i32::try_from(v.get("year")?.as_i64()?).ok()?,
        int(v, "month")?,
        int(v, "day")?,
    )
}

/// Reads a `datetime` object (naive UTC in Tryton).
pub fn read_datetime(v: &Value) -> Option<DateTime<Utc>> {
    if class(v) != Some("datetime") {
        return None;
    }
    let d = NaiveDate::from_ymd_opt(
        i32::try_from(v.get("year")?.as_i64()?).ok()?,
        int(v, "month")?,
        int(v, "day")?,
    )?;
    d.and_hms_micro_opt(
        int(v, "hour")?,
        int(v, "minute")?,
        int(v, "second")?,
        int(v, "microsecond").unwrap_or(0),
    )
    .map(|t| t.and_utc())
}

/// The id of a record (`{"id": 3, ...}`) or of a many2one value (`3` or `{"id": 3}`).
pub fn id(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.get("id").and_then(Value::as_i64))
}

/// A string field (`null` and `false` are Tryton's "no value").
pub fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_round_trip_exactly() {
        let d = Decimal::from_str("1064.90").unwrap();
        assert_eq!(read_decimal(&decimal(d)), Some(d));
        assert_eq!(decimal(d)["decimal"], "1064.90");
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert_eq!(read_date(&date(day)), Some(day));
        let t = day
            .and_hms_micro_opt(23, 39, 37, 854_533)
            .unwrap()
            .and_utc();
        assert_eq!(read_datetime(&datetime(t)), Some(t));
    }

    #[test]
    fn float_fields_are_read_by_their_exact_text() {
        let v: Value = serde_json::from_str("7.25").unwrap();
        assert_eq!(read_decimal(&v), Some(Decimal::from_str("7.25").unwrap()));
        let v: Value = serde_json::from_str("0.1").unwrap();
        assert_eq!(read_decimal(&v), Some(Decimal::from_str("0.1").unwrap()));
        assert_eq!(
            read_decimal(&json!("7.25")),
            None,
            "a string is not a number"
        );
        assert_eq!(
            read_date(&json!({"__class__": "date", "year": 2026, "month": 2, "day": 30})),
            None
        );
    }
}
