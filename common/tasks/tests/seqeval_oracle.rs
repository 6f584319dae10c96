//! seqeval F1 against seqeval==1.2.2 (python3) on random tag sequences and on real UD-POS /
//! PAN-X gold with perturbed predictions.

mod common;

use serde_json::{Value, json};
use stilts_tasks::metrics::seqeval_scores;
use stilts_tasks::{Catalog, Dataset, Split, load};

/// Deterministic xorshift generator (no rand dependency needed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const POS: &[&str] = &[
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
];
const NER: &[&str] = &[
    "O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "E-LOC", "S-PER",
];

type Case = (Vec<Vec<String>>, Vec<Vec<String>>);

fn perturb(rng: &mut Rng, gold: &[Vec<String>], tags: &[&str], rate: u64) -> Vec<Vec<String>> {
    gold.iter()
        .map(|s| {
            s.iter()
                .map(|t| {
                    if rng.next() % 100 < rate {
                        rng.pick(tags).to_string()
                    } else {
                        t.clone()
                    }
                })
                .collect()
        })
        .collect()
}

fn random_cases(rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for i in 0..200 {
        let tags = if i % 2 == 0 { POS } else { NER };
        let gold: Vec<Vec<String>> = (0..1 + rng.next() % 6)
            .map(|_| {
                (0..1 + rng.next() % 9)
                    .map(|_| rng.pick(tags).to_string())
                    .collect()
            })
            .collect();
        let pred = perturb(rng, &gold, tags, 10 + (i % 5) * 20);
        cases.push((gold, pred));
    }
    cases
}

fn real_cases(rng: &mut Rng) -> Vec<Case> {
    let Some(root) = common::data_root() else {
        return Vec::new();
    };
    let catalog = Catalog::builtin();
    let mut cases = Vec::new();
    for (task, lang, tags) in [
        ("udpos", "en", POS),
        ("udpos", "de", POS),
        ("panx", "en", NER),
        ("panx", "sw", NER),
    ] {
        let split = if lang == "en" {
            Split::Dev
        } else {
            Split::Test
        };
        let split = if task == "panx" { Split::Dev } else { split };
        let Dataset::Tagging(s) = load(catalog.get(task).unwrap(), split, lang, &root).unwrap()
        else {
            panic!()
        };
        let gold: Vec<Vec<String>> = s.into_iter().map(|s| s.tags.unwrap()).collect();
        for rate in [0, 5, 20, 60] {
            let pred = perturb(rng, &gold, tags, rate);
            cases.push((gold.clone(), pred));
        }
    }
    cases
}

#[test]
fn matches_seqeval_1_2_2() {
    if common::python_with("seqeval").is_none() {
        return;
    }
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut cases = random_cases(&mut rng);
    let n_real = {
        let real = real_cases(&mut rng);
        let n = real.len();
        cases.extend(real);
        n
    };
    // hand-picked quirks
    let v = |s: &str| vec![s.split(' ').map(str::to_string).collect::<Vec<_>>()];
    for (t, p) in [
        ("NOUN NOUN VERB PUNCT", "NOUN VERB VERB PUNCT"),
        ("CCONJ SCONJ", "CCONJ CCONJ"),
        ("NOUN CCONJ NOUN", "NOUN SCONJ NOUN"),
        ("B-LOC O", "I-LOC O"),
        ("X X", "X NOUN"),
    ] {
        cases.push((v(t), v(p)));
    }
    let input = Value::Array(
        cases
            .iter()
            .map(|(t, p)| json!({"y_true": t, "y_pred": p}))
            .collect(),
    );
    let out = common::run_python(
        &common::oracle("seqeval_oracle.py"),
        &[],
        &input.to_string(),
    );
    let expected: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut max_diff: f64 = 0.0;
    for ((t, p), e) in cases.iter().zip(&expected) {
        let ours = seqeval_scores(t, p).unwrap();
        for (k, v) in [
            ("precision", ours.precision),
            ("recall", ours.recall),
            ("f1", ours.f1),
        ] {
            let diff = (v - e[k].as_f64().unwrap()).abs();
            max_diff = max_diff.max(diff);
            assert!(
                diff < 1e-12,
                "{k}: ours {v} vs seqeval {} for {t:?} / {p:?}",
                e[k]
            );
        }
    }
    eprintln!(
        "seqeval 1.2.2 oracle: {} cases ({n_real} on real UD-POS/PAN-X gold), max |diff| = {max_diff:e}",
        cases.len()
    );
}
