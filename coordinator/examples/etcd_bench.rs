//! Throughput and footprint of the etcd store against a local etcd.
//!
//! ```text
//! cargo run --release -p stilts-coordinator --example etcd_bench            # starts a temp etcd
//! STILTS_ETCD_ENDPOINTS=http://127.0.0.1:2379 cargo run --release -p stilts-coordinator --example etcd_bench
//! cargo run --release -p stilts-coordinator --example etcd_bench -- 4000 20000   # jobs, cells
//! ```
//! Prints submit time, keys and bytes per 10,000 cells, and job updates/s for batch sizes 1, 10,
//! 100 and 500 (each update a compare-and-set with its event, as the scheduler writes them).
//! Everything is written under a fresh prefix, deleted at the end.

// support_etcd implements the test StoreFactory for its EtcdFactory, so it needs store_factory too.
#[path = "../tests/store_factory/mod.rs"]
mod store_factory;
#[path = "../tests/support_etcd/mod.rs"]
mod support_etcd;

use std::collections::BTreeMap;
use std::error::Error;
use std::time::Instant;

use etcd_client::DeleteOptions;
use stilts_common::job::{ExecutorSpec, JobSpec, StageKind};
use stilts_common::state::{JobState, JobStatus};
use stilts_common::store::{CellRecord, EventRecord, JobRecord, JobUpdate, Store, SweepRecord};
use stilts_coordinator::store::etcd::{EtcdConfig, EtcdStore};

fn job(i: usize) -> JobRecord {
    let kind = [
        StageKind::Intermediate,
        StageKind::Target,
        StageKind::Evaluate,
    ][i % 3];
    let spec = JobSpec {
        kind,
        model: format!("model-{}", i % 6),
        model_source: "FacebookAI/xlm-roberta-base".into(),
        task: "xnli".into(),
        intermediate: "mnli".into(),
        languages: if kind == StageKind::Evaluate {
            [
                "ar", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
            ]
            .map(String::from)
            .to_vec()
        } else {
            Vec::new()
        },
        seed: (i % 3) as u64,
        recipe: BTreeMap::from([
            ("lr".to_string(), serde_json::json!(2e-5)),
            ("batch_size".to_string(), serde_json::json!(32)),
            ("epochs".to_string(), serde_json::json!(2)),
            ("max_seq_len".to_string(), serde_json::json!(256)),
            ("warmup".to_string(), serde_json::json!(0.1)),
        ]),
        executor: ExecutorSpec::Burn,
        parent: (kind != StageKind::Intermediate).then(|| format!("{:064x}", i + 1_000_000)),
        data_version: "xtreme-r-2021".into(),
        code_version: "0.1.0".into(),
        task_defs: Default::default(),
    };
    JobRecord {
        key: format!("{i:064x}"),
        spec,
        status: JobStatus::new(true),
        max_attempts: 3,
        dependents: 20,
        worker_id: None,
        not_before_ms: 0,
        last_failure: None,
        metrics: None,
        artifact: None,
        version: 0,
        usage: Default::default(),
    }
}

fn cell(i: usize, jobs: usize) -> CellRecord {
    CellRecord {
        model: format!("model-{}", i % 6),
        intermediate: ["none", "mnli", "squad", "hellaswag", "sst2"][i % 5].into(),
        target: format!("target-{}", i % 10),
        language: format!("l{}", i % 20),
        seed: (i % 3) as u64,
        evaluate_job: format!("{:064x}", (i % jobs) / 3 * 3 + 2),
    }
}

