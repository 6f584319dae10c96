//! Cluster faults with real processes on a real 3-member etcd cluster: three `stilts coordinator
//! --store etcd` replicas and four workers run a 992-job command sweep while the test kills a
//! worker with SIGKILL and restarts it, kills one etcd member (restarted later), kills the leader
//! coordinator twice, pauses a worker past its lease TTL, and ~10% of the evaluate jobs fail once
//! with a retryable exit code. Afterwards every cell has exactly one
//! result, equal to what an undisturbed run computes, and only jobs a fault hit ran more than
//! once. Prints the figures (failover times, executions table). Skips visibly without `etcd`
//! (fails instead with `STILTS_REQUIRE_ETCD=1`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// Election lease TTL of the replicas, seconds.
const ELECTION_TTL: u64 = 2;
/// Worker lease TTL, seconds.
const LEASE_TTL: u64 = 3;
/// Jobs of `grid()`: 8 intermediate + 24 target + 960 evaluate (`stilts plan` agrees).
const JOBS: usize = 992;

fn etcd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .chain([PathBuf::from("/usr/bin/etcd")])
        .find(|p| p.is_file())
}

/// A 3-member etcd cluster on loopback ports.
struct Etcd {
    members: Vec<Option<Proc>>,
    args: Vec<Vec<String>>,
    urls: Vec<String>,
}

impl Etcd {
    fn start(dir: &std::path::Path) -> Option<Etcd> {
        let Some(bin) = etcd_binary() else {
            etcd_missing();
            return None;
        };
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Etcd {
            members: Vec::new(),
            args: Vec::new(),
            urls: Vec::new(),
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let data = dir.join(format!("etcd{i}"));
            etcd.args.push(vec![
                bin.display().to_string(),
                "--name".into(),
                format!("e{i}"),
                "--data-dir".into(),
                data.display().to_string(),
                "--listen-client-urls".into(),
                url.clone(),
                "--advertise-client-urls".into(),
                url.clone(),
                "--listen-peer-urls".into(),
                peer_url.clone(),
                "--initial-advertise-peer-urls".into(),
                peer_url,
                "--initial-cluster".into(),
                initial.clone(),
                "--initial-cluster-token".into(),
                "stilts-cluster-faults".into(),
            ]);
            etcd.urls.push(url);
            etcd.members.push(None);
            etcd.restart(i);
        }
        Some(etcd)
    }
    fn endpoints(&self) -> String {
        self.urls.join(",")
    }
    /// Starts member `i` (again: a restart keeps its data directory and rejoins).
    fn restart(&mut self, i: usize) {
        let args = &self.args[i];
        self.members[i] = Some(Proc::spawn(
            Command::new(&args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        ));
    }
    fn kill9(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].take() {
            p.kill9();
        }
    }
}

/// Keeps the directory (logs) when the test panics or `STILTS_KEEP_LOGS` is set.
struct KeepOnPanic(Option<tempfile::TempDir>);

impl KeepOnPanic {
    fn path(&self) -> &std::path::Path {
        self.0.as_ref().expect("dir").path()
    }
}

impl Drop for KeepOnPanic {
    fn drop(&mut self) {
        if (std::thread::panicking() || std::env::var_os("STILTS_KEEP_LOGS").is_some())
            && let Some(d) = self.0.take()
        {
            eprintln!("cluster_faults: kept {}", d.keep().display());
        }
    }
}

struct Cluster {
    dir: KeepOnPanic,
    etcd: String,
    ports: Vec<u16>,
}

