//! Metrics in CloudWatch Embedded Metric Format: one JSON line on stdout per
//! invocation, which CloudWatch Logs turns into metrics with no API call. The
//! only dimension is the function: a tenant dimension would create metrics per
//! customer (cost, cardinality); tenants stay as searchable log properties.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "Ferry";

/// One EMF document stamped `at`: `counts` are `(metric, value)` with unit
/// Count, `properties` are extra searchable fields.
pub fn document(
    function: &str,
    at: DateTime<Utc>,
    counts: &[(&str, u64)],
    properties: &[(&str, Value)],
) -> Value {
    // CloudWatch wants milliseconds since the epoch; an instant before it is clamped.
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": counts.iter().map(|(n, _)| json!({"Name": n, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        }),
    );
    doc.insert("Function".into(), json!(function));
    for (n, v) in counts {
        doc.insert((*n).to_string(), json!(v));
    }
    for (k, v) in properties {
        doc.insert((*k).to_string(), v.clone());
    }
    Value::Object(doc)
}

/// Prints one EMF document (stdout is what Lambda ships to CloudWatch Logs).
pub fn emit(
    function: &str,
    at: DateTime<Utc>,
    counts: &[(&str, u64)],
    properties: &[(&str, Value)],
) {
    println!("{}", document(function, at, counts, properties));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_document_declares_its_metrics_without_a_tenant_dimension() {
        let at = DateTime::parse_from_rfc3339("2027-12-31T23:59:59.999Z")
            .expect("valid")
            .with_timezone(&Utc);
        let d = document(
            "post",
            at,
            &[("Processed", 3), ("Retried", 1)],
            &[("tenant", json!("acme"))],
        );
        let m = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "Ferry");
        assert_eq!(m["Dimensions"], json!([["Function"]]));
        assert_eq!(m["Metrics"][1]["Name"], "Retried");
        assert_eq!(
            (d["Processed"].as_u64(), d["Retried"].as_u64()),
            (Some(3), Some(1))
        );
        assert_eq!(d["Function"], "post");
        assert_eq!(
            d["_aws"]["Timestamp"].as_u64(),
            Some(1_830_297_599_999),
            "stamped with the injected time, in epoch milliseconds"
        );
        assert_eq!(
            d["tenant"], "acme",
            "tenants are properties, not dimensions"
        );
    }
}
