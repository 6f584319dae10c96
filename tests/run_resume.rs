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
    let md = report(&state, &report_dir);
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

/// The example grid as shipped, on the MiniLM test model with one seed and a few training steps.
fn tiny_example(model: &std::path::Path) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/examples/domain-adaptation.toml"),
    )
    .unwrap();
    let recipe = "[recipe]\nlr = 2e-5\nbatch_size = 32\nepochs = 2\nmax_seq_len = 128\n";
    for line in [
        recipe,
        "intermediate = [\"none\", \"imdb\", \"qqp\"]",
        "target = [\"movie-reviews\", \"paraphrase-x\"]",
    ] {
        assert!(
            text.contains(line),
            "the example changed ({line}): update this test"
        );
    }
    // The in-domain sentiment target is left out here: its model selection and evaluation read
    // SST-2's 872 dev sentences, about 50 s per job on CI's debug build of the trainer.
    text.replace("seeds = [1, 2, 3]", "seeds = [1]")
        .replace(
            "intermediate = [\"none\", \"imdb\", \"qqp\"]",
            "intermediate = [\"none\", \"imdb\"]",
        )
        .replace(
            "target = [\"movie-reviews\", \"paraphrase-x\"]",
            "target = [\"paraphrase-x\"]",
        )
        .replace(
            "mbert = \"bert-base-multilingual-cased\"",
            &format!("mbert = {:?}", model.display().to_string()),
        )
        .replace(
            recipe,
            "[recipe]\nbatch_size = 4\nmax_steps = 2\nmax_train_examples = 8\nmax_seq_len = 32\n",
        )
}

#[test]
fn example_grid_with_its_own_tasks_trains_evaluates_and_reports_their_domains() {
    let Some((data, model)) = shared_data_and_minilm() else {
        return;
    };
    let dir = temp_dir();
    let grid = write(dir.path(), "domain-adaptation.toml", &tiny_example(&model));
    let state = dir.path().join("state");
    let csv = run_grid_results(&grid, &state, &data);
    // 2 intermediates (none, imdb) × paraphrase-x's 7 languages, one seed.
    let rows: Vec<&str> = csv.lines().filter(|l| l.contains(",accuracy,")).collect();
    assert_eq!(rows.len(), 2 * 7, "{csv}");
    assert!(
        rows.iter().any(|r| r.contains(",paraphrase-x,de,")),
        "{csv}"
    );

    let report_dir = dir.path().join("report");
    let md = report(&state, &report_dir);
    for want in ["| paraphrase-x | paraphrase |", "| imdb | sentiment |"] {
        assert!(md.contains(want), "{want} in the report:\n{md}");
    }
}

#[test]
fn own_task_with_a_missing_file_or_a_foreign_label_submits_nothing() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("mine")).unwrap();
    std::fs::write(
        data.join("mine/train.csv"),
        "text,label\ngood,pos\nbad,neg\n",
    )
    .unwrap();
    std::fs::write(
        data.join("mine/test.csv"),
        "text,label\nfine,pos\nodd,meh\n",
    )
    .unwrap();
    let grid_text = |test: &str| {
        format!(
            "[sweep]\nname = \"mine\"\nseeds = [1]\n[models]\nm = \"models/m\"\n[grid]\n\
             intermediate = [\"none\"]\ntarget = [\"mine\"]\nlanguages = \"all\"\n\
             [tasks.mine]\nrole = \"target\"\ndomain = \"sentiment\"\nhead = \"classification\"\n\
             metric = \"accuracy\"\nlanguages = [\"en\"]\nlabels = [\"neg\", \"pos\"]\n\
             [[tasks.mine.layout]]\nreader = \"csv\"\ncolumns = {{ text = \"text\", label = \"label\" }}\n\
             train = [\"train.csv\"]\ntest = [\"{test}\"]\n"
        )
    };
    let state = dir.path().join("state");
    for (test, want) in [
        ("test.csv", "test.csv:3: unknown label `meh`"),
        ("missing.csv", "no test file for language `en`"),
    ] {
        let grid = write(dir.path(), "grid.toml", &grid_text(test));
        let out = stilts()
            .args(["run", "--no-progress", "--state-dir"])
            .arg(&state)
            .arg(&grid)
            .env("STILTS_DATA_DIR", &data)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("grid.toml:10:8: [tasks.mine]"), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(
            !state.join("state.db").exists(),
            "nothing was submitted: {err}"
        );
    }
}

