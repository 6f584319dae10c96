//! Faults with real processes: a `stilts coordinator` and `stilts worker`s over loopback gRPC,
//! killed with SIGKILL, paused with SIGSTOP past their lease, and a coordinator restarted
//! mid-sweep. Job commands log `start|done KEY ATTEMPT TAG`, so the tests see which worker ran
//! what, and evaluate metrics carry the attempt that produced them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::*;

struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn new() -> Self {
        Self {
            dir: temp_dir(),
            port: free_port(),
        }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("jobs.log")
    }
    fn runs(&self) -> Vec<Run> {
        runs(&self.log())
    }
    fn coordinator(&self, lease_ttl_s: u64) -> Proc {
        Proc::spawn(
            stilts()
                .args([
                    "coordinator",
                    "--listen",
                    &format!("127.0.0.1:{}", self.port),
                ])
                .args(["--http", "off"]) // tests run in parallel: no fixed HTTP port
                .args(["--lease-ttl", &lease_ttl_s.to_string(), "--state-dir"])
                .arg(self.dir.path().join("coord"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    }
    fn worker(&self, tag: &str, slots: u32) -> Proc {
        Proc::spawn(
            stilts()
                .args([
                    "worker",
                    "--coordinator",
                    &self.url(),
                    "--slots",
                    &slots.to_string(),
                ])
                .args(["--name", tag, "--artifacts"])
                .arg(self.dir.path().join("artifacts"))
                .env("STILTS_TEST_LOG", self.log())
                .env("STILTS_TEST_TAG", tag)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    }
    fn sweep(&self, args: &[&str]) -> Option<String> {
        sweep_cmd(&self.url(), args)
    }
    fn submit(&self, grid: &Path) {
        let grid = grid.to_str().unwrap();
        wait_until(
            "the coordinator to accept the sweep",
            Duration::from_secs(30),
            || self.sweep(&["submit", grid]),
        );
    }
    fn wait_finished(&self, sweep: &str, limit: Duration) -> String {
        wait_until("the sweep to finish", limit, || {
            self.sweep(&["status", sweep])
                .filter(|s| s.contains("finished"))
        })
    }
    /// CSV result rows (model,intermediate,target,language,seed,metric,value,job_key,state,reason).
    fn results(&self, sweep: &str) -> Vec<String> {
        let out = self
            .sweep(&["results", sweep, "--format", "csv"])
            .expect("results");
        out.lines().skip(1).map(str::to_string).collect()
    }
}

fn count_metric(rows: &[String], metric: &str) -> usize {
    rows.iter()
        .filter(|l| l.contains(&format!(",{metric},")))
        .count()
}

#[test]
fn killed_worker_jobs_run_elsewhere_after_the_lease_ttl() {
    let c = Cluster::new();
    let _coord = c.coordinator(2);
    let g = write(
        c.dir.path(),
        "grid.toml",
        &command_grid("w-kill", 2, 0.8, 0.2),
    );
    c.submit(&g);
    let mut w1 = c.worker("w1", 2);
    wait_until("w1 to start jobs", Duration::from_secs(60), || {
        c.runs().iter().any(|r| r.tag == "w1").then_some(())
    });
    w1.kill9();
    let killed = std::time::Instant::now();
    let at_kill = c.runs();
    let in_flight: Vec<String> = at_kill
        .iter()
        .filter(|r| {
            r.event == "start" && !at_kill.iter().any(|d| d.event == "done" && d.key == r.key)
        })
        .map(|r| r.key.clone())
        .collect();
    assert!(!in_flight.is_empty(), "w1 held jobs when it was killed");
    let _w2 = c.worker("w2", 2);
    wait_until("a lost job to start on w2", Duration::from_secs(60), || {
        c.runs()
            .iter()
            .any(|r| r.tag == "w2" && in_flight.contains(&r.key))
            .then_some(())
    });
    eprintln!(
        "worker loss: w1 killed -> one of its jobs started on w2 after {:.2?} (lease TTL 2 s)",
        killed.elapsed()
    );
    c.wait_finished("w-kill", Duration::from_secs(180));
    let runs = c.runs();
    for key in &in_flight {
        assert!(
            runs.iter()
                .any(|r| &r.key == key && r.tag == "w2" && r.attempt >= 2),
            "job {key} held by the killed worker ran again on w2 with a new attempt: {runs:?}"
        );
    }
    assert_eq!(
        count_metric(&c.results("w-kill"), "accuracy"),
        48,
        "one result per cell"
    );
}

#[test]
fn paused_worker_is_fenced_after_its_lease_expires() {
    let c = Cluster::new();
    let _coord = c.coordinator(2);
    let g = write(
        c.dir.path(),
        "grid.toml",
        &command_grid("w-stop", 1, 0.02, 2.0),
    );
    c.submit(&g);
    let w1 = c.worker("w1", 1);
    let first = wait_until(
        "w1 to start an evaluate job",
        Duration::from_secs(90),
        || {
            c.runs()
                .into_iter()
                .find(|r| r.tag == "w1" && r.event == "start" && !r.languages.is_empty())
        },
    );
    w1.signal("STOP");
    let _w2 = c.worker("w2", 1);
    wait_until(
        "w2 to rerun the paused worker's job",
        Duration::from_secs(120),
        || {
            c.runs()
                .iter()
                .any(|r| r.key == first.key && r.tag == "w2" && r.event == "done")
                .then_some(())
        },
    );
    w1.signal("CONT");
    // w1's command finishes and w1 reports it: that late report must be rejected.
    wait_until("w1's late job to finish", Duration::from_secs(30), || {
        c.runs()
            .iter()
            .any(|r| r.key == first.key && r.tag == "w1" && r.event == "done")
            .then_some(())
    });
    c.wait_finished("w-stop", Duration::from_secs(240));
    let rows = c.results("w-stop");
    assert_eq!(
        count_metric(&rows, "accuracy"),
        24,
        "every cell has exactly one result"
    );
    let recorded: Vec<&String> = rows
        .iter()
        .filter(|l| l.contains(",attempt,") && l.contains(&format!(",{},", first.key)))
        .collect();
    assert_eq!(recorded.len(), 1, "{rows:?}");
    assert!(
        !recorded[0].contains(&format!(",attempt,{},", first.attempt)),
        "the paused worker's late report (attempt {}) was accepted: {}",
        first.attempt,
        recorded[0]
    );
}

#[test]
fn coordinator_restart_mid_sweep_repeats_no_finished_job() {
    let c = Cluster::new();
    let mut coord = c.coordinator(10);
    let g = write(
        c.dir.path(),
        "grid.toml",
        &command_grid("c-restart", 2, 0.3, 0.3),
    );
    c.submit(&g);
    let _w = c.worker("w1", 2);
    wait_until("a dozen jobs to run", Duration::from_secs(60), || {
        (c.runs().iter().filter(|r| r.event == "done").count() >= 12).then_some(())
    });
    coord.kill9();
    std::thread::sleep(Duration::from_millis(1500)); // the worker keeps running jobs meanwhile
    let _coord2 = c.coordinator(10);
    c.wait_finished("c-restart", Duration::from_secs(240));
    let counts = executions(&c.log());
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "no job ran twice across the restart: {repeated:?}"
    );
    assert_eq!(counts.len(), 8 + 24 + 48);
    assert_eq!(count_metric(&c.results("c-restart"), "accuracy"), 48);
}
