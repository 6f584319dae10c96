//! Responsiveness of the coordinator around a big sweep (issue 12): a real coordinator in this
//! process (SQLite store in a temporary directory, loopback gRPC and HTTP, the system clock),
//! simulated workers that acquire, heartbeat and complete jobs over gRPC, and a dashboard poller
//! that fetches `/api/sweeps/NAME` every second, all while a grid of CELLS cells is submitted and
//! then run for SECONDS. Prints the latency of every heartbeat and AcquireJob (p50, p99, max), the
//! heartbeats slower than 1 s, the dashboard fetch times and sizes, the submit time, the jobs
//! completed and the leases lost (`stilts_lease_expiries_total`).
//!
//! ```text
//! cargo run --release -p stilts-coordinator --example large_sweep_bench -- [cells] [seconds] [workers]
//! ```
//! Defaults: 1,000,000 cells (2 models × 5 intermediate incl. none × 10 targets × 40 languages ×
//! seeds), 60 s, 8 workers of one slot. A benchmark, not a test: it prints figures and asserts
//! nothing. `STILTS_BENCH_NO_DASHBOARD=1` leaves the dashboard unpolled (to see what it costs).
//!
//! Measured (release build, the shared 2-core dev machine, 1,000,000 cells / 52,000 jobs, 20 s
//! after the submit, two runs): submit 3.4–3.5 s; during the submit heartbeat p99 1.8–15 ms
//! (max 76 ms), AcquireJob p99 3.4–50 ms (max 115 ms); afterwards, with the dashboard polled
//! every second, heartbeat p99 2.2–2.7 ms (max 14 ms), AcquireJob p99 4.9–5.4 ms (max ~300 ms,
//! once per run), dashboard JSON p50 128–138 ms, max 214 ms, 45 KB; no heartbeat over 1 s, no
//! lease lost.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stilts_common::clock::SystemClock;
use stilts_coordinator::store::sqlite::SqliteStore;
use stilts_coordinator::{HttpListener, Setup};
use stilts_proto::v1 as pb;
use stilts_proto::v1::sweep_service_client::SweepServiceClient;
use stilts_proto::v1::worker_service_client::WorkerServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

#[derive(Default)]
struct Samples {
    /// While the submit is under way, samples go to the `*_submit` vectors.
    submitting: bool,
    heartbeat_ms: Vec<f64>,
    acquire_ms: Vec<f64>,
    heartbeat_submit_ms: Vec<f64>,
    acquire_submit_ms: Vec<f64>,
    fetch_ms: Vec<f64>,
    fetch_bytes: Vec<usize>,
    /// (seconds since the submit started, fetch ms) of every fetch.
    fetch_at: Vec<(f64, f64)>,
    submit_started: Option<Instant>,
    completed: u64,
}

