//! The dashboard in headless Chromium against a real coordinator (in-process, loopback gRPC,
//! SQLite on a temporary file) with a sweep in progress: the page's DOM shows more succeeded cells
//! after jobs complete over gRPC, task names are shown as text (never markup), the cell page shows
//! a failure and a running job's training curve (sent with a heartbeat, stored, plotted), and
//! screenshots are saved as `target/ci-artifacts/dashboard.png` and `dashboard-cell.png`.
//!
//! Needs Debian's `chromium` (or `STILTS_CHROMIUM=/path/to/chrome`); without it the test prints
//! `skipping: chromium not installed` and passes.

mod http_support;
mod store_factory;
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_support::*;
use stilts_proto::v1 as pb;
use support::*;

const SWEEP: &str = "dash";
/// An intermediate task whose name is markup: refused at submit (names are plain words), so
/// it can never reach the page.
const EVIL: &str = "<b id=evil>evil</b>";

fn dashboard_grid() -> String {
    grid_with_intermediate("siqa")
}

fn grid_with_intermediate(third: &str) -> String {
    format!(
        r#"[sweep]
name = "{SWEEP}"
seeds = [1, 2]

[models]
tiny = "models/tiny"

[grid]
intermediate = ["none", "mnli", "{}"]
target = ["xnli", "pawsx"]
languages = {{ xnli = ["de", "fr", "sw"], pawsx = ["de", "ja"] }}

[evaluate]
languages_per_job = 1

[executor]
kind = "command"
intermediate = "train --model {{model_source}} --task {{task}} --out {{output_dir}}"
target = "train --init {{input_dir}} --task {{task}} --out {{output_dir}}"
evaluate = "eval --ckpt {{input_dir}} --langs {{languages}} --metrics {{metrics_file}}"
"#,
        third.replace('"', "\\\"")
    )
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("STILTS_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `extra` arguments (after the page settled for a few
/// seconds of virtual time); returns its stdout.
async fn chrome(bin: &Path, profile: &Path, url: &str, extra: &[String]) -> String {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--virtual-time-budget=4000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .kill_on_drop(true)
    .stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn dump(bin: &Path, profile: &Path, url: &str) -> String {
    let dom = chrome(bin, profile, url, &["--dump-dom".to_string()]).await;
    assert!(
        dom.contains("id=\"heatmap\""),
        "no heatmap rendered:\n{dom}"
    );
    dom
}

fn boxes(dom: &str, state: &str) -> usize {
    dom.matches(&format!("class=\"box s-{state}\"")).count()
}

/// Completes jobs until `evaluations` evaluate jobs have succeeded in this call.
async fn run_evaluations<F: StoreFactory>(h: &mut Harness<F>, w: &str, evaluations: usize) {
    let mut done = 0;
    while done < evaluations {
        let a = h.acquire(w, 50).await.expect("a job is ready");
        complete_one(h, w, &a).await;
        done += usize::from(kind_and_parent(&a).0 == "evaluate");
    }
}

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("ci-artifacts")
}

#[tokio::test]
async fn dashboard_updates_live_in_chromium() {
    let Some(bin) = chromium() else {
        println!("skipping: chromium not installed");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let (cfg, http): (_, SocketAddr) = config_with_http();
    let mut h = Harness::start(SqliteFactory::default(), cfg).await;
    let refused = h
        .submit_for("evil.toml", &grid_with_intermediate(EVIL), "")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("contains '<'"), "{refused:?}");
    let sub = h.submit("dash.toml", &dashboard_grid()).await;
    assert_eq!(sub.cells, 3 * 5 * 2);
    let w = h.register("gpu-node-1", &[]).await;

    // Some cells done, one failed for good, one job running with progress.
    run_evaluations(&mut h, &w, 6).await;
    let bad = loop {
        let a = h.acquire(&w, 50).await.unwrap();
        if kind_and_parent(&a).0 != "evaluate" {
            complete_one(&mut h, &w, &a).await;
            continue;
        }
        h.fail_with(&w, &a, false, "exit status 3: CUDA out of memory")
            .await
            .unwrap();
        break a;
    };
    let url = format!("http://{http}/");
    let first = dump(&bin, profile.path(), &url).await;
    let (ok1, failed1) = (boxes(&first, "succeeded"), boxes(&first, "failed"));
    assert_eq!(ok1, 6, "succeeded boxes before");
    assert_eq!(failed1, 1);
    assert_eq!(first.matches("class=\"box s-").count(), 30);
    assert!(first.contains("siqa"), "{first}");
    assert!(
        !first.contains("id=evil"),
        "the refused grid left a trace: {first}"
    );

    // More jobs complete over gRPC; one stays running with progress.
    run_evaluations(&mut h, &w, 10).await;
    let running = h.acquire(&w, 50).await.unwrap();
    h.workers
        .heartbeat(pb::HeartbeatRequest {
            worker_id: w.clone(),
            running: vec![pb::RunningJob {
                job_key: running.job_key.clone(),
                attempt: running.attempt,
                fencing_token: running.fencing_token,
                progress: Some(pb::Progress {
                    step: 420,
                    total: 1000,
                    loss: 0.37,
                    phase: "train".into(),
                }),
                curve: curve_points(420),
            }],
        })
        .await
        .unwrap();
    let second = dump(&bin, profile.path(), &url).await;
    assert_eq!(boxes(&second, "succeeded"), 16, "succeeded boxes after");
    assert!(boxes(&second, "running") >= 1);
    assert!(
        second.contains("420/1000"),
        "the worker's job progress is shown"
    );
    assert!(second.contains("gpu-node-1"));
    // The Δ matrix has numbers for the seeds and languages that are complete.
    assert!(second.contains("data-delta=\""), "Δ matrix rendered");

    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("dashboard.png");
    let _ = std::fs::remove_file(&png);
    chrome(
        &bin,
        profile.path(),
        &url,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1440,1100".to_string(),
        ],
    )
    .await;
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000);
    println!("screenshot: {}", png.display());

    // The cell page of the failed cell.
    let sweep = get_json(http, "/api/sweeps/dash").await;
    let idx = sweep["cells"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["state"] == "failed")
        .unwrap();
    let cell = dump(
        &bin,
        profile.path(),
        &format!("http://{http}/#sweep={SWEEP}&cell={idx}"),
    )
    .await;
    assert!(cell.contains("class=\"open\""), "cell page open");
    assert!(cell.contains("exit status 3: CUDA out of memory"));
    assert!(cell.contains(&bad.job_key));
    assert!(cell.contains("logs on worker"));

    // The cell page of a cell whose chain holds the running job plots its curve (loss and dev,
    // the NaN point marked), from the store; a screenshot is saved as `dashboard-cell.png`.
    let mut with_curve = None;
    for i in 0..sweep["cells"].as_array().unwrap().len() {
        let c = get_json(http, &format!("/api/sweeps/{SWEEP}/cells/{i}")).await;
        let job = c["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["key"] == running.job_key.as_str())
            .cloned();
        if let Some(job) = job {
            with_curve = Some((i, job));
            break;
        }
    }
    let (idx, job) = with_curve.expect("a cell's chain holds the running job");
    let curves = job["curves"].as_array().expect("curves listed");
    assert_eq!(curves.len(), 1, "{job}");
    assert_eq!(curves[0]["attempt"], running.attempt);
    assert_eq!(curves[0]["points"].as_array().unwrap().len(), 43);
    assert_eq!(curves[0]["non_finite"], 1);
    assert_eq!(curves[0]["points"][7]["loss"], "NaN");
    let url = format!("http://{http}/#sweep={SWEEP}&cell={idx}");
    let page = dump(&bin, profile.path(), &url).await;
    assert!(page.contains("data-metric=\"loss\""), "loss curve drawn");
    assert!(page.contains("data-metric=\"dev\""), "dev curve drawn");
    assert!(page.contains("class=\"nonfinite\""), "NaN point marked");
    let png = dir.join("dashboard-cell.png");
    let _ = std::fs::remove_file(&png);
    chrome(
        &bin,
        profile.path(),
        &url,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1440,1100".to_string(),
        ],
    )
    .await;
    let bytes = std::fs::read(&png).expect("cell screenshot written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000);
    println!("screenshot: {}", png.display());
    h.stop().await;
}

/// A training curve up to `last` step: 40 loss points (the 8th is NaN) and 3 dev points.
fn curve_points(last: u64) -> Vec<pb::CurvePoint> {
    let mut points: Vec<pb::CurvePoint> = (1..=40u64)
        .map(|i| pb::CurvePoint {
            step: i * last / 40,
            loss: Some(if i == 8 {
                f64::NAN
            } else {
                2.0 / (1.0 + i as f64 / 8.0)
            }),
            lr: Some(2e-5),
            grad_norm: Some(1.0),
            dev: None,
        })
        .collect();
    for (i, dev) in [(1u64, 61.5), (2, 70.25), (3, 72.0)] {
        points.push(pb::CurvePoint {
            step: i * last / 3,
            loss: None,
            lr: None,
            grad_norm: None,
            dev: Some(dev),
        });
    }
    points
}

/// The cell page overlays the chain's target job under every seed (latest attempt each, sent with
/// heartbeats and stored), and shows each job's compute; drawn in Chromium when it is installed.
#[tokio::test]
async fn cell_page_overlays_the_seeds_of_its_chain() {
    let (cfg, http): (_, SocketAddr) = config_with_http();
    let mut h = Harness::start(SqliteFactory::default(), cfg).await;
    let toml = grid("seeds", &["none"], r#"["xnli"]"#, r#"["de"]"#)
        .replace("seeds = [1]", "seeds = [1, 2, 3]");
    h.submit("seeds.toml", &toml).await;
    let w = h.register("gpu-node-1", &[]).await;
    // The three target jobs (baseline chain: no intermediate), each reporting a curve.
    let mut targets = Vec::new();
    while targets.len() < 3 {
        let a = h.acquire(&w, 50).await.expect("a job is ready");
        if kind_and_parent(&a).0 != "target" {
            complete_one(&mut h, &w, &a).await;
            continue;
        }
        h.workers
            .heartbeat(pb::HeartbeatRequest {
                worker_id: w.clone(),
                running: vec![pb::RunningJob {
                    job_key: a.job_key.clone(),
                    attempt: a.attempt,
                    fencing_token: a.fencing_token,
                    progress: None,
                    curve: curve_points(100 * (targets.len() as u64 + 1)),
                }],
            })
            .await
            .unwrap();
        h.clock.advance(2_000);
        complete_one(&mut h, &w, &a).await;
        targets.push(a.job_key.clone());
    }
    let cell = get_json(http, "/api/sweeps/seeds/cells/1").await;
    assert_eq!(cell["seed"], 2);
    let seeds = cell["seeds"].as_array().expect("seeds listed");
    let listed: Vec<(u64, String)> = seeds
        .iter()
        .map(|s| {
            (
                s["seed"].as_u64().unwrap(),
                s["job"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 3, "{cell}");
    assert_eq!(listed.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3]);
    let mut keys: Vec<String> = listed.into_iter().map(|s| s.1).collect();
    keys.sort();
    targets.sort();
    assert_eq!(keys, targets, "each seed's own target job");
    for s in seeds {
        assert_eq!(s["curve"]["points"].as_array().unwrap().len(), 43, "{s}");
    }
    let target = cell["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["kind"] == "target")
        .unwrap();
    assert_eq!(target["usage"]["total_ms"], 2_000, "{target}");
    if let Some(bin) = chromium() {
        let profile = tempfile::tempdir().unwrap();
        let page = dump(
            &bin,
            profile.path(),
            &format!("http://{http}/#sweep=seeds&cell=1"),
        )
        .await;
        assert!(page.contains("data-seeds=\"3\""), "seed overlay drawn");
        assert!(page.contains("data-usage=\"2000\""), "job compute shown");
    } else {
        println!("skipping the Chromium part: chromium not installed");
    }
    h.stop().await;
}

/// Above 5,000 cells the sweep view sends tiles ((model, intermediate) × target, counts by state,
/// the cell range each covers) instead of every cell, and a tile's cells come a page at a time;
/// the page draws the tiles and, on a click, the tile's cells (checked in Chromium when it is
/// installed).
#[tokio::test]
async fn big_sweeps_come_as_tiles_and_pages() {
    let (cfg, http): (_, SocketAddr) = config_with_http();
    let mut h = Harness::start(SqliteFactory::default(), cfg).await;
    let seeds: Vec<String> = (1..=200).map(|s| s.to_string()).collect();
    let langs = r#"["ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"]"#;
    let toml = grid("big", &["none", "mnli"], r#"["xnli"]"#, langs)
        .replace("seeds = [1]", &format!("seeds = [{}]", seeds.join(", ")));
    assert_eq!(h.submit("big.toml", &toml).await.cells, 6_000);
    let w = h.register("w", &[]).await;
    // One baseline chain runs to the end: its 15 cells succeed.
    let mut evaluated = 0;
    while evaluated < 15 {
        let a = h.acquire(&w, 50).await.unwrap();
        complete_one(&mut h, &w, &a).await;
        evaluated += usize::from(kind_and_parent(&a).0 == "evaluate");
    }
    let v = get_json(http, "/api/sweeps/big").await;
    assert!(v["cells"].is_null(), "no per-cell list at this size");
    let tiles = v["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), 2, "{tiles:?}");
    assert_eq!(
        (tiles[0]["first"].as_u64(), tiles[0]["cells"].as_u64()),
        (Some(0), Some(3_000))
    );
    assert_eq!(
        (tiles[1]["first"].as_u64(), tiles[1]["cells"].as_u64()),
        (Some(3_000), Some(3_000))
    );
    let total: u64 = tiles
        .iter()
        .flat_map(|t| t["counts"].as_object().unwrap().values())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, 6_000);
    assert_eq!(v["counts"]["succeeded"], 15);
    assert_eq!(
        tiles[0]["counts"]["succeeded"], 15,
        "the baseline tile holds them"
    );

    let page = get_json(http, "/api/sweeps/big/cells?offset=2990&limit=20").await;
    let cells = page["cells"].as_array().unwrap();
    assert_eq!((page["total"].as_u64(), cells.len()), (Some(6_000), 20));
    assert_eq!(cells[0]["index"], 2990);
    assert_eq!(cells[19]["index"], 3009);
    assert_eq!(
        cells[10]["at"][1], 1,
        "cell 3000 is the first of the mnli tile"
    );
    let (status, _, _) = get(http, "/api/sweeps/big/cells?offset=x").await;
    assert_eq!(status, 400);

    if let Some(bin) = chromium() {
        let profile = tempfile::tempdir().unwrap();
        let dom = dump(&bin, profile.path(), &format!("http://{http}/#sweep=big")).await;
        assert_eq!(dom.matches("data-tile=\"").count(), 2, "two tiles drawn");
        assert!(
            !dom.contains("class=\"box s-"),
            "no per-cell boxes until a tile is opened"
        );
    } else {
        println!("skipping the Chromium part: chromium not installed");
    }
    h.stop().await;
}
