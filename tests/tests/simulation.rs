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

/// One seed of the pair simulation on a runtime of its own, reported.
fn one_pair(
    psa: &str,
    erp: &str,
    seed: u64,
    steps: usize,
) -> ferry_tests::pair_simulation::PairReport {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let report = rt.block_on(ferry_tests::pair_simulation::run(psa, erp, seed, steps));
    eprintln!(
        "{psa} → {erp} seed {seed}: {} records, faults {:?}, {} violations, {:.0} s",
        report.records,
        report.faults,
        report.violations.len(),
        started.elapsed().as_secs_f64()
    );
    if let Ok(dir) = std::env::var("FERRY_SIM_TRACES") {
        let path = std::path::Path::new(&dir).join(format!("{psa}-{erp}-seed-{seed}.trace"));
        std::fs::create_dir_all(&dir).expect("trace directory");
        std::fs::write(&path, report.trace.join("\n")).expect("trace written");
    }
    report
}

/// The seeded fault simulation on every pair of the simulators' stage but
/// ConnectWise → Xero (the simulation above): `FERRY_PAIR_SIM_SEEDS` seeds
/// (default 1) from `FERRY_PAIR_SIM_SEED` (default 1) on each pair, or on the
/// pairs named in `FERRY_PAIR_SIM_PAIRS` (`harvest-netsuite,connectwise-businesscentral`),
/// `FERRY_PAIR_SIM_STEPS` operations each (default 40). Every pair and seed
/// runs at once, each on a runtime of its own.
#[test]
fn every_pair_keeps_one_erp_document_per_source_and_explains_everything_under_faults() {
    use ferry_cli::demo::{DEFAULT_ERP, DEFAULT_PSA, stage::pairs};
    ferry_tests::init_tracing();
    let seeds = env_u64("FERRY_PAIR_SIM_SEEDS").unwrap_or(1);
    let first = env_u64("FERRY_PAIR_SIM_SEED").unwrap_or(1);
    let steps = env_u64("FERRY_PAIR_SIM_STEPS").unwrap_or(40) as usize;
    let named = std::env::var("FERRY_PAIR_SIM_PAIRS").ok();
    let chosen: Vec<(&str, &str)> = pairs()
        .into_iter()
        .filter(|p| *p != (DEFAULT_PSA, DEFAULT_ERP))
        .filter(|(p, e)| {
            named
                .as_deref()
                .is_none_or(|n| n.split(',').any(|x| x.trim() == format!("{p}-{e}")))
        })
        .collect();
    assert!(
        !chosen.is_empty(),
        "no pair to run (FERRY_PAIR_SIM_PAIRS={named:?}; pairs: {:?})",
        pairs()
    );
    // Each seed mostly waits (holds, backoffs, the PSA's rate budget), so
    // pairs and seeds run side by side, each on a runtime of its own.
    let runs: Vec<(&str, &str, u64)> = chosen
        .iter()
        .flat_map(|(p, e)| (first..first + seeds).map(move |s| (*p, *e, s)))
        .collect();
    let mut failed: Vec<ferry_tests::pair_simulation::PairReport> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|&(psa, erp, seed)| s.spawn(move || one_pair(psa, erp, seed, steps)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a pair run does not panic"))
            .filter(|r| !r.violations.is_empty())
            .collect()
    });
    failed.sort_by_key(|r| (r.psa.clone(), r.erp.clone(), r.seed));
    if let Some(r) = failed.first() {
        panic!(
            "{} pair seeds broke a promise ({:?}); the first:\n{}",
            failed.len(),
            failed
                .iter()
                .map(|r| format!("{}-{} seed {}", r.psa, r.erp, r.seed))
                .collect::<Vec<_>>(),
            r.explain()
        );
    }
}
