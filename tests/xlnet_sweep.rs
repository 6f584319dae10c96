//! `stilts run` with `model = xlnet`: a tiny random XLNet checkpoint (a local HF directory made
//! by the trainer's NumPy oracle script) fine-tuned for classification (the demo corpus'
//! sentiment task, intermediate stage) and span QA (a synthetic SQuAD-format task the grid
//! brings itself, target stage, evaluated through the evaluate stage). Both must learn.
//! Needs python3 with numpy and safetensors; skips visibly otherwise.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

const NAMES: &[&str] = &[
    "Anna", "Omar", "Peter", "Sara", "Ivan", "Mia", "Leo", "Nina",
];
const CITIES: &[&str] = &[
    "Oslo", "Paris", "Berlin", "Dublin", "Madrid", "Boston", "Denver",
];
const ITEMS: &[&str] = &["lamps", "books", "cups", "chairs", "apples"];

/// Writes the tiny XLNet into `dir`; `false` (after a visible skip notice) without python3,
/// numpy or safetensors.
fn tiny_xlnet(dir: &Path) -> bool {
    let trainer = Path::new(env!("CARGO_MANIFEST_DIR")).join("worker/trainer/tests");
    std::fs::create_dir_all(dir).unwrap();
    let out = Command::new("python3")
        .arg(trainer.join("oracle/xlnet_numpy.py"))
        .arg("make")
        .arg(dir)
        .arg("1")
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) if o.status.code() != Some(3) => panic!(
            "xlnet_numpy.py make failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        _ => {
            eprintln!("skipping: python3 with numpy and safetensors is needed");
            return false;
        }
    }
    std::fs::copy(
        trainer.join("fixtures/xlnet-tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    true
}

/// SQuAD-format questions on one-sentence contexts: where someone bought something, or how many.
fn squad_json(n: usize, seed: usize) -> String {
    let paragraphs: Vec<serde_json::Value> = (0..n)
        .map(|k| {
            let name = NAMES[(3 * k + seed) % NAMES.len()];
            let city = CITIES[(5 * k + 2 * seed) % CITIES.len()];
            let item = ITEMS[(k + seed) % ITEMS.len()];
            let count = (2 + (11 * k + seed) % 29).to_string();
            let context = format!("{name} bought {count} {item} in {city}.");
            let (question, answer) = if k % 2 == 0 {
                (format!("Where did {name} buy {item}?"), city.to_string())
            } else {
                (format!("How many {item} did {name} buy?"), count)
            };
            let start = context.rfind(&answer).unwrap();
            serde_json::json!({ "context": context, "qas": [{
                "id": format!("q{seed}-{k}"), "question": question,
                "answers": [{ "text": answer, "answer_start": start }] }] })
        })
        .collect();
    serde_json::json!({ "version": "1.1", "data": [{ "title": "t", "paragraphs": paragraphs }] })
        .to_string()
}

#[test]
fn tiny_xlnet_sweep_trains_classification_and_span_qa() {
    let dir = temp_dir();
    let model = dir.path().join("tiny-xlnet");
    if !tiny_xlnet(&model) {
        return;
    }
    let data = dir.path().join("data/buy-qa");
    std::fs::create_dir_all(&data).unwrap();
    write(&data, "train.json", &squad_json(400, 1));
    write(&data, "dev.json", &squad_json(40, 2));
    write(&data, "test-en.json", &squad_json(60, 3));
    let grid = format!(
        r#"[sweep]
name  = "xlnet"
seeds = [1]

[models]
xlnet = {model:?}

[grid]
intermediate = ["demo-sentiment"]
target       = ["buy-qa"]
languages    = "all"

[recipe]
lr          = 1e-3
batch_size  = 16
epochs      = 3
max_seq_len = 48
data_dir    = {data:?}

[recipe.target.buy-qa]
max_query_len = 16
epochs        = 10

[tasks.buy-qa]
role      = "target"
domain    = "qa"
head      = "span_qa"
metric    = "squad"
languages = ["en"]

[[tasks.buy-qa.layout]]
reader = "squad_json"
dirs   = ["buy-qa"]
train  = ["train.json"]
dev    = ["dev.json"]
test   = ["test-{{lang}}.json"]

[executor]
kind = "burn"
"#,
        model = model.display().to_string(),
        data = dir.path().join("data").display().to_string(),
    );
    let grid = write(dir.path(), "grid.toml", &grid);
    let state = dir.path().join("state");
    run_grid(&grid, &state, None);

    // Classification: the intermediate job's selection on demo-sentiment's English dev set.
    let mut sentiment = None;
    for entry in std::fs::read_dir(state.join("artifacts")).unwrap() {
        let metrics = entry.unwrap().path().join("metrics.json");
        let Ok(text) = std::fs::read_to_string(&metrics) else {
            continue;
        };
        let m: serde_json::Value = serde_json::from_str(&text).unwrap();
        if let Some(phases) = m["train"]["phases"].as_array() {
            for p in phases.iter().filter(|p| p["task"] == "demo-sentiment") {
                sentiment = p["dev"]["accuracy"].as_f64();
            }
        }
    }
    let sentiment = sentiment.expect("the intermediate job reports demo-sentiment dev accuracy");
    eprintln!("demo-sentiment dev accuracy {sentiment:.1}");
    assert!(
        sentiment >= 70.0,
        "classification did not learn: {sentiment}"
    );

    // Span QA: the evaluate job's F1 on the test questions.
    let csv = results_csv_text(&state);
    let f1: f64 = csv
        .lines()
        .find(|l| l.starts_with("xlnet,demo-sentiment,buy-qa,en,1,f1,"))
        .unwrap_or_else(|| panic!("no buy-qa F1 in\n{csv}"))
        .split(',')
        .nth(6) // model,intermediate,target,language,seed,metric,value,…
        .and_then(|v| v.parse().ok())
        .unwrap();
    eprintln!("buy-qa test F1 {f1:.1}");
    assert!(f1 >= 60.0, "span QA did not learn: F1 {f1}\n{csv}");
}
