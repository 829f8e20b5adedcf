//! Property tests over every vendor parser: whatever a vendor (or someone
//! posing as one) sends, Ferry answers with a value or an error, never a panic.
//! The JSON is random but shaped like the vendors' (their field names, nested
//! objects, strings that look like dates and numbers), so the parsers get past
//! their first check often enough to be exercised.

use base64::Engine;
use chrono::{DateTime, Utc};
use ferry_canon::{Currency, Domain, SourceVersion, SystemId, TenantId};
use ferry_core::ports::{SourceRecord, WebhookVerifier};
use ferry_core::posting::DocKind;
use proptest::prelude::*;
use serde_json::{Value, json};

const KEYS: &[&str] = &[
    "id",
    "ID",
    "name",
    "identifier",
    "_info",
    "lastUpdated",
    "timeStart",
    "actualHours",
    "hourlyRate",
    "company",
    "project",
    "member",
    "workRole",
    "workType",
    "status",
    "type",
    "currency",
    "currencyCode",
    "billableOption",
    "chargeToType",
    "date",
    "amount",
    "subtotal",
    "salesTax",
    "total",
    "balance",
    "payments",
    "serviceTotal",
    "invoiceNumber",
    "Entity",
    "Action",
    "Type",
    "MessageId",
    "Metadata",
    "key_url",
    "events",
    "resourceId",
    "eventCategory",
    "eventType",
    "eventDateUtc",
    "InvoiceID",
    "Status",
    "Total",
    "SubTotal",
    "TotalTax",
    "LineItems",
    "Quantity",
    "UnitAmount",
    "LineAmount",
    "ValidationErrors",
    "Message",
    "CurrencyCode",
    "Date",
    "Reference",
    "spent_on",
    "hours",
    "activity",
    "user",
    "updated_on",
    "custom_fields",
    "value",
    "parent",
    "state",
    "lines",
    "total_amount",
    "untaxed_amount",
    "tax_amount",
    "invoice_date",
    "reference",
    "number",
    "duration",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1_000_000_000i64..1_000_000_000, 0u32..8)
            .prop_map(|(m, s)| { crate::json::number(rust_decimal::Decimal::new(m, s)) }),
        "[A-Za-z0-9 :._/-]{0,24}".prop_map(Value::String),
        Just(json!("2026-11-02T09:00:00Z")),
        Just(json!("2026-11-02")),
        Just(json!("/Date(1793836800000+0000)/")),
        Just(json!("9999-12-31T23:59:59Z")),
        Just(json!("-0.0000001")),
        Just(json!("1e400")),
    ]
}

fn vendor_json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(proptest::sample::select(KEYS), inner, 0..8).prop_map(
                |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            ),
        ]
    })
}

fn record(domain: Domain, raw: Value) -> SourceRecord {
    SourceRecord {
        domain,
        id: "1".into(),
        version: SourceVersion::at(
            DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z")
                .expect("valid")
                .with_timezone(&Utc),
        ),
        deleted: false,
        raw,
    }
}

