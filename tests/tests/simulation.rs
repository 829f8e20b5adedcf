//! The deterministic simulation: seeds, each a random sequence of PSA changes,
//! webhook faults, ERP faults, finance actions and crashes, checked against a
//! fault-free run of the final PSA state (see `ferry_tests::simulation`).
//!
//! `make sim` runs it (`FERRY_SIM_SEEDS=<k>` seeds from `FERRY_SIM_SEED=<n>`);
//! `make soak` runs many more in a release build and prints the totals;
//! `FERRY_SIM_TRACES=<dir>` writes every seed's trace there.
//! `make test` runs the first 10 seeds (about a minute in a debug build).

use std::collections::BTreeMap;

use ferry_tests::simulation::{Plan, run};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "current_thread")]
async fn every_seed_leaves_one_erp_document_per_source_with_the_newest_content_and_nothing_lost() {
    ferry_tests::init_tracing();
    let seeds = env_u64("FERRY_SIM_SEEDS").unwrap_or(10);
    let first = env_u64("FERRY_SIM_SEED").unwrap_or(1);
    let mut failed = Vec::new();
    let mut records = 0u64;
    let mut faults: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut violations = 0usize;
    for seed in first..first + seeds {
        let report = run(&Plan::new(seed)).await;
        records += report.records;
        violations += report.violations.len();
        for (k, n) in &report.faults {
            *faults.entry(k).or_default() += n;
        }
        eprintln!(
            "seed {seed}: {} records, faults {:?}, {} violations",
            report.records,
            report.faults,
            report.violations.len()
        );
        if let Ok(dir) = std::env::var("FERRY_SIM_TRACES") {
            let path = std::path::Path::new(&dir).join(format!("seed-{seed}.trace"));
            std::fs::create_dir_all(&dir).expect("trace directory");
            std::fs::write(&path, report.trace.join("\n")).expect("trace written");
        }
        for v in &report.violations {
            eprintln!("  seed {seed}: {v}");
        }
        if !report.violations.is_empty() {
            failed.push(report);
        }
    }
    eprintln!(
        "simulation: {seeds} seeds, {records} records, {} faults {faults:?}, {violations} invariant violations in {} seeds",
        faults.values().sum::<u64>(),
        failed.len()
    );
    if let Some(r) = failed.first() {
        panic!(
            "{} of {seeds} seeds broke an invariant; the first:\n{}",
            failed.len(),
            r.explain()
        );
    }
}
