//! A sweep's life after its first run, as a user drives it with the real binary:
//! - `data_version = "auto"` with `stilts run`: an unchanged re-run runs nothing; a changed test
//!   file of one language re-runs that language's evaluate job only; a changed training file
//!   re-runs the target and everything below it, never the intermediate job.
//! - `stilts sweep delete` against a `stilts coordinator` and a `stilts worker`: without `--yes`
//!   nothing goes; with it the sweep is gone and its results are reused when the grid comes back;
//!   `--purge --compact` removes the job records and their artifacts.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::*;

/// A grid whose two tasks it defines itself, over tsv files under `data`, run by the command
/// executor; every job logs `start KEY …` to `$STILTS_TEST_LOG`.
fn auto_grid(name: &str, data: &Path) -> String {
    let log = r#"\"$STILTS_TEST_LOG\""#;
    let start = format!("echo start {{job_key}} {{attempt}} x {{languages}} >> {log}");
    let metric = r#"printf '{{\"%s\": {{\"accuracy\": 50}}}}' {languages} > {metrics_file}"#;
    format!(
        r#"[sweep]
name = "{name}"
seeds = [1]
data_version = "auto"

[models]
m = "models/m"

[grid]
intermediate = ["inter"]
target = ["tgt"]
languages = ["en", "de", "fr"]

[evaluate]
languages_per_job = 1

[recipe]
data_dir = "{data}"

[tasks.inter]
role = "intermediate"
domain = "sentiment"
head = "classification"
metric = "accuracy"
languages = ["en"]
labels = ["0", "1"]

[[tasks.inter.layout]]
reader = "tsv"
dirs = ["inter"]
columns = {{ text = "s", label = "l" }}
train = ["train.tsv"]
dev = ["dev.tsv"]

[tasks.tgt]
role = "target"
domain = "sentiment"
head = "classification"
metric = "accuracy"
languages = ["en", "de", "fr"]
labels = ["0", "1"]

[[tasks.tgt.layout]]
reader = "tsv"
dirs = ["tgt"]
columns = {{ text = "s", label = "l" }}
train = ["en/train.tsv"]
dev = ["{{lang}}/dev.tsv"]
test = ["{{lang}}/test.tsv"]

[executor]
kind = "command"
intermediate = "{start}; mkdir -p {{output_dir}}; echo ckpt > {{output_dir}}/ckpt"
target = "{start}; mkdir -p {{output_dir}}; echo ckpt > {{output_dir}}/ckpt"
evaluate = "{start}; {metric}"
"#,
        data = data.display()
    )
}

fn write_data(data: &Path) {
    let rows = "s\tl\ngood film\t1\nbad film\t0\n";
    for f in ["inter/train.tsv", "inter/dev.tsv", "tgt/en/train.tsv"] {
        write_file(&data.join(f), rows);
    }
    for lang in ["en", "de", "fr"] {
        write_file(&data.join(format!("tgt/{lang}/dev.tsv")), rows);
        write_file(&data.join(format!("tgt/{lang}/test.tsv")), rows);
    }
}

fn write_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn append(path: &Path, text: &str) {
    let old = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, old + text).unwrap();
}

/// The `start` lines of the log: (key, languages) per execution.
fn started(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("start "))
        .map(str::to_string)
        .collect()
}