impl Cluster {
    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }
    fn urls(&self) -> String {
        (0..self.ports.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("jobs.log")
    }
    fn replica(&self, i: usize) -> Proc {
        Proc::spawn(
            stilts()
                .args([
                    "coordinator",
                    "--store",
                    "etcd",
                    "--etcd-endpoints",
                    &self.etcd,
                ])
                .args(["--listen", &format!("127.0.0.1:{}", self.ports[i])])
                .args(["--advertise", &self.url(i)])
                .args(["--election-ttl", &ELECTION_TTL.to_string(), "--http", "off"])
                .args(["--lease-ttl", &LEASE_TTL.to_string(), "--max-attempts", "8"])
                .arg("--state-dir")
                .arg(self.dir.path().join(format!("c{i}")))
                .env("STILTS_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(self.stderr(&format!("c{i}"))),
        )
    }
    /// Appends a process's stderr to `<dir>/<name>.log` (printed when the test fails).
    fn stderr(&self, name: &str) -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .map_or_else(|_| Stdio::null(), Stdio::from)
    }
    fn worker(&self, tag: &str) -> Proc {
        Proc::spawn(
            stilts()
                .args(["worker", "--coordinator", &self.urls(), "--slots", "2"])
                .args(["--name", tag, "--artifacts"])
                .arg(self.dir.path().join("artifacts"))
                .env("STILTS_TEST_LOG", self.log())
                .env("STILTS_TEST_TAG", tag)
                .env("STILTS_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(self.stderr(tag)),
        )
    }
    /// The replica that answers a client itself (followers refuse).
    fn leader(&self, sweep: &str, limit: Duration) -> usize {
        wait_until("a leader to serve", limit, || {
            (0..self.ports.len()).find(|&i| sweep_cmd(&self.url(i), &["status", sweep]).is_some())
        })
    }
    fn starts(&self) -> usize {
        runs(&self.log())
            .iter()
            .filter(|r| r.event == "start")
            .count()
    }
}

/// Lines matching `pred` in the logs `<dir>/<prefix>*.log` (ANSI colours stripped).
fn grep_count(dir: &std::path::Path, prefix: &str, pred: impl Fn(&str) -> bool) -> usize {
    let strip = |l: &str| {
        let mut out = String::with_capacity(l.len());
        let mut esc = false;
        for c in l.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    };
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(prefix) && n.ends_with(".log") && n != "jobs.log"
        })
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .map(strip)
                .collect::<Vec<_>>()
        })
        .filter(|l| pred(l))
        .count()
}

/// Evaluate jobs whose key hashes to 0 mod 10 exit 75 (retryable) on their first attempt.
fn transient(key: &str) -> bool {
    u32::from_str_radix(&key[4..6], 16).is_ok_and(|v| v % 10 == 0)
}

