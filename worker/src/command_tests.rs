//! Real-process tests of the command executor.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stilts_common::failure::FailureReason;
use stilts_common::job::{ExecutorSpec, JobSpec, StageKind};

use super::*;
use crate::executor::Progress;

#[derive(Default)]
struct Recorder(Mutex<Vec<Progress>>, Mutex<Vec<crate::executor::Point>>);

impl ProgressSink for Recorder {
    fn report(&self, progress: Progress) {
        self.0.lock().unwrap().push(progress);
    }
    fn point(&self, point: crate::executor::Point) {
        self.1.lock().unwrap().push(point);
    }
}

fn ctx(dir: &Path, kind: StageKind, template: &str, timeout_s: Option<u64>) -> JobContext {
    let spec = JobSpec {
        kind,
        model: "xlmr".into(),
        model_source: "models/xlm-roberta-base".into(),
        task: "xnli".into(),
        intermediate: "mnli".into(),
        languages: vec!["de".into(), "sw".into()],
        seed: 7,
        recipe: [("lr".to_string(), serde_json::json!(1e-5))]
            .into_iter()
            .collect(),
        executor: ExecutorSpec::Command {
            template: template.into(),
            retryable_exit_codes: vec![75],
            timeout_s,
        },
        parent: None,
        data_version: "d".into(),
        code_version: "c".into(),
        task_defs: Default::default(),
    };
    let output_dir = dir.join("job");
    std::fs::create_dir_all(&output_dir).unwrap();
    JobContext {
        key: "k1".into(),
        attempt: 2,
        spec,
        input_dir: None,
        metrics_file: output_dir.join("metrics.json"),
        log_dir: output_dir.join("logs/attempt-2"),
        gpu: None,
        output_dir,
    }
}

fn exec() -> CommandExecutor {
    CommandExecutor::new().with_kill_grace(Duration::from_millis(300))
}

fn run(ctx: &JobContext) -> Result<JobOutput, Failure> {
    exec().run(ctx, &Recorder::default(), &CancelFlag::new())
}

/// Alive = exists and is not a zombie (an orphan whose reaper has not run yet is dead to us).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_dead(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} survived the job");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn renders_every_placeholder_and_exports_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx(
        dir.path(),
        StageKind::Evaluate,
        "printf '{{\"args\": \"%s\", \"env\": \"%s\"}}' \
         '{model} {model_source} {task} {intermediate} {target} {languages} {languages_space} \
         {seed} {input_dir} {job_key} {attempt} {recipe.lr}' \"$STILTS_RECIPE_LR\" > {metrics_file}",
        None,
    );
    let out = run(&c).unwrap();
    assert_eq!(
        out.metrics["args"],
        "xlmr models/xlm-roberta-base xnli mnli xnli de,sw de sw 7 models/xlm-roberta-base k1 2 0.00001"
    );
    assert_eq!(out.metrics["env"], "0.00001");
    assert_eq!(out.artifact, c.output_dir);
    assert!(
        std::fs::read_to_string(c.log_dir.join("command.txt"))
            .unwrap()
            .starts_with("printf")
    );
}

#[test]
fn success_keeps_stdout_and_stderr_and_forwards_progress() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx(
        dir.path(),
        StageKind::Evaluate,
        "echo hello; echo STILTS_PROGRESS step=5 total=9 loss=0.25 phase=eval; echo oops >&2; \
         echo '{{\"de\": {{\"accuracy\": 81.2}}}}' > {metrics_file}",
        None,
    );
    let sink = Recorder::default();
    let out = exec().run(&c, &sink, &CancelFlag::new()).unwrap();
    assert_eq!(out.metrics["de"]["accuracy"], 81.2);
    let stdout = std::fs::read_to_string(c.log_dir.join("stdout.log")).unwrap();
    assert!(stdout.starts_with("hello\nSTILTS_PROGRESS"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(c.log_dir.join("stderr.log")).unwrap(),
        "oops\n"
    );
    let seen = sink.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![Progress {
            step: 5,
            total: 9,
            loss: 0.25,
            phase: "eval".into()
        }]
    );
}