fn grid(cells: usize) -> String {
    let seeds = (cells / 4_000).max(1);
    let seeds: Vec<String> = (1..=seeds).map(|s| s.to_string()).collect();
    let langs: Vec<String> = (0..40).map(|l| format!("\"l{l:02}\"")).collect();
    let targets: Vec<String> = (0..10).map(|t| format!("\"t{t}\"")).collect();
    format!(
        r#"[sweep]
name = "big"
seeds = [{}]

[models]
alpha = "models/alpha"
beta = "models/beta"

[grid]
intermediate = ["none", "i1", "i2", "i3", "i4"]
target = [{}]
languages = [{}]

[executor]
kind = "command"
intermediate = "true"
target = "true"
evaluate = "true"
"#,
        seeds.join(", "),
        targets.join(", "),
        langs.join(", ")
    )
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn line(name: &str, v: &mut [f64]) {
    let n = v.len();
    println!(
        "{name:<22} n={n:<7} p50={:>8.2} ms  p99={:>8.2} ms  max={:>8.2} ms",
        percentile(v, 0.5),
        percentile(v, 0.99),
        percentile(v, 1.0)
    );
}

/// `GET path` over a fresh connection: the body.
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

fn metrics_for(a: &pb::JobAssignment) -> String {
    let spec: serde_json::Value = serde_json::from_str(&a.spec_json).unwrap();
    if spec["kind"] != "evaluate" {
        return r#"{"train": {"steps": 1}}"#.into();
    }
    let mut m = serde_json::Map::new();
    for l in spec["languages"].as_array().unwrap() {
        m.insert(
            l.as_str().unwrap().into(),
            serde_json::json!({"accuracy": 50.0}),
        );
    }
    serde_json::Value::Object(m).to_string()
}

async fn worker(channel: Channel, samples: Arc<Mutex<Samples>>, stop: CancellationToken, n: usize) {
    let mut c = WorkerServiceClient::new(channel);
    let id = c
        .register_worker(pb::RegisterWorkerRequest {
            name: format!("sim-{n}"),
            slots: 1,
            backend: "command".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .worker_id;
    while !stop.is_cancelled() {
        let t = Instant::now();
        let got = c
            .acquire_job(pb::AcquireJobRequest {
                worker_id: id.clone(),
                free_slots: 1,
                wait_ms: 0,
            })
            .await;
        {
            let mut s = samples.lock().unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if s.submitting {
                s.acquire_submit_ms.push(ms);
            } else {
                s.acquire_ms.push(ms);
            }
        }
        let running: Vec<pb::JobAssignment> = got
            .ok()
            .and_then(|r| r.into_inner().assignment)
            .into_iter()
            .collect();
        // The job "runs" for 50 ms, with a heartbeat in the middle (idle workers heartbeat too).
        tokio::time::sleep(Duration::from_millis(25)).await;
        let t = Instant::now();
        let _ = c
            .heartbeat(pb::HeartbeatRequest {
                worker_id: id.clone(),
                running: running
                    .iter()
                    .map(|a| pb::RunningJob {
                        job_key: a.job_key.clone(),
                        attempt: a.attempt,
                        fencing_token: a.fencing_token,
                        progress: None,
                        curve: vec![],
                    })
                    .collect(),
            })
            .await;
        {
            let mut s = samples.lock().unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if s.submitting {
                s.heartbeat_submit_ms.push(ms);
            } else {
                s.heartbeat_ms.push(ms);
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        for a in running {
            let done = c
                .complete_job(pb::CompleteJobRequest {
                    worker_id: id.clone(),
                    job_key: a.job_key.clone(),
                    attempt: a.attempt,
                    fencing_token: a.fencing_token,
                    metrics_json: metrics_for(&a),
                    artifact: String::new(),
                    duration_s: 0.05,
                    curve: vec![],
                })
                .await;
            if done.is_ok() {
                samples.lock().unwrap().completed += 1;
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cells: usize = args.get(1).map_or(1_000_000, |a| a.parse().expect("cells"));
    let seconds: u64 = args.get(2).map_or(60, |a| a.parse().expect("seconds"));
    let workers: usize = args.get(3).map_or(8, |a| a.parse().expect("workers"));

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let http = HttpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let http_addr = http.local_addr().unwrap();
    let cfg = Setup {
        http_listener: Some(http),
        ..Setup::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(stilts_coordinator::run(
        cfg,
        listener,
        store,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    let samples = Arc::new(Mutex::new(Samples::default()));
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for n in 0..workers {
        tasks.push(tokio::spawn(worker(
            channel.clone(),
            samples.clone(),
            stop.clone(),
            n,
        )));
    }
    let poller = {
        let (samples, stop) = (samples.clone(), stop.clone());
        tokio::spawn(async move {
            // STILTS_BENCH_NO_DASHBOARD=1: no polling (to see what the dashboard costs).
            let poll = std::env::var_os("STILTS_BENCH_NO_DASHBOARD").is_none();
            while poll && !stop.is_cancelled() {
                let t = Instant::now();
                let body = get(http_addr, "/api/sweeps/big").await;
                if body.starts_with('{') && body.contains("\"cells_total\"") {
                    let mut s = samples.lock().unwrap();
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    s.fetch_ms.push(ms);
                    s.fetch_bytes.push(body.len());
                    if let Some(started) = s.submit_started {
                        let at = (t - started).as_secs_f64();
                        s.fetch_at.push((at, ms));
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    let text = grid(cells);
    // Workers registered and polling first, so the submit is measured with them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    {
        let mut s = samples.lock().unwrap();
        s.submitting = true;
        s.submit_started = Some(t);
    }
    let sub = SweepServiceClient::new(channel.clone())
        .max_decoding_message_size(64 << 20)
        .submit_sweep(pb::SubmitSweepRequest {
            file_name: "big.toml".into(),
            grid_toml: text,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let submit_s = t.elapsed().as_secs_f64();
    samples.lock().unwrap().submitting = false;
    println!(
        "submitted {} cells, {} jobs in {submit_s:.1} s; measuring for {seconds} s more",
        sub.cells, sub.jobs
    );
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let _ = poller.await;
    let metrics = get(http_addr, "/metrics").await;
    let expiries = metrics
        .lines()
        .find(|l| l.starts_with("stilts_lease_expiries_total"))
        .unwrap_or("stilts_lease_expiries_total ?")
        .to_string();
    shutdown.cancel();
    let _ = server.await;

    let mut s = samples.lock().unwrap();
    let slow = s
        .heartbeat_ms
        .iter()
        .chain(&s.heartbeat_submit_ms)
        .filter(|&&ms| ms > 1_000.0)
        .count();
    println!(
        "cells {} · workers {workers} · submit {submit_s:.1} s · jobs completed {}",
        sub.cells, s.completed
    );
    line("heartbeat, submitting", &mut s.heartbeat_submit_ms);
    line("AcquireJob, submitting", &mut s.acquire_submit_ms);
    line("heartbeat, after", &mut s.heartbeat_ms);
    line("AcquireJob, after", &mut s.acquire_ms);
    line("dashboard JSON", &mut s.fetch_ms);
    let max_bytes = s.fetch_bytes.iter().max().copied().unwrap_or(0);
    let mut slowest = s.fetch_at.clone();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    let slowest: Vec<String> = slowest
        .iter()
        .take(3)
        .map(|(at, ms)| format!("{ms:.0} ms at +{at:.1} s"))
        .collect();
    println!(
        "slowest dashboard fetches (since the submit started): {}",
        slowest.join(", ")
    );
    println!("heartbeats over 1 s: {slow} · dashboard reply up to {max_bytes} bytes · {expiries}");
}
