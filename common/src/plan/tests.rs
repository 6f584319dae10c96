use std::collections::HashSet;

use super::*;
use crate::grid::GridError;
use crate::job::ExecutorSpec;

/// The grid of DESIGN.md §1: 6 models × (4 intermediate tasks + none) × 10 targets × 20 languages
/// × 3 seeds.
fn design_grid(languages_per_job: u32) -> String {
    let models: String = (0..6)
        .map(|m| format!("m{m} = \"models/m{m}\"\n"))
        .collect();
    let targets: Vec<String> = (0..10).map(|t| format!("\"t{t}\"")).collect();
    let langs: Vec<String> = (0..20).map(|l| format!("\"l{l}\"")).collect();
    format!(
        "[sweep]\nname = \"design\"\nseeds = [1, 2, 3]\n[models]\n{models}[grid]\n\
         intermediate = [\"none\", \"mnli\", \"squad\", \"hellaswag\", \"sst2\"]\n\
         target = [{}]\nlanguages = [{}]\n[evaluate]\nlanguages_per_job = {languages_per_job}\n",
        targets.join(", "),
        langs.join(", ")
    )
}

fn plan_of(text: &str) -> Plan {
    plan("grid.toml", text, None, None).unwrap_or_else(|e| panic!("{e}"))
}

fn keys_of(p: &Plan, kind: StageKind) -> Vec<&str> {
    p.jobs
        .iter()
        .filter(|j| j.spec.kind == kind)
        .map(|j| j.key.as_str())
        .collect()
}

#[test]
fn design_grid_counts() {
    let p = plan_of(&design_grid(0));
    let s = p.summary();
    assert_eq!(s.cells, 18_000);
    assert_eq!(
        (s.intermediate_jobs, s.target_jobs, s.evaluate_jobs),
        (72, 900, 900)
    );
    assert_eq!(
        (s.naive_training_runs, s.planned_training_runs),
        (32_400, 972)
    );
    assert!(
        (s.saving_factor - 33.33).abs() < 0.01,
        "{}",
        s.saving_factor
    );
    assert_eq!(s.jobs(StageKind::Target), 900);
    assert!(
        s.to_string()
            .contains("972 planned vs 32400 naive (33.3x fewer)"),
        "{s}"
    );
    assert_eq!(p.axes.languages.len(), 20);
    assert_eq!(p.sweep, "design");
    assert_eq!(p.grid_digest.len(), 64);
}

#[test]
fn jobs_are_unique_and_topologically_ordered() {
    let p = plan_of(&design_grid(7));
    let mut seen = HashSet::new();
    for (i, job) in p.jobs.iter().enumerate() {
        assert!(seen.insert(job.key.as_str()), "duplicate key at {i}");
        assert_eq!(job.key, crate::key::job_key(&job.spec));
        match job.parent {
            Some(parent) => {
                assert!((parent as usize) < i, "parent after child");
                assert_eq!(
                    job.spec.parent.as_deref(),
                    Some(p.jobs[parent as usize].key.as_str())
                );
            }
            None => assert_eq!(job.spec.parent, None),
        }
        if i > 0 {
            assert!(
                p.jobs[i - 1].spec.kind.rank() <= job.spec.kind.rank(),
                "kinds out of order"
            );
        }
    }
}

#[test]
fn cells_know_their_chain_and_values() {
    let p = plan_of(&design_grid(0));
    let none = p
        .axes
        .intermediates
        .iter()
        .position(|i| i == "none")
        .unwrap() as u32;
    for cell in p.cells.iter().step_by(97) {
        let v = p.cell_values(cell);
        let chain = p.chain(cell);
        let specs: Vec<&JobSpec> = chain.iter().map(|&j| &p.jobs[j as usize].spec).collect();
        assert_eq!(chain.len(), if cell.intermediate == none { 2 } else { 3 });
        assert_eq!(*chain.last().unwrap(), cell.evaluate_job);
        for spec in &specs {
            assert_eq!((spec.model.as_str(), spec.seed), (v.model, v.seed));
            assert_eq!(spec.intermediate, v.intermediate);
        }
        let eval = specs.last().unwrap();
        assert_eq!(
            (eval.kind, eval.task.as_str()),
            (StageKind::Evaluate, v.target)
        );
        assert!(eval.languages.iter().any(|l| l == v.language));
        assert_eq!(specs[specs.len() - 2].kind, StageKind::Target);
        if cell.intermediate != none {
            assert_eq!(
                (specs[0].kind, specs[0].task.as_str()),
                (StageKind::Intermediate, v.intermediate)
            );
        }
    }
}