#[test]
fn metric_lines_become_points_and_malformed_ones_only_warn() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx(
        dir.path(),
        StageKind::Target,
        "echo STILTS_METRIC step=1 loss=2.5 lr=1e-5; echo STILTS_METRIC step=2 loss=nan; \
         echo STILTS_METRIC step=oops; echo STILTS_METRIC step=3 dev=70.5",
        None,
    );
    let sink = Recorder::default();
    exec().run(&c, &sink, &CancelFlag::new()).unwrap();
    let points = sink.1.lock().unwrap().clone();
    let steps: Vec<u64> = points.iter().map(|p| p.step).collect();
    assert_eq!(steps, vec![1, 2, 3]);
    assert_eq!((points[0].loss, points[0].lr), (Some(2.5), Some(1e-5)));
    assert!(points[1].loss_non_finite());
    assert_eq!(points[2].dev, Some(70.5));
    let warnings = std::fs::read_to_string(c.log_dir.join(WARNINGS_LOG)).unwrap();
    assert!(
        warnings.starts_with("stdout.log line 3: ignored STILTS_METRIC line: step=\"oops\""),
        "{warnings}"
    );
}

#[test]
fn stop_on_nan_stops_the_command_at_the_first_bad_loss_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let template = "echo STILTS_METRIC step=1 loss=0.5; echo STILTS_METRIC step=2 loss=inf; \
                    sleep 30; echo survived > {output_dir}/late";
    let mut c = ctx(dir.path(), StageKind::Target, template, None);
    c.spec
        .recipe
        .insert(STOP_ON_NAN.to_string(), serde_json::json!(true));
    let sink = Recorder::default();
    let started = Instant::now();
    let err = exec().run(&c, &sink, &CancelFlag::new()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "stopped early");
    assert_eq!(err.reason, FailureReason::Data);
    assert!(!err.retryable);
    assert!(err.message.contains("step 2"), "{}", err.message);
    assert!(!c.output_dir.join("late").exists());
    assert_eq!(sink.1.lock().unwrap().len(), 2, "the bad point is kept");

    // Without the key the same lines are only points; a key of the wrong type is a user error.
    let c = ctx(
        dir.path(),
        StageKind::Target,
        "echo STILTS_METRIC step=1 loss=nan",
        None,
    );
    exec()
        .run(&c, &Recorder::default(), &CancelFlag::new())
        .unwrap();
    let mut c = ctx(dir.path(), StageKind::Target, "true", None);
    c.spec
        .recipe
        .insert(STOP_ON_NAN.to_string(), serde_json::json!("yes"));
    let err = run(&c).unwrap_err();
    assert_eq!(err.reason, FailureReason::User);
    assert!(err.message.contains("stop_on_nan"), "{}", err.message);
}

#[test]
fn training_job_without_metrics_succeeds_with_empty_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx(dir.path(), StageKind::Target, "true", None);
    assert_eq!(run(&c).unwrap().metrics, serde_json::json!({}));
}

#[test]
fn nonzero_exit_is_retryable_with_budget_and_quotes_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx(
        dir.path(),
        StageKind::Target,
        "for i in $(seq 1 30); do echo \"err $i\" >&2; done; exit 3",
        None,
    );
    let f = run(&c).unwrap_err();
    assert_eq!(f.reason, FailureReason::Error);
    assert!(f.retryable && f.counts_against_budget);
    assert!(f.message.contains("exited with code 3"), "{}", f.message);
    assert!(
        f.message.contains("err 11\n") && f.message.ends_with("err 30"),
        "{}",
        f.message
    );
    assert!(!f.message.contains("err 10\n"), "{}", f.message);
}