#[test]
fn auto_data_version_reruns_exactly_the_jobs_whose_data_changed() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    write_data(&data);
    let grid = write(dir.path(), "grid.toml", &auto_grid("auto", &data));
    let (state, log) = (dir.path().join("state"), dir.path().join("jobs.log"));
    let run = || {
        let out = stilts()
            .args(["run", "--no-progress", "--state-dir"])
            .arg(&state)
            .arg(&grid)
            .env("STILTS_TEST_LOG", &log)
            .env("STILTS_CACHE_DIR", dir.path().join("cache"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        output_ok(&out);
        stderr
    };
    let new_runs = |before: usize| started(&log)[before..].to_vec();

    run();
    let first = started(&log);
    assert_eq!(
        first.len(),
        1 + 1 + 3,
        "intermediate, target, 3 evaluate jobs: {first:?}"
    );
    assert!(
        dir.path().join("cache/data-digests.json").exists(),
        "digests cached"
    );

    let said = run();
    assert!(new_runs(5).is_empty(), "unchanged data runs nothing");
    assert!(!said.contains("planned again"), "{said}");

    append(&data.join("tgt/de/test.tsv"), "fine film\t1\n");
    let said = run();
    let again = new_runs(5);
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(
        again[0].ends_with(" de"),
        "only the German evaluate job: {again:?}"
    );
    assert!(
        said.contains("planned again"),
        "the user is told why: {said}"
    );

    append(&data.join("tgt/en/train.tsv"), "fine film\t1\n");
    run();
    let again = new_runs(6);
    assert_eq!(
        again.len(),
        4,
        "the target job and its 3 evaluate jobs: {again:?}"
    );
    let inter_key = first[0].split(' ').nth(1).unwrap();
    assert!(
        again.iter().all(|l| !l.contains(inter_key)),
        "the intermediate job's data did not change: {again:?}"
    );
    assert_eq!(results_csv(&state).len(), 3, "one result per cell");

    // A file that goes missing: a clear error, nothing submitted, nothing lost.
    std::fs::remove_file(data.join("tgt/fr/test.tsv")).unwrap();
    let out = stilts()
        .args(["run", "--no-progress", "--state-dir"])
        .arg(&state)
        .arg(&grid)
        .env("STILTS_CACHE_DIR", dir.path().join("cache"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tgt") && err.contains("fr") && err.contains("nothing was submitted"),
        "{err}"
    );
    assert_eq!(results_csv(&state).len(), 3, "earlier results kept");
}

#[test]
fn sweep_delete_keeps_results_for_reuse_and_purge_removes_them() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    write_data(&data);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let artifacts = dir.path().join("artifacts");
    let log = dir.path().join("jobs.log");
    let _coordinator = Proc::spawn(
        stilts()
            .args(["coordinator", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--http", "off", "--state-dir"])
            .arg(dir.path().join("coord"))
            .arg("--artifacts")
            .arg(&artifacts)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let _worker = Proc::spawn(
        stilts()
            .args(["worker", "--coordinator", &url, "--artifacts"])
            .arg(&artifacts)
            .env("STILTS_TEST_LOG", &log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let grid = write(dir.path(), "grid.toml", &auto_grid("del", &data));
    let submit = || {
        wait_until("the submit", Duration::from_secs(60), || {
            stilts()
                .args([
                    "sweep",
                    "submit",
                    grid.to_str().unwrap(),
                    "--coordinator",
                    &url,
                ])
                .env("STILTS_CACHE_DIR", dir.path().join("cache"))
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        })
    };
    submit();
    wait_sweep_finished(&url, "del", Duration::from_secs(120));
    assert_eq!(started(&log).len(), 5);
    let keys: Vec<String> = started(&log)
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert!(
        keys.iter().all(|k| artifacts.join(k).exists()),
        "artifacts written"
    );

    let dry = sweep_cmd(&url, &["delete", "del"]).expect("dry run");
    assert!(
        dry.contains("would delete sweep del: 3 cells, 5 jobs"),
        "{dry}"
    );
    assert!(
        sweep_cmd(&url, &["status", "del"]).is_some(),
        "nothing deleted without --yes"
    );

    let done = sweep_cmd(&url, &["delete", "del", "--yes"]).expect("delete");
    assert!(
        done.contains("deleted sweep del: 3 cells, 5 jobs (0 job records"),
        "{done}"
    );
    assert!(
        sweep_cmd(&url, &["status", "del"]).is_none(),
        "the sweep is gone"
    );
    assert!(
        sweep_cmd(&url, &["delete", "del", "--yes"]).is_none(),
        "unknown sweep"
    );

    // The same grid again: every job's result was kept, nothing runs.
    let said = submit();
    assert!(said.contains("(5 already done)"), "{said}");
    wait_sweep_finished(&url, "del", Duration::from_secs(60));
    assert_eq!(started(&log).len(), 5, "no job ran again");
    assert_eq!(accuracy_rows(&url, "del").len(), 3);

    let done = sweep_cmd(&url, &["delete", "del", "--yes", "--purge", "--compact"]).expect("purge");
    assert!(
        done.contains("(5 job records and 5 artifacts purged)")
            && done.contains("sqlite: vacuumed"),
        "{done}"
    );
    assert!(
        keys.iter().all(|k| !artifacts.join(k).exists()),
        "artifacts removed"
    );
    // Purged: submitted again, every job runs again.
    submit();
    wait_sweep_finished(&url, "del", Duration::from_secs(120));
    assert_eq!(started(&log).len(), 10, "purged jobs run again");
}