#[test]
fn dependents_count_cells() {
    let p = plan_of(&design_grid(0));
    for job in &p.jobs {
        let expected = match job.spec.kind {
            StageKind::Intermediate => 10 * 20,
            StageKind::Target | StageKind::Evaluate => 20,
        };
        assert_eq!(job.dependents, expected, "{:?}", job.spec.kind);
    }
    let total: u64 = p
        .jobs
        .iter()
        .filter(|j| j.spec.kind == StageKind::Evaluate)
        .map(|j| j.dependents)
        .sum();
    assert_eq!(total, p.cells.len() as u64);
}

#[test]
fn evaluate_jobs_batch_languages() {
    let p = plan_of(&design_grid(7));
    // 20 languages in batches of 7: 7 + 7 + 6, three evaluate jobs per target job.
    assert_eq!(p.summary().evaluate_jobs, 900 * 3);
    let sizes: Vec<usize> = p
        .jobs
        .iter()
        .filter(|j| j.spec.kind == StageKind::Evaluate)
        .take(3)
        .map(|j| j.spec.languages.len())
        .collect();
    assert_eq!(sizes, [7, 7, 6]);
    let eval = p
        .jobs
        .iter()
        .find(|j| j.spec.kind == StageKind::Evaluate)
        .unwrap();
    let mut sorted = eval.spec.languages.clone();
    sorted.sort();
    assert_eq!(
        eval.spec.languages, sorted,
        "languages are sorted within a job"
    );
    let per_language = plan_of(&design_grid(1));
    // One evaluate job per cell.
    assert_eq!(per_language.summary().evaluate_jobs, 18_000);
    // Every cell is still its own cell.
    assert_eq!(per_language.cells.len(), 18_000);
}

const COMMAND: &str = include_str!("../../../tests/grids/command.toml");

#[test]
fn command_grid_plans() {
    let p = plan_of(COMMAND);
    let s = p.summary();
    // 1 model × 2 intermediates × (3 + 2 languages) × 2 seeds.
    assert_eq!(s.cells, 20);
    assert_eq!((s.intermediate_jobs, s.target_jobs), (2, 8));
    // xnli: 3 languages in batches of 2 → 2 jobs; pawsx: 2 languages → 1 job; per target job.
    assert_eq!(s.evaluate_jobs, 2 * 2 * (2 + 1));
    assert_eq!(p.axes.languages, ["en", "de", "sw", "fr"]);
    let inter = &p.jobs[0].spec;
    assert_eq!(inter.recipe["epochs"], serde_json::json!(1));
    assert_eq!(
        (inter.data_version.as_str(), inter.code_version.as_str()),
        ("demo-1", "demo-scripts-1")
    );
    let ExecutorSpec::Command {
        template,
        timeout_s,
        retryable_exit_codes,
    } = &inter.executor
    else {
        panic!("command executor expected")
    };
    assert!(template.starts_with("mkdir -p {output_dir}"));
    assert_eq!(
        (*timeout_s, retryable_exit_codes.as_slice()),
        (Some(300), &[75][..])
    );
}

