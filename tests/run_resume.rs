//! `stilts run` end to end with the command executor: a sweep of 240 cells, undisturbed and
//! `kill -9`ed mid-way then resumed with the same command. Every cell ends with a result equal to
//! the undisturbed run's, and each job's side effect happened once, except jobs in flight at the
//! kill.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::*;

const SLOTS: usize = 4;

fn run_cmd(
    grid: &std::path::Path,
    state: &std::path::Path,
    log: &std::path::Path,
) -> std::process::Command {
    let mut c = stilts();
    c.args([
        "run",
        "--no-progress",
        "--slots",
        &SLOTS.to_string(),
        "--state-dir",
    ])
    .arg(state)
    .arg(grid)
    .env("STILTS_TEST_LOG", log)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

#[test]
fn kill_9_mid_sweep_then_resume_equals_undisturbed_run() {
    let dir = temp_dir();
    let grid = write(
        dir.path(),
        "grid.toml",
        &command_grid("resume", 10, 0.02, 0.02),
    );

    // Undisturbed reference run.
    let (state_a, log_a) = (dir.path().join("a"), dir.path().join("a.log"));
    let out = run_cmd(&grid, &state_a, &log_a).output().unwrap();
    let table = output_ok(&out);
    assert!(
        table.contains("ta · accuracy"),
        "results table printed:\n{table}"
    );
    let reference = results_csv(&state_a);
    assert_eq!(reference.len(), 240, "one result row per cell");
    let once = executions(&log_a);
    assert_eq!(
        once.len(),
        8 + 24 + 240,
        "intermediate + target + evaluate jobs"
    );
    assert!(
        once.values().all(|&n| n == 1),
        "undisturbed run executes each job once"
    );

    // Same sweep, killed with SIGKILL once a third of the jobs ran.
    let (state_b, log_b) = (dir.path().join("b"), dir.path().join("b.log"));
    let mut first = Proc::spawn(&mut run_cmd(&grid, &state_b, &log_b));
    wait_until(
        "a third of the jobs to run",
        Duration::from_secs(120),
        || (line_count(&log_b) >= 90).then_some(()),
    );
    first.kill9();
    let before_resume = executions(&log_b);
    assert!(before_resume.len() < 272, "the kill landed mid-sweep");

    // Same command again: resumes.
    let out = run_cmd(&grid, &state_b, &log_b).output().unwrap();
    output_ok(&out);
    assert_eq!(
        results_csv(&state_b),
        reference,
        "results equal the undisturbed run's"
    );

    let after = executions(&log_b);
    assert_eq!(after.len(), 272, "every job ran");
    let repeated: Vec<(&String, &usize)> = after.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.len() <= SLOTS && repeated.iter().all(|(_, n)| **n == 2),
        "only jobs in flight at the kill may run twice: {repeated:?}"
    );
    for (key, _) in &repeated {
        assert!(
            before_resume.contains_key(*key),
            "a repeated job had started before the kill"
        );
    }

    // A third run executes nothing.
    let lines = line_count(&log_b);
    let out = run_cmd(&grid, &state_b, &log_b).output().unwrap();
    output_ok(&out);
    assert_eq!(
        line_count(&log_b),
        lines,
        "a finished sweep re-runs nothing"
    );
}