fn fixed_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-02T12:00:00Z")
        .expect("valid")
        .with_timezone(&Utc)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn psa_mappers_turn_any_record_into_a_record_or_an_error(raw in vendor_json(), d in 0usize..6) {
        let domain = [Domain::Customers, Domain::Projects, Domain::TimeEntries,
            Domain::Expenses, Domain::Invoices, Domain::Resources][d];
        let tenant = TenantId::parse("t1").unwrap();
        let cw = SystemId::parse("connectwise").unwrap();
        let _ = crate::connectwise::mapper::to_canonical(
            &crate::connectwise::mapper::MapContext {
                tenant: &tenant,
                system: &cw,
                home_currency: Currency::parse("USD").unwrap(),
            },
            &record(domain, raw.clone()),
        );
        let rm = SystemId::parse("redmine").unwrap();
        let cfg = crate::redmine::config::RedmineConfig {
            base_url: "http://127.0.0.1:1".into(),
            home_currency: "USD".into(),
            billable_field: Some("Billable".into()),
            approved_field: Some("Approved".into()),
            page_size: crate::redmine::client::PAGE,
            timeout_seconds: 1,
        };
        let _ = crate::redmine::mapper::to_canonical(
            &crate::redmine::mapper::MapContext {
                tenant: &tenant,
                system: &rm,
                home_currency: Currency::parse("USD").unwrap(),
                cfg: &cfg,
            },
            &record(domain, raw.clone()),
        );
        let hv = SystemId::parse("harvest").unwrap();
        let cfg: crate::harvest::HarvestConfig =
            toml::from_str("account_id = \"1\"\nhome_currency = \"USD\"").unwrap();
        let _ = crate::harvest::mapper::to_canonical(
            &crate::harvest::mapper::MapContext {
                tenant: &tenant,
                system: &hv,
                home_currency: Currency::parse("USD").unwrap(),
                cfg: &cfg,
            },
            &record(domain, raw),
        );
    }

    #[test]
    fn erp_answers_are_read_or_refused_never_panicked_on(raw in vendor_json(), k in 0usize..3) {
        let kind = [DocKind::Contact, DocKind::Invoice, DocKind::CreditNote][k];
        let ns: crate::netsuite::NetSuiteConfig = toml::from_str(
            "account_id = \"1\"\nclient_id = \"c\"\ncertificate_id = \"k\"\nsubsidiary = \"1\"",
        )
        .unwrap();
        let _ = crate::netsuite::mapper::read_document(kind, &ns, &raw, &[&raw]);
        let _ = crate::netsuite::mapper::read_payment(&ns, &raw);
        let _ = crate::xero::mapper::write_receipt(kind, raw.clone());
        if let Ok(doc) = serde_json::from_value::<crate::xero::raw::Document>(raw.clone()) {
            let _ = crate::xero::mapper::read_document(kind, &doc);
        }
        if let Ok(p) = serde_json::from_value::<crate::xero::raw::Payment>(raw.clone()) {
            let _ = crate::xero::mapper::read_payment(&p);
        }
        let _ = crate::tryton::mapper::read_document(&raw);
    }

    #[test]
    fn a_connectwise_callback_of_any_shape_is_refused_or_read(
        body in vendor_json(), entity in vendor_json(), junk in proptest::collection::vec(any::<u8>(), 0..64)
    ) {
        let verifier = crate::connectwise::webhook::CallbackVerifier::new(
            serde_json::from_value(json!({
                "base_url": "http://127.0.0.1:1/v4_6_release/apis/3.0",
                "company_id": "c", "home_currency": "USD",
                "key_url_origins": ["http://127.0.0.1:1"],
            }))
            .expect("config"),
            reqwest::Client::new(),
        );
        let now = fixed_now();
        let mut with_entity = body.clone();
        if let Value::Object(m) = &mut with_entity {
            m.insert("Entity".into(), Value::String(entity.to_string()));
        }
        for b in [body.to_string().into_bytes(), with_entity.to_string().into_bytes(), junk] {
            let headers = vec![("x-content-signature".to_string(), "c2lnbmF0dXJl".to_string())];
            let r = runtime().block_on(verifier.verify(&headers, &b, now));
            // A body no one signed with ConnectWise's key is never accepted.
            prop_assert!(r.is_err());
            let shown = r.unwrap_err().to_string();
            prop_assert!(!shown.contains("line") && !shown.contains("column"), "no parser detail: {shown}");
        }
        let _ = crate::connectwise::webhook::trusted_entity(
            Ok(Some(entity)), "1", now, std::time::Duration::from_secs(86_400),
        );
    }

    #[test]
    fn a_signed_xero_delivery_of_any_shape_is_read_or_refused(body in vendor_json()) {
        let key = "xero-key";
        let verifier = crate::xero::webhook::XeroWebhooks::new(
            crate::credential::Credential::Fixed(ferry_core::ports::Secret::new(key)),
        );
        let bytes = body.to_string().into_bytes();
        let sig = crate::xero::webhook::sign(key, &bytes);
        let headers = vec![("x-xero-signature".to_string(), sig)];
        let _ = runtime().block_on(verifier.verify(&headers, &bytes, fixed_now()));
        // And one byte changed is never accepted.
        let mut tampered = bytes.clone();
        tampered.push(b' ');
        let headers = vec![(
            "x-xero-signature".to_string(),
            base64::engine::general_purpose::STANDARD.encode([0u8; 32]),
        )];
        prop_assert!(runtime().block_on(verifier.verify(&headers, &tampered, fixed_now())).is_err());
    }
}
