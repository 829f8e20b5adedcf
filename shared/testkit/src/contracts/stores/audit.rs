//! The audit store's contract (see `stores`).

use super::*;

fn audit_entry(doc: &str, at: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        tenant: tenant("contract-a"),
        at,
        doc_key: doc.into(),
        erp_system: "xero".into(),
        erp_id: Some("X".into()),
        action: "create".into(),
        version: 1,
        source_keys: vec!["cw:1".into()],
        source_hash: "s".into(),
        template_version: "t@1".into(),
        idempotency_key: "k".into(),
        request: "{}".into(),
        response: "{}".into(),
        correlation_id: "c".into(),
    }
}

/// Audit: append-only, ordered, per document and per tenant.
pub async fn audit_log(s: Arc<dyn AuditLog>) {
    let t = tenant("contract-a");
    let n1 = s
        .append(&audit_entry("invoices/cw:1", t0()))
        .await
        .expect("append");
    let n2 = s
        .append(&audit_entry("invoices/cw:2", t0() + secs(1)))
        .await
        .expect("append");
    let n3 = s
        .append(&AuditEntry {
            action: "update".into(),
            ..audit_entry("invoices/cw:1", t0() + secs(2))
        })
        .await
        .expect("append");
    assert!(n1 < n2 && n2 < n3, "sequence numbers increase");
    let doc = s.list(&t, Some("invoices/cw:1"), 10).await.expect("list");
    assert_eq!(
        doc.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["create", "update"]
    );
    let latest = s.list(&t, None, 2).await.expect("list");
    assert_eq!(
        latest
            .iter()
            .map(|e| e.doc_key.as_str())
            .collect::<Vec<_>>(),
        vec!["invoices/cw:2", "invoices/cw:1"],
        "the latest entries, oldest first"
    );
    assert!(
        s.list(&tenant("contract-b"), None, 10)
            .await
            .expect("list")
            .is_empty()
    );
}