#[test]
fn bad_grid_names_file_line_and_column_and_submits_nothing() {
    let dir = temp_dir();
    let good = command_grid("bad", 2, 0.0, 0.0);
    let cases = [
        (
            good.replace("target = [\"ta\", \"tb\"]", "target = [\"ta\", \"ta\"]"),
            "duplicate",
        ),
        (
            good.replace("{metrics_file}", "{metrics_fiel}"),
            "metrics_fiel",
        ),
        (good.replace("[evaluate]", "[evaluate]\nbogus = 1"), "bogus"),
        (good.replace("seeds = [1, 2]", "seeds = []"), "seeds"),
        (
            good.replace("name = \"bad\"", "name = \"bad"),
            "grid.toml:2",
        ),
    ];
    for (text, needle) in cases {
        let grid = write(dir.path(), "grid.toml", &text);
        let state = dir.path().join("state");
        let out = stilts()
            .args(["run", "--no-progress", "--state-dir"])
            .arg(&state)
            .arg(&grid)
            .env("STILTS_TEST_LOG", dir.path().join("log"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "bad grid ({needle}) must fail");
        assert!(
            stderr.contains("grid.toml:"),
            "error names the file and line: {stderr}"
        );
        assert!(
            stderr.contains(needle),
            "error mentions {needle:?}: {stderr}"
        );
        let listed = stilts()
            .args(["results", "--state-dir"])
            .arg(&state)
            .output()
            .unwrap();
        assert!(!listed.status.success(), "nothing was submitted");

        let plan = stilts().arg("plan").arg(&grid).output().unwrap();
        assert!(!plan.status.success());
        assert!(String::from_utf8_lossy(&plan.stderr).contains("grid.toml:"));
    }
    assert!(!dir.path().join("log").exists(), "no job ran");
}

#[test]
fn plan_prints_cells_jobs_and_saving() {
    let dir = temp_dir();
    let grid = write(dir.path(), "grid.toml", &command_grid("plan", 10, 0.0, 0.0));
    let out = stilts().arg("plan").arg(&grid).output().unwrap();
    let text = output_ok(&out);
    assert!(text.contains("240"), "{text}");
    assert!(
        text.contains("8 intermediate + 24 target + 240 evaluate"),
        "{text}"
    );
    // naive: 80 baseline cells × 1 + 160 cells × 2 = 400 runs vs 32 planned
    assert!(text.contains("32 planned vs 400 naive"), "{text}");
}

#[test]
fn failing_commands_fail_their_job_with_the_reason_and_others_go_on() {
    let dir = temp_dir();
    let grid = command_grid("failing", 5, 0.0, 0.0);
    // Evaluate jobs of l01..l04 fail in four ways; l00 succeeds.
    let grid = grid.replace(
        "evaluate = \"",
        "evaluate = \"case {languages} in l01) exit 3;; l02) exit 0;; l03) echo '{{nope' > {metrics_file}; exit 0;; l04) sleep 60;; esac; ",
    );
    let grid = grid.replace("[executor]", "[executor]\ntimeout = \"2s\"");
    let grid = write(dir.path(), "grid.toml", &grid);
    let log = dir.path().join("log");
    let state = dir.path().join("state");
    let mut cmd = stilts();
    cmd.args([
        "run",
        "--no-progress",
        "--max-attempts",
        "1",
        "--slots",
        "4",
        "--state-dir",
    ])
    .arg(&state)
    .arg(&grid)
    .env("STILTS_TEST_LOG", &log);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "failed cells make the run fail: {stderr}"
    );
    assert!(
        stderr.contains("exit"),
        "non-zero exit reason shown: {stderr}"
    );
    assert!(
        stderr.contains("metrics"),
        "missing/invalid metrics reason shown: {stderr}"
    );
    assert!(
        stderr.contains("timeout") || stderr.contains("timed out"),
        "timeout shown: {stderr}"
    );
    // The l00 cells all have results.
    let rows = results_csv(&state);
    assert_eq!(rows.len(), 24, "{rows:?}");
    assert!(rows.iter().all(|r| r.contains(",l00,")));
}

#[test]
fn report_marks_failed_cells_and_computes_the_rest() {
    let dir = temp_dir();
    // Evaluate jobs of target tb, language l01, seed 2 fail permanently; the rest succeeds.
    let grid = command_grid("report", 2, 0.0, 0.0).replace(
        "evaluate = \"",
        "evaluate = \"case {task}-{languages}-{seed} in tb-l01-2) exit 3;; esac; ",
    );
    let grid = write(dir.path(), "grid.toml", &grid);
    let state = dir.path().join("state");
    let out = stilts()
        .args(["run", "--no-progress", "--max-attempts", "1", "--state-dir"])
        .arg(&state)
        .arg(&grid)
        .env("STILTS_TEST_LOG", dir.path().join("log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report_dir = dir.path().join("report");
    let out = stilts()
        .args(["report", "--state-dir"])
        .arg(&state)
        .arg("--out")
        .arg(&report_dir)
        .output()
        .unwrap();
    let md = output_ok(&out);
    assert!(md.contains("Δ vs `none`"), "{md}");
    assert!(
        md.contains("failed ("),
        "failed cells are marked as such: {md}"
    );
    assert!(md.contains("(n=2)"), "complete cells are computed: {md}");
    for f in [
        "report.md",
        "report.csv",
        "report.json",
        "results.parquet",
        "results.jsonl",
    ] {
        assert!(report_dir.join(f).is_file(), "{f} written");
    }
    assert!(report_dir.join("heatmap-alpha.svg").is_file());
}