#[test]
fn retryable_exit_code_spends_no_budget() {
    let dir = tempfile::tempdir().unwrap();
    let f = run(&ctx(dir.path(), StageKind::Target, "exit 75", None)).unwrap_err();
    assert_eq!(f.reason, FailureReason::Error);
    assert!(f.retryable && !f.counts_against_budget);
    assert!(f.message.contains("retryable_exit_codes"), "{}", f.message);
}

#[test]
fn evaluate_without_metrics_is_bad_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx(dir.path(), StageKind::Evaluate, "true", None);
    let f = run(&c).unwrap_err();
    assert_eq!(f.reason, FailureReason::BadMetrics);
    assert!(!f.retryable);
    assert!(
        f.message.contains(&c.metrics_file.display().to_string()),
        "{}",
        f.message
    );
}

#[test]
fn invalid_metrics_json_is_bad_metrics_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let c = ctx(
        dir.path(),
        StageKind::Evaluate,
        "printf '{{\\n\"de\": 1,,}}' > {metrics_file}",
        None,
    );
    let f = run(&c).unwrap_err();
    assert_eq!(f.reason, FailureReason::BadMetrics);
    assert!(f.message.contains("line 2, column"), "{}", f.message);
}

#[test]
fn bad_template_is_a_permanent_user_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = run(&ctx(
        dir.path(),
        StageKind::Target,
        "train {recipe.missing}",
        None,
    ))
    .unwrap_err();
    assert_eq!(f.reason, FailureReason::User);
    assert!(!f.retryable);
    assert!(f.message.contains("recipe.missing"), "{}", f.message);
}

#[test]
fn timeout_kills_the_whole_group_even_when_it_ignores_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let template = format!(
        "trap '' TERM; sleep 60 & echo $! > {}; wait; wait",
        pid_file.display()
    );
    let c = ctx(dir.path(), StageKind::Target, &template, Some(1));
    let started = Instant::now();
    let f = run(&c).unwrap_err();
    assert_eq!(f.reason, FailureReason::Timeout);
    assert!(f.retryable && f.counts_against_budget);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    wait_dead(&wait_for_file(&pid_file));
}

#[test]
fn cancel_terminates_the_job_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let template = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
    let c = ctx(dir.path(), StageKind::Target, &template, None);
    let cancel = CancelFlag::new();
    let worker = {
        let (c, cancel) = (c.clone(), cancel.clone());
        std::thread::spawn(move || exec().run(&c, &Recorder::default(), &cancel))
    };
    let pid = wait_for_file(&pid_file);
    assert!(alive(&pid));
    cancel.cancel();
    let f = worker.join().unwrap().unwrap_err();
    assert_eq!(f.reason, FailureReason::Cancelled);
    assert!(!f.counts_against_budget);
    wait_dead(&pid);
}

#[test]
fn leftover_background_processes_are_killed_after_success() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let template = format!(
        "sleep 60 >/dev/null 2>&1 & echo $! > {}",
        pid_file.display()
    );
    run(&ctx(dir.path(), StageKind::Target, &template, None)).unwrap();
    wait_dead(&wait_for_file(&pid_file));
}

/// Grid values never reach `sh -c` as shell syntax: a value with `;`, `$( )` and quotes is one
/// argument, and `{languages_space}` is still one argument per language.
#[test]
fn substituted_values_are_shell_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("pwned");
    let out = dir.path().join("args.txt");
    let mut c = ctx(
        dir.path(),
        StageKind::Target,
        &format!(
            "printf '%s\\n' {{model_source}} {{languages_space}} {{recipe.note}} > {}",
            out.display()
        ),
        None,
    );
    c.spec.model_source = format!("x; touch {}; echo $(id) 'q", pwned.display());
    c.spec
        .recipe
        .insert("note".into(), serde_json::json!("a b"));
    run(&c).unwrap();
    assert!(!pwned.exists(), "a grid value ran as a shell command");
    let args = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = args.lines().collect();
    assert_eq!(
        lines,
        [c.spec.model_source.as_str(), "de", "sw", "a b"],
        "{args}"
    );
}