fn grid() -> String {
    let grid = command_grid("cluster", 40, 0.05, 0.08);
    let fail =
        "[ {attempt} = 1 ] && [ $(( 0x$(echo {job_key} | cut -c5-6) % 10 )) = 0 ] && exit 75; ";
    let grid = grid.replacen(
        "kind = \"command\"",
        "kind = \"command\"\nretryable_exit_codes = [75]",
        1,
    );
    grid.lines()
        .map(|l| match l.strip_prefix("evaluate = \"") {
            Some(rest) => {
                let cut = rest.find("; ").expect("evaluate command") + 2;
                format!("evaluate = \"{}{fail}{}", &rest[..cut], &rest[cut..])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn leader_and_worker_faults_lose_and_repeat_nothing() {
    let dir = temp_dir();
    eprintln!("cluster_faults: logs under {}", dir.path().display());
    let Some(mut etcd) = Etcd::start(dir.path()) else {
        return;
    };
    let cluster = Cluster {
        dir: KeepOnPanic(Some(dir)),
        etcd: etcd.endpoints(),
        ports: (0..3).map(|_| free_port()).collect(),
    };
    let mut replicas: Vec<Proc> = (0..3).map(|i| cluster.replica(i)).collect();
    let grid_path = write(cluster.dir.path(), "grid.toml", &grid());
    wait_until(
        "the cluster to accept the sweep",
        Duration::from_secs(60),
        || sweep_cmd(&cluster.urls(), &["submit", grid_path.to_str().unwrap()]),
    );
    let mut workers: BTreeMap<&str, Proc> = ["w1", "w2", "w3", "w4"]
        .into_iter()
        .map(|t| (t, cluster.worker(t)))
        .collect();
    let faulted: BTreeSet<&str> = ["w1", "w2"].into();
    let mut failovers = Vec::new();

    // Worker w1: SIGKILL mid-sweep, restarted under a new tag.
    wait_until("60 executions", Duration::from_secs(90), || {
        (cluster.starts() >= 60).then_some(())
    });
    workers.get_mut("w1").unwrap().kill9();
    workers.insert("w1b", cluster.worker("w1b"));

    // One etcd member of three stopped (SIGKILL): the sweep goes on with the other two.
    etcd.kill9(2);
    let before = cluster.starts();
    wait_until(
        "progress with an etcd member down",
        Duration::from_secs(60),
        || (cluster.starts() > before + 20).then_some(()),
    );

    // Leader killed twice; each time the next leader must serve and assign.
    for round in 0..2 {
        let leader = cluster.leader("cluster", Duration::from_secs(30));
        let before = cluster.starts();
        let killed = Instant::now();
        replicas[leader].kill9();
        let serving = cluster.leader("cluster", Duration::from_secs(30));
        eprintln!("failover {round}: c{leader} -> c{serving}");
        let served_after = killed.elapsed();
        wait_until(
            "an assignment by the new leader",
            Duration::from_secs(30),
            || (cluster.starts() > before + 4).then_some(()),
        );
        failovers.push((round, leader, serving, served_after, killed.elapsed()));
        replicas[leader] = cluster.replica(leader);
        if round == 0 {
            // Worker w2: paused past its lease, then resumed; its late reports are fenced.
            workers["w2"].signal("STOP");
            std::thread::sleep(Duration::from_secs(LEASE_TTL + 2));
            workers["w2"].signal("CONT");
        }
    }

    // The member comes back with its data directory and rejoins.
    etcd.restart(2);

    let status = wait_sweep_finished(&cluster.urls(), "cluster", Duration::from_secs(150));
    let rows = accuracy_rows(&cluster.urls(), "cluster");
    let cells: BTreeSet<&[String]> = rows.iter().map(|r| &r[..5]).collect();
    assert_eq!(rows.len(), 960, "{status}");
    assert_eq!(cells.len(), 960, "a cell has two results");
    for r in &rows {
        let expected = u32::from_str_radix(&r[7][..4], 16).unwrap() % 1000;
        assert_eq!(
            r[6],
            expected.to_string(),
            "result differs from an undisturbed run: {r:?}"
        );
    }

    let all = runs(&cluster.log());
    let mut by_key: BTreeMap<String, Vec<&Run>> = BTreeMap::new();
    for r in all.iter().filter(|r| r.event == "start") {
        by_key.entry(r.key.clone()).or_default().push(r);
    }
    assert_eq!(by_key.len(), JOBS, "jobs executed");
    let mut table: BTreeMap<(&str, usize), usize> = BTreeMap::new();
    for (key, starts) in &by_key {
        let worker_fault = starts.iter().any(|r| faulted.contains(r.tag.as_str()));
        let reason = match (starts.len(), transient(key), worker_fault) {
            (1, ..) => "no fault",
            (2, true, _) => "transient exit 75",
            (_, false, true) => "worker killed/paused",
            (3, true, true) => "transient + worker",
            _ => panic!(
                "{key} ran {} times without a fault: {starts:?}",
                starts.len()
            ),
        };
        *table.entry((reason, starts.len())).or_default() += 1;
    }
    // w2's lease ran out while it was stopped: if it held jobs then, they ran elsewhere and
    // its own reports of them, sent after SIGCONT, were refused: fenced off (stale token), or
    // rejected as from an unknown worker when a report beats w2's re-registering heartbeat.
    let w2_lost = grep_count(cluster.dir.path(), "c", |l| {
        l.contains("worker lease expired worker=w2-") && !l.contains("jobs=0")
    });
    let w2_fenced = grep_count(cluster.dir.path(), "w2", |l| {
        l.contains("report fenced off") || l.contains("report rejected; dropped")
    });
    eprintln!("w2: lease expiries with jobs {w2_lost}, refused late reports {w2_fenced}");
    if w2_lost > 0 {
        assert!(
            w2_fenced > 0,
            "w2 lost its lease but no late report was refused"
        );
    }
    println!("\n== cluster fault suite: {JOBS} jobs, 960 cells, 3 replicas, 4 workers ==");
    println!("{:<24} {:>10} {:>6}", "reason", "executions", "jobs");
    for ((reason, n), jobs) in &table {
        println!("{reason:<24} {n:>10} {jobs:>6}");
    }
    for (round, old, new, served, assigned) in &failovers {
        println!(
            "failover {round}: leader c{old} killed -> c{new} serving after {served:.2?}, \
             assigning after {assigned:.2?} (election TTL {ELECTION_TTL} s)"
        );
    }
}

/// etcd lost mid-sweep (every member killed for a few seconds, then restarted on its data):
/// the coordinator assigns nothing while the store is gone, workers keep their results, and once
/// etcd is back the sweep finishes with every job run exactly once and one result per cell.
#[test]
fn etcd_outage_pauses_the_sweep_and_loses_nothing() {
    let dir = temp_dir();
    let Some(mut etcd) = Etcd::start(dir.path()) else {
        return;
    };
    let cluster = Cluster {
        dir: KeepOnPanic(Some(dir)),
        etcd: etcd.endpoints(),
        ports: vec![free_port()],
    };
    let _replica = cluster.replica(0);
    let grid_path = write(
        cluster.dir.path(),
        "grid.toml",
        &command_grid("outage", 4, 0.05, 0.2),
    );
    wait_until(
        "the coordinator to accept the sweep",
        Duration::from_secs(60),
        || sweep_cmd(&cluster.urls(), &["submit", grid_path.to_str().unwrap()]),
    );
    let _workers: Vec<Proc> = ["w1", "w2"].iter().map(|t| cluster.worker(t)).collect();
    wait_until("20 executions", Duration::from_secs(90), || {
        (cluster.starts() >= 20).then_some(())
    });
    for i in 0..3 {
        etcd.kill9(i);
    }
    // Jobs assigned just before the kill may still start; after that, nothing new.
    std::thread::sleep(Duration::from_secs(1));
    let during = cluster.starts();
    std::thread::sleep(Duration::from_secs(4));
    let after = cluster.starts();
    assert_eq!(during, after, "jobs were assigned while etcd was down");
    for i in 0..3 {
        etcd.restart(i);
    }
    let resumed = Instant::now();
    wait_until(
        "assignments after etcd is back",
        Duration::from_secs(60),
        || (cluster.starts() > after).then_some(()),
    );
    eprintln!(
        "etcd outage: no assignment for 4 s while down; first assignment {:.2?} after restart",
        resumed.elapsed()
    );
    wait_sweep_finished(&cluster.urls(), "outage", Duration::from_secs(180));
    let rows = accuracy_rows(&cluster.urls(), "outage");
    let cells: BTreeSet<&[String]> = rows.iter().map(|r| &r[..5]).collect();
    let rows = rows.len();
    assert_eq!((rows, cells.len()), (96, 96), "one result per cell");
    let mut starts: BTreeMap<String, usize> = BTreeMap::new();
    for r in runs(&cluster.log()).iter().filter(|r| r.event == "start") {
        *starts.entry(r.key.clone()).or_default() += 1;
    }
    assert_eq!(starts.len(), 8 + 24 + 96, "jobs executed");
    let repeated: Vec<_> = starts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "jobs ran twice across the outage: {repeated:?}"
    );
}
