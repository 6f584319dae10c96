//! The grid's trainer backend is a requirement, with the real binary: `stilts run` refuses a
//! backend this build lacks before creating or submitting anything, and on a cluster a sweep
//! whose backend no connected worker has stays pending with the reason in `stilts sweep status`
//! (never failed, never run on another backend).

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::*;

fn burn_grid(name: &str, backend: &str) -> String {
    format!(
        r#"[sweep]
name = "{name}"
seeds = [1]

[models]
tiny = "models/tiny"

[grid]
intermediate = ["none"]
target = ["xnli"]
languages = ["de", "fr"]

[executor]
kind = "burn"
backend = "{backend}"
"#
    )
}

#[test]
fn run_refuses_a_backend_this_build_lacks_and_trains_nothing() {
    if cfg!(feature = "libtorch") {
        eprintln!("skipping: this build has the libtorch backend");
        return;
    }
    let dir = temp_dir();
    let grid = write(dir.path(), "gpu.toml", &burn_grid("gpu", "libtorch-cuda"));
    let state = dir.path().join("state");
    let out = stilts()
        .args(["run", "--no-progress", "--http", "off", "--state-dir"])
        .arg(&state)
        .arg(&grid)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted:\n{stderr}");
    for part in [
        "gpu.toml ([executor] backend)",
        "\"libtorch-cuda\"",
        "--features libtorch",
        "GPU build",
        "--backend cpu",
        "Nothing was submitted",
    ] {
        assert!(stderr.contains(part), "{part:?} missing from:\n{stderr}");
    }
    assert!(
        !state.exists(),
        "state directory created for a refused grid"
    );

    // The same refusal for an explicit --backend, and an unknown one is named.
    let out = stilts()
        .args([
            "run",
            "--no-progress",
            "--backend",
            "libtorch-cpu",
            "--state-dir",
        ])
        .arg(&state)
        .arg(&grid)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--backend asks for backend \"libtorch-cpu\""),
        "{stderr}"
    );
    let out = stilts()
        .args(["run", "--backend", "tpu", "--state-dir"])
        .arg(&state)
        .arg(&grid)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown backend \"tpu\""), "{stderr}");
    assert!(!state.exists());
}

#[test]
fn a_sweep_waits_pending_for_a_worker_with_its_backend() {
    let dir = temp_dir();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _coordinator = Proc::spawn(
        stilts()
            .args(["coordinator", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--http", "off", "--state-dir"])
            .arg(dir.path().join("coord"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let _worker = Proc::spawn(
        stilts()
            .args(["worker", "--coordinator", &url, "--name", "cpu-box"])
            .args(["--backend", "cpu", "--artifacts"])
            .arg(dir.path().join("artifacts"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let grid = write(dir.path(), "gpu.toml", &burn_grid("gpu", "libtorch-cuda"));
    wait_until("the submit", Duration::from_secs(60), || {
        sweep_cmd(&url, &["submit", grid.to_str().unwrap()])
    });
    let status = wait_until(
        "the pending reason naming the CPU worker",
        Duration::from_secs(60),
        || sweep_cmd(&url, &["status", "gpu"]).filter(|s| s.contains("1 × cpu")),
    );
    assert!(status.contains("backend libtorch-cuda"), "{status}");
    assert!(
        status.contains("PENDING 1 ready jobs wait for a worker with backend libtorch-cuda"),
        "{status}"
    );
    // Several acquire rounds of the worker later, still nothing ran and nothing failed.
    std::thread::sleep(Duration::from_secs(3));
    let status = sweep_cmd(&url, &["status", "gpu"]).unwrap();
    assert!(status.contains("2 cells (2 ready)"), "{status}");
    assert!(status.contains("target       1 ready"), "{status}");
    assert!(
        !status.contains("FAILED") && !status.contains("leased"),
        "{status}"
    );
}