#[test]
fn keys_do_not_depend_on_unrelated_axes() {
    let base = plan_of(COMMAND);
    // Another language: the same training jobs, new evaluate jobs for xnli only.
    let more = plan_of(&COMMAND.replace(
        "[\"en\", \"de\", \"sw\"]",
        "[\"en\", \"de\", \"sw\", \"yo\"]",
    ));
    for kind in [StageKind::Intermediate, StageKind::Target] {
        assert_eq!(keys_of(&base, kind), keys_of(&more, kind), "{kind}");
    }
    assert_ne!(
        keys_of(&base, StageKind::Evaluate),
        keys_of(&more, StageKind::Evaluate)
    );
    // Another evaluate command: training keys stay.
    let eval = plan_of(&COMMAND.replace("test -f {input_dir}/model.txt", "test -d {input_dir}"));
    for kind in [StageKind::Intermediate, StageKind::Target] {
        assert_eq!(keys_of(&base, kind), keys_of(&eval, kind), "{kind}");
    }
    let base_eval: HashSet<&str> = keys_of(&base, StageKind::Evaluate).into_iter().collect();
    assert!(
        keys_of(&eval, StageKind::Evaluate)
            .iter()
            .all(|k| !base_eval.contains(k))
    );
    // Another target recipe: intermediate keys stay, target and evaluate keys change.
    let recipe = plan_of(&format!("{COMMAND}\n[recipe.target]\nwarmup = 0.1\n"));
    assert_eq!(
        keys_of(&base, StageKind::Intermediate),
        keys_of(&recipe, StageKind::Intermediate)
    );
    let base_target: HashSet<&str> = keys_of(&base, StageKind::Target).into_iter().collect();
    assert!(
        keys_of(&recipe, StageKind::Target)
            .iter()
            .all(|k| !base_target.contains(k))
    );
    // Another intermediate recipe: every key below an intermediate job changes (parent keys),
    // the baseline chain's keys stay.
    let inter = plan_of(&COMMAND.replace(
        "[recipe.intermediate]\nepochs = 1",
        "[recipe.intermediate]\nepochs = 3",
    ));
    let none_targets = |p: &Plan| -> Vec<String> {
        p.jobs
            .iter()
            .filter(|j| j.spec.kind == StageKind::Target && j.parent.is_none())
            .map(|j| j.key.clone())
            .collect()
    };
    assert_eq!(none_targets(&base), none_targets(&inter));
    let chained = |p: &Plan| -> Vec<String> {
        p.jobs
            .iter()
            .filter(|j| j.spec.kind == StageKind::Target && j.parent.is_some())
            .map(|j| j.key.clone())
            .collect()
    };
    assert!(
        chained(&base)
            .iter()
            .zip(chained(&inter))
            .all(|(a, b)| *a != b)
    );
    // A new seed adds jobs and keeps the old ones.
    let seeds = plan_of(&COMMAND.replace("seeds = [1, 2]", "seeds = [1, 2, 3]"));
    let seed_keys: HashSet<&str> = seeds.jobs.iter().map(|j| j.key.as_str()).collect();
    assert!(base.jobs.iter().all(|j| seed_keys.contains(j.key.as_str())));
}

#[test]
fn plans_are_deterministic() {
    assert_eq!(plan_of(COMMAND), plan_of(COMMAND));
}

#[test]
fn plan_reports_grid_errors() {
    let e = plan("mine.toml", "[sweep]\nname = 1\n", None, None).unwrap_err();
    assert!(matches!(e, GridError::Toml { .. }));
    assert!(e.to_string().starts_with("mine.toml:2:8: "), "{e}");
}

