//! The conformance suite every connector meets, whatever its vendor and
//! whether the vendor is simulated or real behind a fault proxy: an answer it
//! cannot use (a body that is not JSON, a 500, a 429) is an error of its retry
//! class, never an empty read or a panic; once the vendor answers again, the
//! same read returns the records.

use chrono::NaiveDate;
use ferry_core::ConnectorError;
use ferry_core::deps::TenantContext;
use ferry_core::posting::DocKind;
use ferry_sim::stage::Fault;

/// A read's outcome as the suite compares it: `ok <n>` or the error's class.
pub fn class<T>(r: &Result<Vec<T>, ConnectorError>) -> String {
    match r {
        Ok(v) => format!("ok {}", v.len()),
        Err(ConnectorError::Protocol { .. }) => "protocol".into(),
        Err(ConnectorError::Transient { .. }) => "transient".into(),
        Err(ConnectorError::Throttled { .. }) => "throttled".into(),
        Err(e) => format!("other: {e}"),
    }
}

/// The class each fault must read as.
pub fn expected(f: Fault) -> &'static str {
    match f {
        Fault::NotJson => "protocol",
        Fault::ServerError => "transient",
        Fault::Throttled => "throttled",
    }
}

/// Reads the PSA's customers and the ERP's invoices dated in `[from, to]`
/// under each fault (`psa` and `erp` put it in the side's next answer), then
/// once more without: returns how many of each the clean reads found.
pub async fn reads_under_faults(
    ctx: &TenantContext,
    psa: &dyn Fn(Fault),
    erp: &dyn Fn(Fault),
    from: NaiveDate,
    to: NaiveDate,
) -> (usize, usize) {
    let (p, e) = (ctx.psa.system(), ctx.erp.system());
    for fault in Fault::ALL {
        psa(fault);
        let read = ctx
            .psa
            .changes(ferry_canon::Domain::Customers, None, 100)
            .await;
        assert_eq!(class(&read), expected(fault), "{p} after {fault:?}");
        erp(fault);
        let read = ctx.erp.list_documents(DocKind::Invoice, from, to).await;
        assert_eq!(class(&read), expected(fault), "{e} after {fault:?}");
    }
    let customers = ctx
        .psa
        .changes(ferry_canon::Domain::Customers, None, 100)
        .await
        .unwrap_or_else(|e| panic!("{p} reads again: {e}"));
    let docs = ctx
        .erp
        .list_documents(DocKind::Invoice, from, to)
        .await
        .unwrap_or_else(|err| panic!("{e} reads again: {err}"));
    (customers.len(), docs.len())
}