/// Target jobs print `STILTS_METRIC` lines (one malformed); the curves reach the store through
/// heartbeats or the final report, `stilts export tensorboard` writes one run per job attempt
/// plus JSON and CSV, and TensorBoard's own reader (when `PYTHON` has the `tensorboard` wheel,
/// .ci/requirements.txt) reads the events back. The malformed line is only a warning.
#[test]
fn export_tensorboard_writes_curves_that_read_back() {
    let dir = temp_dir();
    let metrics = "for i in 1 2 3 4 5; do echo STILTS_METRIC step=$i loss=0.$i lr=2e-5; done; \
                   echo STILTS_METRIC step=5 dev=70.5; echo STILTS_METRIC step=bad; ";
    let grid = command_grid("curves", 1, 0.0, 0.0)
        .replace("target = \"", &format!("target = \"{metrics}"));
    let grid = write(dir.path(), "grid.toml", &grid);
    let state = dir.path().join("state");
    let out = stilts()
        .args(["run", "--no-progress", "--state-dir"])
        .arg(&state)
        .arg(&grid)
        .env("STILTS_TEST_LOG", dir.path().join("log"))
        .output()
        .unwrap();
    output_ok(&out);
    let tb = dir.path().join("tb");
    let out = stilts()
        .args(["export", "tensorboard", "curves", "--state-dir"])
        .arg(&state)
        .arg("--out")
        .arg(&tb)
        .output()
        .unwrap();
    output_ok(&out);
    let runs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tb.join("curves.json")).unwrap()).unwrap();
    let runs = runs.as_array().unwrap();
    // 2 models × 3 intermediates × 2 targets × 2 seeds target jobs, one attempt each.
    assert_eq!(runs.len(), 24, "{runs:?}");
    for r in runs {
        assert_eq!(r["stage"], "target");
        assert_eq!(r["attempt"], 1);
        let points = r["points"].as_array().unwrap();
        assert_eq!(points.len(), 6, "{r}");
        assert_eq!(points[4]["loss"], 0.5);
        assert_eq!(points[5]["dev"], 70.5);
    }
    let csv = std::fs::read_to_string(tb.join("curves.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 24 * 6);
    let key = runs[0]["job_key"].as_str().unwrap();
    let warnings = state
        .join("artifacts")
        .join(key)
        .join("logs/attempt-1/warnings.log");
    let warnings = std::fs::read_to_string(&warnings).unwrap();
    assert!(warnings.contains("step=\"bad\""), "{warnings}");

    let run_dir = std::fs::read_dir(tb.join("target"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("attempt-1");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = "import sys\n\
        from tensorboard.backend.event_processing import event_accumulator as ea\n\
        a = ea.EventAccumulator(sys.argv[1]); a.Reload()\n\
        print(len(a.Scalars('train/loss')), a.Scalars('train/loss')[-1].step, a.Scalars('dev/metric')[0].value)\n";
    match std::process::Command::new(&python)
        .args(["-c", script])
        .arg(&run_dir)
        .output()
    {
        Ok(o) if o.status.success() => {
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "5 5 70.5");
        }
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named 'tensorboard'") => {
            eprintln!(
                "skipping the read-back: {python} has no tensorboard (pip install tensorboard)"
            );
        }
        other => panic!("reading {} back failed: {other:?}", run_dir.display()),
    }
}

/// `stilts report` of the sweep in `state`, plots and exports under `out`; its Markdown.
fn report(state: &std::path::Path, out: &std::path::Path) -> String {
    let run = stilts()
        .args(["report", "--state-dir"])
        .arg(state)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    output_ok(&run)
}
