//! A network partition with Linux network namespaces: worker A runs in its own namespace,
//! joined to the host by a veth pair, and is cut off (its end of the link goes down) while it
//! runs a job. Its lease runs out, worker B on the host reruns the job, and once the link is back
//! A's report of the job it finished meanwhile is fenced off: the recorded result is B's.
//!
//! Needs root (or CAP_NET_ADMIN) and `ip`; skips with a visible message otherwise.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

/// A namespace with one veth pair to the host; removed on drop.
struct NetNs {
    name: String,
    inner_if: String,
    host_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    fn create() -> Result<NetNs, String> {
        let id = std::process::id();
        let net = format!("10.231.{}", id % 200 + 20);
        let ns = NetNs {
            name: format!("stilts-part-{id}"),
            inner_if: format!("stp{id}n"),
            host_ip: format!("{net}.1"),
        };
        let host_if = format!("stp{id}h");
        ip(&["netns", "add", &ns.name])?;
        // From here on, drop removes the namespace (and with it the veth pair).
        ip(&[
            "link",
            "add",
            &host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns.inner_if,
        ])?;
        ip(&["link", "set", &ns.inner_if, "netns", &ns.name])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", ns.host_ip),
            "dev",
            &host_if,
        ])?;
        ip(&["link", "set", &host_if, "up"])?;
        ns.exec_ip(&["addr", "add", &format!("{net}.2/24"), "dev", &ns.inner_if])?;
        ns.exec_ip(&["link", "set", "lo", "up"])?;
        ns.set_link(true)?;
        Ok(ns)
    }
    fn exec_ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all)
    }
    /// The namespace's end of the link up (healed) or down (partitioned).
    fn set_link(&self, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        self.exec_ip(&["link", "set", &self.inner_if, state])
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn worker(dir: &Path, tag: &str, url: &str, netns: Option<&str>) -> Proc {
    let bin = env!("CARGO_BIN_EXE_stilts");
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, bin]);
            c
        }
        None => Command::new(bin),
    };
    Proc::spawn(
        cmd.args([
            "worker",
            "--coordinator",
            url,
            "--slots",
            "1",
            "--name",
            tag,
        ])
        .arg("--artifacts")
        .arg(dir.join("artifacts"))
        .env_remove("STILTS_STATE_DIR")
        .env_remove("STILTS_COORDINATOR")
        .env("STILTS_LOG", "info")
        .env("STILTS_TEST_LOG", dir.join("jobs.log"))
        .env("STILTS_TEST_TAG", tag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(dir, tag)),
    )
}

fn log_file(dir: &Path, name: &str) -> Stdio {
    std::fs::File::create(dir.join(format!("{name}.log")))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

#[test]
fn partitioned_worker_loses_its_job_and_its_late_report_is_fenced() {
    let ns = match NetNs::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!(
                "SKIP partition test: cannot build a network namespace here ({e}); needs root and iproute2"
            );
            return;
        }
    };
    let dir = temp_dir();
    let port = free_port();
    let lease_ttl_s = 2;
    let _coord = Proc::spawn(
        stilts()
            .args(["coordinator", "--listen", &format!("0.0.0.0:{port}")])
            .args(["--http", "off", "--lease-ttl", &lease_ttl_s.to_string()])
            .arg("--state-dir")
            .arg(dir.path().join("coord"))
            .env("STILTS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(dir.path(), "coordinator")),
    );
    let local = format!("http://127.0.0.1:{port}");
    let across = format!("http://{}:{port}", ns.host_ip);
    let grid = write(dir.path(), "grid.toml", &command_grid("part", 1, 0.02, 3.0));
    wait_until(
        "the coordinator to accept the sweep",
        Duration::from_secs(60),
        || sweep_cmd(&local, &["submit", grid.to_str().unwrap()]),
    );

    let _a = worker(dir.path(), "wA", &across, Some(&ns.name));
    let log = dir.path().join("jobs.log");
    let held = wait_until(
        "wA to start an evaluate job",
        Duration::from_secs(120),
        || {
            runs(&log)
                .into_iter()
                .find(|r| r.tag == "wA" && r.event == "start" && !r.languages.is_empty())
        },
    );
    ns.set_link(false).expect("partition");
    let _b = worker(dir.path(), "wB", &local, None);
    wait_until("wB to rerun wA's job", Duration::from_secs(120), || {
        runs(&log)
            .iter()
            .any(|r| r.key == held.key && r.tag == "wB" && r.event == "done")
            .then_some(())
    });
    // wA's command has finished inside the partition; its report waits for the link.
    wait_until("wA's job to finish", Duration::from_secs(30), || {
        runs(&log)
            .iter()
            .any(|r| r.key == held.key && r.tag == "wA" && r.event == "done")
            .then_some(())
    });
    ns.set_link(true).expect("heal");
    let wa_log = dir.path().join("wA.log");
    wait_until(
        "wA's late report to be fenced off",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(&wa_log)
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains("report fenced off") && l.contains(&held.key))
                .then_some(())
        },
    );
    wait_sweep_finished(&local, "part", Duration::from_secs(240));
    let rows = sweep_cmd(&local, &["results", "part", "--format", "csv"]).expect("results");
    let accuracy = rows.lines().filter(|l| l.contains(",accuracy,")).count();
    assert_eq!(accuracy, 24, "one result per cell: {rows}");
    let recorded: Vec<&str> = rows
        .lines()
        .filter(|l| l.contains(",attempt,") && l.contains(&format!(",{},", held.key)))
        .collect();
    assert_eq!(recorded.len(), 1, "{rows}");
    assert!(
        !recorded[0].contains(&format!(",attempt,{},", held.attempt)),
        "the partitioned worker's report (attempt {}) was recorded: {}",
        held.attempt,
        recorded[0]
    );
    eprintln!(
        "partition: wA held {} (attempt {}), wB reran it, wA's late report was fenced off",
        &held.key[..12],
        held.attempt
    );
}
