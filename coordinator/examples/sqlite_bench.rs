//! Measures the SQLite store: submit time for a large grid, then job updates per second at
//! several batch sizes (each batch is one `update_jobs` call, one transaction).
//!
//! ```text
//! cargo run -p stilts-coordinator --example sqlite_bench -- [cells] [updates-per-size] [sync]
//! ```
//! `cells` (default 1,000,000) is rounded down to a multiple of 40 languages × 50 seeds;
//! `sync` is `normal` (default) or `full`.
//!
//! Measured on the shared 2-core dev machine (load ~5, debug build of this crate): 1,000,000
//! cells / 52,500 jobs submit in 6.0 s; NORMAL: 5.5k updates/s at batch 1, 7.3k at 10, 16k at
//! 100, 15k at 1000; FULL: 260/s at batch 1, 2.5k at 10, 13k at 100, 23k at 1000.

use std::collections::BTreeMap;
use std::time::Instant;

use stilts_common::job::{ExecutorSpec, JobSpec, StageKind};
use stilts_common::state::{JobState, JobStatus};
use stilts_common::store::{
    CellRecord, EventRecord, JobRecord, JobUpdate, Store, StoreError, SweepRecord,
};
use stilts_coordinator::store::sqlite::{SqliteOptions, SqliteStore, Synchronous};

const LANGUAGES: usize = 40;
const SEEDS: u64 = 50;
const MODELS: usize = 5;

fn job(key: String, kind: StageKind, parent: Option<&str>, seed: u64, task: &str) -> JobRecord {
    let languages = if kind == StageKind::Evaluate {
        (0..LANGUAGES).map(|l| format!("l{l:02}")).collect()
    } else {
        Vec::new()
    };
    JobRecord {
        key,
        spec: JobSpec {
            kind,
            model: "xlmr".into(),
            model_source: "FacebookAI/xlm-roberta-base".into(),
            task: task.into(),
            intermediate: "squad".into(),
            languages,
            seed,
            recipe: BTreeMap::from([
                ("lr".to_string(), serde_json::json!(2e-5)),
                ("epochs".to_string(), serde_json::json!(3)),
            ]),
            executor: ExecutorSpec::Burn,
            parent: parent.map(str::to_owned),
            data_version: "v1".into(),
            code_version: "c1".into(),
            task_defs: Default::default(),
        },
        status: JobStatus::new(parent.is_none()),
        max_attempts: 3,
        dependents: 1,
        worker_id: None,
        not_before_ms: 0,
        last_failure: None,
        metrics: None,
        artifact: None,
        version: 0,
        usage: Default::default(),
    }
}

/// A grid of about `cells` cells: models × intermediates × targets × seeds × languages.
fn grid(cells: usize) -> (Vec<JobRecord>, Vec<CellRecord>) {
    let chains = (cells / (LANGUAGES * SEEDS as usize)).max(1);
    let targets = chains.clamp(1, 10);
    let models = (chains / targets).clamp(1, MODELS);
    let inters = (chains / (targets * models)).max(1);
    let (mut jobs, mut out) = (Vec::new(), Vec::with_capacity(cells));
    for model in 0..models {
        for inter in 0..inters {
            for seed in 0..SEEDS {
                let ikey = format!("i-{model}-{inter}-{seed}");
                jobs.push(job(
                    ikey.clone(),
                    StageKind::Intermediate,
                    None,
                    seed,
                    "inter",
                ));
                for target in 0..targets {
                    let tkey = format!("t-{model}-{inter}-{target}-{seed}");
                    let ekey = format!("e-{model}-{inter}-{target}-{seed}");
                    jobs.push(job(
                        tkey.clone(),
                        StageKind::Target,
                        Some(&ikey),
                        seed,
                        "tgt",
                    ));
                    jobs.push(job(
                        ekey.clone(),
                        StageKind::Evaluate,
                        Some(&tkey),
                        seed,
                        "tgt",
                    ));
                    for l in 0..LANGUAGES {
                        out.push(CellRecord {
                            model: format!("m{model}"),
                            intermediate: format!("i{inter}"),
                            target: format!("t{target}"),
                            language: format!("l{l:02}"),
                            seed,
                            evaluate_job: ekey.clone(),
                        });
                    }
                }
            }
        }
    }
    (jobs, out)
}

#[tokio::main]
async fn main() -> Result<(), StoreError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cells: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let per_size: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let synchronous = match args.get(2).map(String::as_str) {
        Some("full") => Synchronous::Full,
        _ => Synchronous::Normal,
    };
    let dir = std::env::temp_dir().join(format!("stilts-sqlite-bench-{}", std::process::id()));
    let path = dir.join("state.db");
    let opts = SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&path, opts)?;

    let (jobs, cell_records) = grid(cells);
    let (n_jobs, n_cells) = (jobs.len(), cell_records.len());
    let sweep = SweepRecord {
        name: "bench".into(),
        file_name: "bench.toml".into(),
        grid_toml: String::new(),
        grid_digest: "d".into(),
        submitted_at_ms: 0,
        cancelled: false,
        backend: String::new(),
    };
    let t = Instant::now();
    let outcome = store.submit(sweep, jobs, cell_records).await?;
    println!(
        "submit: {n_cells} cells, {} of {n_jobs} jobs inserted in {:.2} s",
        outcome.jobs_inserted,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let snap = store.load().await?;
    println!(
        "load: {} jobs in {:.2} s",
        snap.jobs.len(),
        t.elapsed().as_secs_f64()
    );
    let mut jobs: Vec<JobRecord> = snap.jobs.into_iter().map(|(j, _)| j).collect();

    println!("synchronous = {synchronous:?}");
    let mut next = 0usize;
    for batch in [1usize, 10, 100, 1000] {
        let total = if batch == 1 { per_size / 4 } else { per_size };
        let t = Instant::now();
        let mut done = 0;
        while done < total {
            let idx: Vec<usize> = (0..batch).map(|i| (next + i) % jobs.len()).collect();
            next += batch;
            let updates = idx
                .iter()
                .map(|&i| {
                    let j = &jobs[i];
                    let mut record = j.clone();
                    record.status.state = JobState::Leased;
                    record.status.attempt += 1;
                    record.worker_id = Some("w1".into());
                    JobUpdate {
                        expected_version: j.version,
                        event: Some(EventRecord {
                            seq: 0,
                            job_key: j.key.clone(),
                            from: j.status.state.to_string(),
                            to: "leased".into(),
                            attempt: record.status.attempt,
                            worker_id: "w1".into(),
                            message: String::new(),
                            at_ms: 0,
                        }),
                        record,
                    }
                })
                .collect();
            let got = store.update_jobs(updates).await?;
            for (&i, v) in idx.iter().zip(got) {
                jobs[i].version = v.expect("no conflicts in the bench");
            }
            done += batch;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "update_jobs batch {batch:>4}: {done} updates in {s:.2} s = {:.0} updates/s",
            done as f64 / s
        );
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