/// Moves each job one step (ready ↔ leased) with its event, `batch` updates per call.
async fn round(
    store: &EtcdStore,
    jobs: &mut [JobRecord],
    batch: usize,
) -> Result<f64, Box<dyn Error>> {
    let start = Instant::now();
    for chunk in jobs.chunks_mut(batch) {
        let updates: Vec<JobUpdate> = chunk
            .iter()
            .map(|j| {
                let mut record = j.clone();
                let to = if j.status.state == JobState::Ready {
                    JobState::Leased
                } else {
                    JobState::Ready
                };
                record.status.state = to;
                record.worker_id = (to == JobState::Leased).then(|| "worker-1".into());
                JobUpdate {
                    expected_version: j.version,
                    event: Some(EventRecord {
                        seq: 0,
                        job_key: j.key.clone(),
                        from: j.status.state.to_string(),
                        to: to.to_string(),
                        attempt: 1,
                        worker_id: "worker-1".into(),
                        message: String::new(),
                        at_ms: 0,
                    }),
                    record,
                }
            })
            .collect();
        let results = store.update_jobs(updates.clone()).await?;
        for ((j, u), r) in chunk.iter_mut().zip(updates).zip(results) {
            *j = u.record;
            j.version = r?;
        }
    }
    Ok(jobs.len() as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let n_jobs = args.next().transpose()?.unwrap_or(2_000);
    let n_cells = args.next().transpose()?.unwrap_or(10_000);

    let mut cfg = EtcdConfig::default();
    cfg.apply_env();
    let _server = if std::env::var_os(stilts_coordinator::store::etcd::ENV_ENDPOINTS).is_none() {
        let server = support_etcd::EtcdServer::start()
            .ok_or("no etcd: set STILTS_ETCD_ENDPOINTS or install etcd-server")?;
        cfg.endpoints = vec![server.endpoint()];
        Some(server)
    } else {
        None
    };
    cfg.prefix = support_etcd::unique_prefix("bench");
    println!("etcd {} prefix {}", cfg.endpoints_display(), cfg.prefix);
    let store = EtcdStore::connect(cfg.clone()).await?;

    let mut jobs: Vec<JobRecord> = (0..n_jobs).map(job).collect();
    let cells: Vec<CellRecord> = (0..n_cells).map(|i| cell(i, n_jobs)).collect();
    let sweep = SweepRecord {
        name: "bench".into(),
        file_name: "bench.toml".into(),
        grid_toml: "[sweep]\nname = \"bench\"\n".repeat(20),
        grid_digest: "0".repeat(64),
        submitted_at_ms: 0,
        cancelled: false,
        backend: String::new(),
    };
    let start = Instant::now();
    let outcome = store.submit(sweep, jobs.clone(), cells).await?;
    let took = start.elapsed();
    println!(
        "submit: {n_jobs} jobs + {n_cells} cells in {:.2} s ({} jobs inserted)",
        took.as_secs_f64(),
        outcome.jobs_inserted
    );
    let fp = store.footprint("bench").await?;
    let per = |x: u64| x as f64 * 10_000.0 / fp.cells.max(1) as f64;
    println!(
        "per 10,000 cells: {:.0} cell keys, {:.0} bytes ({:.1} bytes/cell)",
        per(fp.cell_keys),
        per(fp.cell_bytes),
        fp.cell_bytes as f64 / fp.cells.max(1) as f64
    );
    println!(
        "jobs: {} keys, {} bytes ({:.0} bytes/job); memberships: {} keys, {} bytes",
        fp.job_keys,
        fp.job_bytes,
        fp.job_bytes as f64 / fp.job_keys.max(1) as f64,
        fp.member_keys,
        fp.member_bytes
    );

    for v in &mut jobs {
        v.version = 1;
    }
    for batch in [1, 10, 100, 500] {
        // Batch size 1 pays one commit per update: a smaller sample keeps the run short.
        let n = if batch == 1 {
            jobs.len().min(300)
        } else {
            jobs.len()
        };
        let rate = round(&store, &mut jobs[..n], batch).await?;
        println!("update_jobs batch {batch:>3}: {rate:>8.0} updates/s ({n} updates)");
    }
    let events = store.events_after(0, usize::MAX).await?.len();
    println!("events logged: {events}");

    store
        .client()
        .kv_client()
        .delete(cfg.prefix.clone(), Some(DeleteOptions::new().with_prefix()))
        .await?;
    Ok(())
}
