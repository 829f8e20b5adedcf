//! The deterministic simulation: seeds, each a random sequence of PSA changes,
//! webhook faults, ERP faults, finance actions and crashes, checked against a
//! fault-free run of the final PSA state (see `ferry_tests::simulation`).
//!
//! `make sim` runs it (`FERRY_SIM_SEEDS=<k>` seeds from `FERRY_SIM_SEED=<n>`);
//! `make soak` runs many more in a release build and prints the totals;
//! `FERRY_SIM_JOBS=<j>` runs seeds on j threads (each seed alone on its own
//! single-threaded runtime, so a seed replays the same whatever j is);
//! `FERRY_SIM_STEPS=<n>` and `FERRY_SIM_MEMBERS=<m>` make each seed longer and its
//! firm larger (300 operations and 6 people unless set);
//! `FERRY_SIM_TRACES=<dir>` writes every seed's trace there.
//! `make test` runs the first 10 seeds (about a minute in a debug build).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ferry_tests::simulation::{Plan, Report, run};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs one seed on a runtime of its own and reports it.
fn one(seed: u64) -> Report {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut plan = Plan::new(seed);
    plan.steps = env_u64("FERRY_SIM_STEPS").map_or(plan.steps, |n| n as usize);
    plan.members = env_u64("FERRY_SIM_MEMBERS").map_or(plan.members, |n| n as usize);
    let report = rt.block_on(run(&plan));
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
    report
}

#[test]
fn every_seed_leaves_one_erp_document_per_source_with_the_newest_content_and_nothing_lost() {
    ferry_tests::init_tracing();
    let seeds = env_u64("FERRY_SIM_SEEDS").unwrap_or(10);
    let first = env_u64("FERRY_SIM_SEED").unwrap_or(1);
    let jobs = env_u64("FERRY_SIM_JOBS").unwrap_or(1).clamp(1, 64);
    let started = Instant::now();
    let next = AtomicU64::new(first);
    let records = AtomicU64::new(0);
    let faults: Mutex<BTreeMap<&'static str, u64>> = Mutex::default();
    let failed: Mutex<Vec<Report>> = Mutex::default();
    let violations = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= first + seeds {
                        break;
                    }
                    let report = one(seed);
                    records.fetch_add(report.records, Ordering::SeqCst);
                    violations.fetch_add(report.violations.len() as u64, Ordering::SeqCst);
                    let mut f = faults.lock().expect("not poisoned");
                    for (k, n) in &report.faults {
                        *f.entry(k).or_default() += n;
                    }
                    drop(f);
                    if !report.violations.is_empty() {
                        failed.lock().expect("not poisoned").push(report);
                    }
                }
            });
        }
    });
    let faults = faults.into_inner().expect("not poisoned");
    let mut failed = failed.into_inner().expect("not poisoned");
    failed.sort_by_key(|r| r.seed);
    eprintln!(
        "simulation: {seeds} seeds, {} records, {} faults {faults:?}, {} invariant violations in {} seeds, {:.0} s on {jobs} threads",
        records.into_inner(),
        faults.values().sum::<u64>(),
        violations.into_inner(),
        failed.len(),
        started.elapsed().as_secs_f64(),
    );
    if let Some(r) = failed.first() {
        panic!(
            "{} of {seeds} seeds broke an invariant (seeds {:?}); the first:\n{}",
            failed.len(),
            failed.iter().map(|r| r.seed).collect::<Vec<_>>(),
            r.explain()
        );
    }
}