#[test]
fn oversized_grids_are_refused() {
    let text = design_grid(0).replace(
        "seeds = [1, 2, 3]",
        &format!(
            "seeds = [{}]",
            (0..20_000)
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    );
    let e = plan("grid.toml", &text, None, None).unwrap_err();
    assert!(e.to_string().contains("split the grid"), "{e}");
}

/// A grid that trains the built-in demo intermediate task into its own target task.
const OWN_TARGET: &str = r#"catalog = ["shared.toml"]

[sweep]
name = "own"
seeds = [1]
[models]
m = "models/m"
[grid]
intermediate = ["none", "demo-sentiment", "shared-task"]
target = ["reviews"]
languages = "all"

[tasks.reviews]
role = "target"
domain = "sentiment"
head = "classification"
metric = "accuracy"
languages = ["en", "de"]
labels = ["neg", "pos"]
english_train = ["shared-task"]

[[tasks.reviews.layout]]
reader = "csv"
columns = { text = "review", label = "stars" }
train = ["train.csv"]
test = ["test-{lang}.csv"]
"#;

const SHARED: &str = r#"[tasks.shared-task]
role = "intermediate"
domain = "sentiment"
head = "classification"
metric = "accuracy"
languages = ["en"]
labels = ["neg", "pos"]
[[tasks.shared-task.layout]]
reader = "tsv"
columns = { text = "t", label = "l" }
train = ["train.tsv"]
"#;

fn plan_own(text: &str, shared: Option<&str>) -> Result<Plan, GridError> {
    let files = |p: &str| {
        (p == "shared.toml")
            .then(|| shared.map(str::to_string))
            .flatten()
    };
    plan_with_catalog(
        "grid.toml",
        text,
        &stilts_tasks::Catalog::builtin(),
        &files,
        &Default::default(),
        MAX_CELLS,
    )
}

#[test]
fn a_grid_brings_its_own_tasks_and_their_definitions_travel_with_the_jobs() {
    let p = plan_own(OWN_TARGET, Some(SHARED)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.axes.languages,
        ["en", "de"],
        "\"all\" from the grid's own task"
    );
    for j in &p.jobs {
        let names: Vec<&str> = j.spec.task_defs.keys().map(String::as_str).collect();
        match (j.spec.kind, j.spec.task.as_str()) {
            (StageKind::Intermediate, "demo-sentiment") => assert!(names.is_empty()),
            (StageKind::Intermediate, "shared-task") => assert_eq!(names, ["shared-task"]),
            (_, "reviews") => assert_eq!(names, ["reviews", "shared-task"]),
            other => panic!("unexpected job {other:?}"),
        }
    }
    let def = &p
        .jobs
        .iter()
        .find(|j| j.spec.task == "reviews")
        .unwrap()
        .spec
        .task_defs["reviews"];
    assert_eq!(def["domain"], "sentiment");
    assert_eq!(def["layout"][0]["columns"]["text"], "review");

    // A changed definition is new work for its jobs, and only for them.
    let changed = OWN_TARGET.replace("domain = \"sentiment\"", "domain = \"reviews\"");
    let q = plan_own(&changed, Some(SHARED)).unwrap();
    let key = |p: &Plan, task: &str, kind| {
        p.jobs
            .iter()
            .find(|j| j.spec.task == task && j.spec.kind == kind)
            .unwrap()
            .key
            .clone()
    };
    assert_ne!(
        key(&p, "reviews", StageKind::Target),
        key(&q, "reviews", StageKind::Target)
    );
    assert_eq!(
        key(&p, "demo-sentiment", StageKind::Intermediate),
        key(&q, "demo-sentiment", StageKind::Intermediate)
    );
    assert_ne!(p.grid_digest, q.grid_digest);
}

/// A multi-task dual encoder declared in the grid as an intermediate task: its jobs carry the
/// mixture and its own components, and it lands in the transfer matrix like any intermediate.
#[test]
fn a_mixture_intermediate_plans_like_any_task() {
    let header = "[sweep]\nname = \"mt\"\nseeds = [1]\n[models]\nm = \"models/m\"\n[grid]\n\
                  intermediate = [\"none\", \"mix\", \"mt_dual\"]\ntarget = [\"lareqa\", \"xnli\"]\n\
                  languages = [\"de\"]\n";
    let text = &format!(
        "{header}{}",
        include_str!("../../tasks/tests/fixtures/mixture_tasks.toml")
    );
    let p = plan_own(text, None).unwrap_or_else(|e| panic!("{e}"));
    let inter = p
        .jobs
        .iter()
        .find(|j| j.spec.kind == StageKind::Intermediate && j.spec.task == "mix")
        .expect("the mixture is an intermediate stage");
    let names: Vec<&str> = inter.spec.task_defs.keys().map(String::as_str).collect();
    assert_eq!(names, ["mix", "tatoeba-de-en"]);
    assert_eq!(inter.spec.task_defs["mix"]["mixture"][0]["weight"], 2.0);
    assert_eq!(
        inter.spec.task_defs["mix"]["mixture"][1]["label"],
        "entailment"
    );
    // Every target gets a cell below the mixture.
    for target in ["lareqa", "xnli"] {
        assert!(
            p.jobs.iter().any(|j| j.spec.kind == StageKind::Target
                && j.spec.task == target
                && j.spec.parent.as_deref() == Some(inter.key.as_str())),
            "{target}"
        );
    }
    let bad = text.replace("task = \"tatoeba-de-en\"", "task = \"tatoeba-de\"");
    let e = plan_own(&bad, None).unwrap_err().to_string();
    let line = 1 + bad
        .lines()
        .position(|l| l == "[[tasks.mix.mixture]]")
        .unwrap();
    assert!(
        e.starts_with(&format!("grid.toml:{line}:"))
            && e.contains("mixture[2].task: unknown task `tatoeba-de`"),
        "{e}"
    );
}

#[test]
fn built_in_tasks_keep_their_keys_and_digest() {
    // No own tasks: the specs and the grid digest serialise as before (no `task_defs`, no
    // `tasks`), so stored sweeps resume.
    let text = "[sweep]\nname = \"b\"\nseeds = [1]\n[models]\nm = \"m\"\n[grid]\n\
                intermediate = [\"none\"]\ntarget = [\"xnli\"]\nlanguages = [\"de\"]\n";
    let a = plan("grid.toml", text, None, None).unwrap();
    let b = plan_own(text, None).unwrap();
    assert_eq!(a.grid_digest, b.grid_digest);
    assert_eq!(a.jobs[0].key, b.jobs[0].key);
    let json = String::from_utf8(crate::key::canonical_json(&a.jobs[0].spec)).unwrap();
    assert!(!json.contains("task_defs"), "{json}");
}

#[test]
fn own_task_errors_name_file_line_and_column() {
    let e = plan_own(OWN_TARGET, None).unwrap_err().to_string();
    assert!(
        e.starts_with("grid.toml:1:12: catalog: cannot read catalog file"),
        "{e}"
    );
    let typo = OWN_TARGET.replace("english_train", "english_trian");
    let e = plan_own(&typo, Some(SHARED)).unwrap_err().to_string();
    assert!(
        e.starts_with("grid.toml:20:1:") && e.contains("english_trian"),
        "{e}"
    );
    let clash = OWN_TARGET.replace("tasks.reviews", "tasks.xnli");
    let e = plan_own(&clash, Some(SHARED)).unwrap_err().to_string();
    assert!(
        e.starts_with("grid.toml:13:8:") && e.contains("already defined"),
        "{e}"
    );
    let shared_typo = SHARED.replace("reader = \"tsv\"", "reader = \"tsvv\"");
    let e = plan_own(OWN_TARGET, Some(&shared_typo))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("shared.toml:9:10:"), "{e}");
}

