//! The coordinator's HTTP listener against a real coordinator (in-process, loopback gRPC, SQLite
//! on a temporary file): `/metrics` values after running jobs, the JSON API, the dashboard page.

mod http_support;
mod store_factory;
mod support;

use http_support::*;
use stilts_proto::v1 as pb;
use support::*;

const SWEEP: &str = "metrics";

fn small_grid() -> String {
    // 2 intermediates (none, mnli) × xnli × 2 languages, 1 seed: 4 cells, 1 + 2 + 4 = 7 jobs.
    grid(
        SWEEP,
        &["none", "mnli"],
        r#"["xnli"]"#,
        r#"{ xnli = ["de", "sw"] }"#,
    )
}

fn progress(a: &pb::JobAssignment, step: u64) -> pb::RunningJob {
    pb::RunningJob {
        job_key: a.job_key.clone(),
        attempt: a.attempt,
        fencing_token: a.fencing_token,
        progress: Some(pb::Progress {
            step,
            total: 100,
            loss: 0.5,
            phase: "train".into(),
        }),
        curve: vec![],
    }
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let (cfg, http) = config_with_http();
    let mut h = Harness::start(SqliteFactory::default(), cfg).await;
    let sub = h.submit("metrics.toml", &small_grid()).await;
    assert_eq!((sub.cells, sub.jobs), (4, 7));

    // A worker takes a job and disappears: its lease expires, its late report is fenced.
    let lost = h.register("lost", &[]).await;
    let first = h.acquire(&lost, 50).await.unwrap();
    h.clock.advance(TTL_MS + 1);
    eventually("the lease to expire", || {
        let st = h.sweeps.clone();
        async move {
            let mut st = st;
            let s = st
                .get_sweep(pb::GetSweepRequest {
                    sweep: SWEEP.into(),
                })
                .await
                .unwrap()
                .into_inner();
            (jobs(&s, "intermediate", "leased") + jobs(&s, "target", "leased") == 0).then_some(())
        }
    })
    .await;
    assert!(h.complete(&lost, &first, "").await.is_err());
    h.clock.advance(4_001); // past the backoff cap

    // A live worker: two heartbeats 2 s apart with 40 more steps = 20 steps/s.
    let w = h.register("w1", &[]).await;
    let a = h.acquire(&w, 50).await.unwrap();
    h.workers
        .heartbeat(pb::HeartbeatRequest {
            worker_id: w.clone(),
            running: vec![progress(&a, 10)],
        })
        .await
        .unwrap();
    h.clock.advance(2_000);
    h.workers
        .heartbeat(pb::HeartbeatRequest {
            worker_id: w.clone(),
            running: vec![progress(&a, 50)],
        })
        .await
        .unwrap();
    let m = parse_metrics(&get(http, "/metrics").await.2);
    let rate = format!("stilts_worker_steps_per_second{{worker=\"{w}\"}}");
    assert_eq!(m[&rate], 20.0, "{m:#?}");
    assert_eq!(
        m[&format!("stilts_worker_steps_total{{worker=\"{w}\"}}")],
        40.0
    );
    assert_eq!(
        m["stilts_jobs{kind=\"intermediate\",state=\"leased\"}"],
        1.0
    );
    complete_one(&mut h, &w, &a).await;
    let done = 1 + drain(&mut h, &w).await;
    assert_eq!(done, 7);

    let (status, ctype, text) = get(http, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        ctype,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let m = parse_metrics(&text);
    assert_eq!(total(&m, "stilts_job_completions_total"), done as f64);
    assert_eq!(m["stilts_job_completions_total{kind=\"evaluate\"}"], 4.0);
    assert_eq!(m["stilts_job_completions_total{kind=\"target\"}"], 2.0);
    assert_eq!(
        m[&format!("stilts_worker_jobs_completed_total{{worker=\"{w}\"}}")],
        7.0
    );
    assert_eq!(m["stilts_jobs{kind=\"evaluate\",state=\"succeeded\"}"], 4.0);
    assert_eq!(total(&m, "stilts_jobs"), 7.0);
    assert_eq!(
        m["stilts_cells{sweep=\"metrics\",state=\"succeeded\"}"],
        4.0
    );
    assert_eq!(m["stilts_workers_connected"], 1.0);
    assert_eq!(m["stilts_lease_expiries_total"], 1.0);
    // Compute: the lost worker's attempt ran until its lease expired (TTL + 1 ms), the
    // heartbeat-measured one 2 s; the rest took no time on the manual clock.
    let compute =
        |o: &str| m[&format!("stilts_compute_seconds_total{{device=\"cpu\",outcome=\"{o}\"}}")];
    assert_eq!(compute("lost"), (TTL_MS + 1) as f64 / 1000.0);
    assert_eq!(compute("succeeded"), 2.0);
    assert_eq!(
        m["stilts_compute_seconds_total{device=\"gpu\",outcome=\"succeeded\"}"],
        0.0
    );
    assert_eq!(m["stilts_lease_expired_jobs_total"], 1.0);
    assert_eq!(m["stilts_stale_reports_total{report=\"complete\"}"], 1.0);
    assert_eq!(
        m["stilts_job_attempt_failures_total{kind=\"intermediate\"}"],
        1.0
    );
    // Every attempt that ended was timed; the one heartbeat-measured run took 2 s.
    let durations =
        "stilts_job_duration_seconds_count{kind=\"intermediate\",outcome=\"succeeded\"}";
    assert_eq!(m[durations], 1.0);
    assert_eq!(
        m["stilts_job_duration_seconds_sum{kind=\"intermediate\",outcome=\"succeeded\"}"],
        2.0
    );
    assert_eq!(
        m["stilts_job_duration_seconds_count{kind=\"intermediate\",outcome=\"failed\"}"],
        1.0
    );
    // 8 assignments (7 jobs, one twice), each waited in the queue and went through the writer.
    assert_eq!(total(&m, "stilts_job_queue_wait_seconds_count"), 8.0);
    assert!(m["stilts_acquire_latency_seconds_count"] >= 8.0);
    assert_eq!(
        m["stilts_acquire_latency_seconds_bucket{le=\"+Inf\"}"],
        m["stilts_acquire_latency_seconds_count"]
    );
    h.stop().await;
}

#[tokio::test]
async fn json_api_and_dashboard() {
    let logs = tempfile::tempdir().unwrap();
    let (mut cfg, http) = config_with_http();
    cfg.config.artifacts_root = Some(logs.path().to_path_buf());
    let mut h = Harness::start(SqliteFactory::default(), cfg).await;
    h.submit("metrics.toml", &small_grid()).await;

    let (status, ctype, page) = get(http, "/").await;
    assert_eq!((status, ctype.as_str()), (200, "text/html; charset=utf-8"));
    assert!(page.contains("<title>stilts dashboard</title>"));
    assert!(
        !page.contains("innerHTML"),
        "the page builds the DOM from text only"
    );
    assert_eq!(get(http, "/api/sweeps/nope").await.0, 404);
    assert_eq!(get(http, "/nope").await.0, 404);
    assert_eq!(get(http, "/api/sweeps/metrics/cells/99").await.0, 404);

    let list = get_json(http, "/api/sweeps").await;
    assert_eq!(list[0]["name"], SWEEP);
    assert_eq!(list[0]["cells_total"], 4);
    assert_eq!(list[0]["cells"]["ready"], 4);

    // Run everything but one evaluation, which fails for good.
    let w = h.register("w1", &[]).await;
    let mut failed = None;
    while let Some(a) = h.acquire(&w, 50).await {
        if failed.is_none() && kind_and_parent(&a).0 == "evaluate" {
            std::fs::create_dir_all(logs.path().join(&a.job_key).join("logs/attempt-1")).unwrap();
            std::fs::write(
                logs.path()
                    .join(&a.job_key)
                    .join("logs/attempt-1/stderr.log"),
                "loading\nTraceback: <b>boom</b>\n",
            )
            .unwrap();
            h.fail_with(&w, &a, false, "exit status 2").await.unwrap();
            failed = Some(a);
            continue;
        }
        let workers = get_json(http, "/api/workers").await;
        assert_eq!(workers["workers"][0]["jobs"][0]["key"], a.job_key.as_str());
        complete_one(&mut h, &w, &a).await;
    }
    let failed = failed.unwrap();

    let sweep = get_json(http, "/api/sweeps/metrics").await;
    assert_eq!(sweep["counts"]["succeeded"], 3);
    assert_eq!(sweep["counts"]["failed"], 1);
    assert_eq!(
        sweep["axes"]["intermediate"],
        serde_json::json!(["none", "mnli"])
    );
    let cells = sweep["cells"].as_array().unwrap();
    let bad = cells.iter().position(|c| c["state"] == "failed").unwrap();
    assert!(
        cells[bad]["reason"]
            .as_str()
            .unwrap()
            .contains("exit status 2")
    );
    assert_eq!(sweep["per_axis"]["language"].as_array().unwrap().len(), 2);
    // The Δ matrix: mnli scores 1 point above none wherever both succeeded.
    let model = &sweep["delta"]["models"][0];
    assert_eq!(model["targets"], serde_json::json!(["xnli"]));
    let mnli = model["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["intermediate"] == "mnli")
        .unwrap();
    // `failed (1)` when mnli's evaluation failed, `baseline failed (1)` when none's did.
    assert!(
        mnli["delta"]["gap"]
            .as_str()
            .unwrap()
            .ends_with("failed (1)"),
        "{mnli}"
    );

    let cell = get_json(http, &format!("/api/sweeps/metrics/cells/{bad}")).await;
    assert_eq!(cell["state"], "failed");
    let chain = cell["jobs"].as_array().unwrap();
    let eval = chain.last().unwrap();
    assert_eq!(eval["key"], failed.job_key.as_str());
    assert_eq!(eval["kind"], "evaluate");
    let history: Vec<&str> = eval["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["ready", "leased", "failed"]);
    let stderr = eval["logs"]["files"]["stderr.log"].as_str().unwrap();
    assert!(stderr.ends_with("Traceback: <b>boom</b>\n"));
    assert_eq!(chain[0]["logs"]["files"], serde_json::Value::Null);
    h.stop().await;
}

/// A grid's own target task, defined in the grid: its definition travels with the sweep's jobs,
/// and the dashboard shows it with its domain; a clash with a built-in task is refused at submit
/// with the grid position.
#[tokio::test]
async fn own_tasks_appear_in_the_dashboard_with_their_domain() {
    let (mut cfg, http) = config_with_http();
    cfg.catalog = Some(std::sync::Arc::new(stilts_tasks::Catalog::builtin()));
    let mut h = Harness::start(SqliteFactory::default(), cfg).await;
    let own = r#"
[tasks.reviews]
role = "target"
domain = "sentiment"
head = "classification"
metric = "accuracy"
languages = ["en", "de"]
labels = ["neg", "pos"]
[[tasks.reviews.layout]]
reader = "csv"
columns = { text = "review", label = "stars" }
train = ["train.csv"]
"#;
    let text = grid("own", &["none", "sst2"], r#"["reviews"]"#, "\"all\"") + own;
    h.submit("own.toml", &text).await;
    let w = h.register("w1", &[]).await;
    let mut carried = 0;
    while let Some(a) = h.acquire(&w, 50).await {
        let spec: serde_json::Value = serde_json::from_str(&a.spec_json).unwrap();
        if spec["task"] == "reviews" {
            assert_eq!(spec["task_defs"]["reviews"]["domain"], "sentiment");
            carried += 1;
        }
        complete_one(&mut h, &w, &a).await;
    }
    assert_eq!(
        carried,
        2 + 4,
        "2 target jobs and 4 evaluate jobs carry the definition"
    );
    let sweep = get_json(http, "/api/sweeps/own").await;
    assert_eq!(sweep["own_tasks"]["reviews"]["domain"], "sentiment");
    let targets = sweep["delta"]["targets"].as_array().unwrap();
    assert_eq!(targets[0]["name"], "reviews");
    assert_eq!(targets[0]["domain"], "sentiment");
    let status = h.status("own").await;
    assert!(
        status.tasks_json.contains("\"sentiment\""),
        "{}",
        status.tasks_json
    );

    let clash = grid("clash", &["none"], r#"["xnli"]"#, "\"all\"")
        + &own.replace("tasks.reviews", "tasks.xnli");
    let e = h.submit_for("clash.toml", &clash, "").await.unwrap_err();
    assert!(
        e.message().starts_with("clash.toml:22:8:") && e.message().contains("already defined"),
        "{}",
        e.message()
    );
    h.stop().await;
}

/// Once the coordinator has a token, the dashboard's data and /metrics need one (the read-only
/// HTTP token or the client token), the page itself and /healthz do not; a connection that sends
/// half a request is closed after the header timeout.
#[tokio::test]
async fn http_needs_a_token_and_drops_half_sent_requests() {
    let (mut cfg, http) = config_with_http();
    cfg.config.auth.client_token = Some("client-secret".into());
    cfg.config.auth.http_token = Some("reader".into());
    cfg.config.http_header_timeout = std::time::Duration::from_millis(300);
    let mut h = Harness::start(SqliteFactory::default(), cfg).await;
    for path in ["/metrics", "/api/sweeps", "/api/workers"] {
        let (status, _, body) = get(http, path).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("#token="), "the refusal says how: {body}");
        let (status, _, _) = get_with(http, path, "Authorization: Bearer wrong\r\n").await;
        assert_eq!(status, 401, "{path}");
        for token in ["reader", "client-secret"] {
            let header = format!("Authorization: Bearer {token}\r\n");
            assert_eq!(get_with(http, path, &header).await.0, 200, "{path} {token}");
        }
    }
    assert_eq!(get(http, "/").await.0, 200, "the page holds no data");
    assert_eq!(get(http, "/healthz").await.0, 200);

    let mut half = tokio::net::TcpStream::connect(http).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        half.read_to_end(&mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "the half-sent request's connection was closed"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let text = String::from_utf8_lossy(&buf);
    assert!(
        !text.contains("200 OK"),
        "no answer to half a request: {text}"
    );
    h.stop().await;
}
