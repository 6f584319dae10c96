//! Helpers for end-to-end tests that run the real `stilts` binary as separate processes.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn stilts() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stilts"));
    c.env_remove("STILTS_STATE_DIR")
        .env_remove("STILTS_COORDINATOR")
        .env("STILTS_LOG", "warn");
    c
}

/// A child process killed (SIGKILL) when dropped, so a failing test leaves nothing behind.
pub struct Proc(pub Child);

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc(cmd.spawn().expect("spawn stilts"))
    }
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{sig} {}", self.pid());
    }
    pub fn kill9(&mut self) {
        self.signal("KILL");
        let _ = self.0.wait();
    }
    /// Waits for exit up to `limit`; panics on timeout.
    pub fn wait_for(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process {} still running after {limit:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `stilts sweep ARGS --coordinator URL`: its stdout when it exits 0.
pub fn sweep_cmd(url: &str, args: &[&str]) -> Option<String> {
    let out = stilts()
        .arg("sweep")
        .args(args)
        .args(["--coordinator", url])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until `stilts sweep status NAME` says finished; returns that status text.
pub fn wait_sweep_finished(url: &str, sweep: &str, limit: Duration) -> String {
    wait_until("the sweep to finish", limit, || {
        sweep_cmd(url, &["status", sweep]).filter(|s| s.contains("finished"))
    })
}

/// The `accuracy` rows of `stilts sweep results NAME --format csv`, split into fields
/// (model, intermediate, target, language, seed, metric, value, job_key, state, reason).
pub fn accuracy_rows(url: &str, sweep: &str) -> Vec<Vec<String>> {
    sweep_cmd(url, &["results", sweep, "--format", "csv"])
        .expect("results")
        .lines()
        .skip(1)
        .filter(|l| l.contains(",accuracy,"))
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Polls `check` until it returns `Some`, or panics after `limit` naming `what`.
pub fn wait_until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free loopback port (bound then released; fine for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A command-executor grid whose every job logs `start KEY ATTEMPT TAG [LANG]` and
/// `done KEY ATTEMPT TAG` to `$STILTS_TEST_LOG` (TAG = `$STILTS_TEST_TAG`: which worker ran it) and
/// whose evaluate jobs write an `accuracy` derived from their own key (deterministic, equal across
/// runs) and the `attempt` that produced it. Cells: 2 models × 3 intermediate × 2 targets ×
/// `langs` languages × 2 seeds; jobs: 8 intermediate, 24 target, 24·`langs` evaluate.
pub fn command_grid(name: &str, langs: usize, train_sleep_s: f64, eval_sleep_s: f64) -> String {
    let languages: Vec<String> = (0..langs).map(|i| format!("\"l{i:02}\"")).collect();
    let log = r#"\"$STILTS_TEST_LOG\""#;
    let start =
        format!("echo start {{job_key}} {{attempt}} $STILTS_TEST_TAG {{languages}} >> {log}");
    let done = format!("echo done {{job_key}} {{attempt}} $STILTS_TEST_TAG >> {log}");
    let metric = r#"k={job_key}; printf '{{\"%s\": {{\"accuracy\": %d, \"attempt\": {attempt}}}}}' {languages} $(( 0x$(echo $k | cut -c1-4) % 1000 )) > {metrics_file}"#;
    format!(
        r#"[sweep]
name = "{name}"
seeds = [1, 2]

[models]
alpha = "models/alpha"
beta = "models/beta"

[grid]
intermediate = ["none", "ia", "ib"]
target = ["ta", "tb"]
languages = [{langs}]

[evaluate]
languages_per_job = 1

[executor]
kind = "command"
intermediate = "{start}; sleep {train_sleep_s}; echo ckpt > {{output_dir}}/ckpt; {done}"
target = "{start}; test -f {{input_dir}}/ckpt || test {{input_dir}} = {{model_source}}; sleep {train_sleep_s}; echo ckpt > {{output_dir}}/ckpt; {done}"
evaluate = "{start}; sleep {eval_sleep_s}; {metric}; {done}"
"#,
        langs = languages.join(", ")
    )
}

/// One line of a job log: (event, key, attempt, tag, languages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub event: String,
    pub key: String,
    pub attempt: u32,
    pub tag: String,
    pub languages: String,
}

pub fn runs(log: &Path) -> Vec<Run> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some(Run {
                event: it.next()?.to_string(),
                key: it.next()?.to_string(),
                attempt: it.next()?.parse().ok()?,
                tag: it.next().unwrap_or("").to_string(),
                languages: it.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// Executions (started commands) per job key recorded in a job log.
pub fn executions(log: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for run in runs(log).into_iter().filter(|r| r.event == "start") {
        *counts.entry(run.key).or_insert(0) += 1;
    }
    counts
}

pub fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

pub fn output_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stilts failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `stilts run --no-progress` of `grid` into `state` (with `STILTS_DATA_DIR` when given), which
/// must succeed; prints how long it took.
pub fn run_grid(grid: &Path, state: &Path, data_dir: Option<&Path>) {
    let started = Instant::now();
    let mut cmd = stilts();
    cmd.args(["run", "--no-progress", "--state-dir"])
        .arg(state)
        .arg(grid)
        .stdin(Stdio::null());
    if let Some(d) = data_dir {
        cmd.env("STILTS_DATA_DIR", d);
    }
    output_ok(&cmd.output().unwrap());
    eprintln!(
        "{} ran in {:.1} s",
        grid.display(),
        started.elapsed().as_secs_f64()
    );
}

/// `stilts results --format csv` of a state dir, as printed (header included).
pub fn results_csv_text(state: &Path) -> String {
    let out = stilts()
        .args(["results", "--format", "csv", "--state-dir"])
        .arg(state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    output_ok(&out)
}

/// `stilts results --format csv` of a state dir: the accuracy rows, sorted.
pub fn results_csv(state: &Path) -> Vec<String> {
    let mut lines: Vec<String> = results_csv_text(state)
        .lines()
        .filter(|l| l.contains(",accuracy,"))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// Called when etcd is not installed: with `STILTS_REQUIRE_ETCD=1` (CI) the test fails,
/// otherwise it prints `SKIPPED <test name>: etcd not installed …` to stderr (the caller then
/// returns, and the test passes). The same line as `coordinator/tests/support_etcd`.
pub fn etcd_missing() {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned();
    assert!(
        std::env::var("STILTS_REQUIRE_ETCD").as_deref() != Ok("1"),
        "{test}: etcd not installed (apt-get install etcd-server) and STILTS_REQUIRE_ETCD=1"
    );
    eprintln!("SKIPPED {test}: etcd not installed (apt-get install etcd-server)");
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `$STILTS_SHARED_DATA` and the MiniLM test model, or `None` after a visible skip notice.
pub fn shared_data_and_minilm() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let data = std::env::var_os("STILTS_SHARED_DATA").map(std::path::PathBuf::from);
    let models = std::env::var_os("STILTS_TEST_MODELS").map(std::path::PathBuf::from);
    match (data, models) {
        (Some(d), Some(m)) if d.is_dir() && m.join("all-MiniLM-L6-v2/config.json").is_file() => {
            Some((d, m.join("all-MiniLM-L6-v2")))
        }
        _ => {
            eprintln!("skipping: STILTS_SHARED_DATA or STILTS_TEST_MODELS not set");
            None
        }
    }
}

/// `stilts run --no-progress GRID` with `STILTS_DATA_DIR=data` (its time printed), then
/// `stilts results --format csv`: the csv.
pub fn run_grid_results(grid: &Path, state: &Path, data: &Path) -> String {
    run_grid(grid, state, Some(data));
    results_csv_text(state)
}