/// `data_version = "auto"`: each job's key holds the digests of exactly the inputs it reads.
#[test]
fn auto_data_version_gives_new_keys_to_the_jobs_whose_data_changed() {
    let text = "[sweep]\nname = \"d\"\nseeds = [1]\ndata_version = \"auto\"\n[models]\nm = \"x\"\n\
                [grid]\nintermediate = [\"mnli\"]\ntarget = [\"xnli\"]\nlanguages = [\"de\", \"fr\"]\n\
                [evaluate]\nlanguages_per_job = 1\n";
    let digests = |changed: &str| -> std::collections::BTreeMap<String, String> {
        [
            "intermediate/mnli",
            "target/xnli",
            "evaluate/xnli/de",
            "evaluate/xnli/fr",
            "evaluate/xnli/zz",
        ]
        .iter()
        .map(|k| {
            (
                k.to_string(),
                format!("sha256:{}", if *k == changed { "new" } else { "old" }),
            )
        })
        .collect()
    };
    let plan = |d: &std::collections::BTreeMap<String, String>| {
        let none = |_: &str| None;
        plan_with_catalog(
            "grid.toml",
            text,
            &stilts_tasks::Catalog::builtin(),
            &none,
            d,
            MAX_CELLS,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let base = plan(&digests(""));
    assert!(base.replan_on_new_inputs);
    let keys = |p: &Plan| -> Vec<(StageKind, Vec<String>, String)> {
        p.jobs
            .iter()
            .map(|j| (j.spec.kind, j.spec.languages.clone(), j.key.clone()))
            .collect()
    };
    let changed = |what: &str| -> Vec<(StageKind, Vec<String>)> {
        let p = plan(&digests(what));
        assert_eq!(p.jobs.len(), base.jobs.len());
        keys(&base)
            .into_iter()
            .zip(keys(&p))
            .filter(|(a, b)| a.2 != b.2)
            .map(|(a, _)| (a.0, a.1))
            .collect()
    };
    let de = vec!["de".to_string()];
    let fr = vec!["fr".to_string()];
    assert_eq!(
        changed("evaluate/xnli/de"),
        vec![(StageKind::Evaluate, de.clone())]
    );
    assert_eq!(
        changed("target/xnli"),
        vec![
            (StageKind::Target, vec![]),
            (StageKind::Evaluate, de.clone()),
            (StageKind::Evaluate, fr.clone())
        ]
    );
    assert_eq!(changed("intermediate/mnli").len(), 4);
    // A digest the grid does not read changes nothing, not even the sweep's digest.
    assert!(changed("evaluate/xnli/zz").is_empty());
    assert_eq!(
        plan(&digests("evaluate/xnli/zz")).grid_digest,
        base.grid_digest
    );
    assert_ne!(plan(&digests("target/xnli")).grid_digest, base.grid_digest);

    // A missing digest: an error at the data_version line, naming the input.
    let mut missing = digests("");
    missing.remove("evaluate/xnli/fr");
    let none = |_: &str| None;
    let err = plan_with_catalog(
        "grid.toml",
        text,
        &stilts_tasks::Catalog::builtin(),
        &none,
        &missing,
        MAX_CELLS,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("grid.toml:4:") && err.contains("evaluate/xnli/fr"),
        "{err}"
    );
    // Without "auto", digests are ignored.
    let fixed = text.replace("\"auto\"", "\"v1\"");
    let p = plan_with_catalog(
        "grid.toml",
        &fixed,
        &stilts_tasks::Catalog::builtin(),
        &none,
        &digests(""),
        MAX_CELLS,
    )
    .unwrap();
    assert!(!p.replan_on_new_inputs);
    assert!(p.jobs.iter().all(|j| j.spec.data_version == "v1"));
}
