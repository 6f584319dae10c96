//! SQuAD v1.1 and MLQA EM/F1 against an independent python oracle (tests/oracle/qa_oracle.py)
//! on real XQuAD answers (12 languages) with perturbed predictions.

mod common;

use serde_json::{Value, json};
use stilts_tasks::metrics::squad::{QaNormalization, question_scores};
use stilts_tasks::{Catalog, Dataset, Split, load};

fn variants(answer: &str, other: &str, context: &str, i: usize) -> Vec<String> {
    let words: Vec<&str> = answer.split_whitespace().collect();
    let mut v = vec![
        answer.to_string(),
        format!("the {answer}."),
        format!("«{answer}»,"),
        answer.to_uppercase(),
        words[..words.len().div_ceil(2)].join(" "),
        other.to_string(),
        format!("{answer} {other}"),
        String::new(),
    ];
    let chars: Vec<char> = context.chars().collect();
    let start = (i * 7) % chars.len().max(1);
    v.push(chars[start..(start + 12).min(chars.len())].iter().collect());
    for article in ["el ", "die ", "ال", "những "] {
        v.push(format!("{article}{answer}"));
    }
    v
}

#[test]
fn squad_and_mlqa_match_oracle() {
    let Some(root) = common::data_root() else {
        return;
    };
    if common::python_with("unicodedata").is_none() {
        return;
    }
    let catalog = Catalog::builtin();
    let xquad = catalog.get("xquad").unwrap();
    let mut cases = Vec::new();
    for lang in &xquad.languages {
        let Dataset::Qa(qs) = load(xquad, Split::Test, lang, &root).unwrap() else {
            panic!()
        };
        for (i, q) in qs.iter().enumerate().step_by(3) {
            let gold: Vec<String> = q.answers.iter().map(|a| a.0.clone()).collect();
            let other = &qs[(i + 1) % qs.len()].answers[0].0;
            for pred in variants(&gold[0], other, &q.context, i) {
                cases.push(("squad", lang.clone(), pred.clone(), gold.clone()));
                if ["en", "es", "de", "ar", "hi", "vi", "zh"].contains(&lang.as_str()) {
                    cases.push(("mlqa", lang.clone(), pred, gold.clone()));
                }
            }
        }
    }
    let input = Value::Array(
        cases
            .iter()
            .map(|(m, l, p, a)| json!({"mode": m, "lang": l, "prediction": p, "answers": a}))
            .collect(),
    );
    let out = common::run_python(&common::oracle("qa_oracle.py"), &[], &input.to_string());
    let expected: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(expected.len(), cases.len());
    let (mut em_hits, mut mlqa) = (0, 0);
    for ((mode, lang, pred, gold), e) in cases.iter().zip(&expected) {
        let norm = if *mode == "squad" {
            QaNormalization::Squad
        } else {
            QaNormalization::Mlqa
        };
        let (em, f1) = question_scores(norm, pred, gold, lang).unwrap();
        assert_eq!(
            em,
            e["em"].as_f64().unwrap(),
            "{mode} {lang} EM: `{pred}` vs {gold:?}"
        );
        assert!(
            (f1 - e["f1"].as_f64().unwrap()).abs() < 1e-12,
            "{mode} {lang} F1: `{pred}` vs {gold:?}: {f1} vs {}",
            e["f1"]
        );
        em_hits += em as usize;
        mlqa += (*mode == "mlqa") as usize;
    }
    eprintln!(
        "QA oracle: {} cases ({mlqa} MLQA), {em_hits} exact matches, all equal",
        cases.len()
    );
}
