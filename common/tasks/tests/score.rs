//! `score` on real gold files: official keys ×100, placeholder refusal, bad input errors.

mod common;

use std::path::{Path, PathBuf};

use stilts_tasks::{Catalog, Dataset, Split, load, score, score_checked};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn classification_accuracy_and_placeholders() {
    let Some(root) = common::data_root() else {
        return;
    };
    let c = Catalog::builtin();
    let dir = tempfile::tempdir().unwrap();
    let gold = root.join("xnli/xtreme_format/dev-de.tsv");
    let Dataset::Pairs(ex) = load(c.get("xnli").unwrap(), Split::Dev, "de", &root).unwrap() else {
        panic!()
    };
    let labels = &c.get("xnli").unwrap().labels;
    // right on every example but the first 50 (predict a wrong label there)
    let lines: Vec<String> = ex
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let stilts_tasks::Label::Class(k) = e.label else {
                panic!()
            };
            labels[if i < 50 { (k + 1) % 3 } else { k }].clone()
        })
        .collect();
    let pred = write(dir.path(), "test-de.tsv", &(lines.join("\n") + "\n"));
    let v = score(&c, "xnli", "de", &pred, &gold).unwrap();
    assert_eq!(v["accuracy"].as_f64().unwrap(), 75.0);
    // XTREME's test copy has no labels
    let err = score(
        &c,
        "xnli",
        "de",
        &pred,
        &root.join("xnli/xtreme_format/test-de.tsv"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no labels") && err.contains("XNLI-1.0"),
        "{err}"
    );
    // too few lines
    let short = write(dir.path(), "short.tsv", &(lines[..10].join("\n") + "\n"));
    let err = score(&c, "xnli", "de", &short, &gold)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("short.tsv:11:") && err.contains("10 predictions but 200"),
        "{err}"
    );
    let bad = write(dir.path(), "bad.tsv", "neutral\nmaybe\n");
    let err = score(&c, "xnli", "de", &bad, &gold)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.tsv:2:") && err.contains("unknown label"),
        "{err}"
    );
    // the labelled original XNLI-1.0 test file, language-filtered
    let orig = root.join("xnli/original_format/XNLI-1.0/xnli.test.tsv");
    let Dataset::Pairs(t) = load(c.get("xnli").unwrap(), Split::Test, "ar", &root).unwrap() else {
        panic!()
    };
    let ok: Vec<String> = t
        .iter()
        .map(|e| match e.label {
            stilts_tasks::Label::Class(k) => labels[k].clone(),
            _ => panic!(),
        })
        .collect();
    let p = write(dir.path(), "ar.tsv", &(ok.join("\n") + "\n"));
    assert_eq!(
        score(&c, "xnli", "ar", &p, &orig).unwrap()["accuracy"]
            .as_f64()
            .unwrap(),
        100.0
    );
}

#[test]
fn xcopa_jsonl() {
    let Some(root) = common::data_root() else {
        return;
    };
    let c = Catalog::builtin();
    let dir = tempfile::tempdir().unwrap();
    let gold = root.join("xcopa/data/et/val.et.jsonl");
    let Dataset::Choices(ex) = load(c.get("xcopa").unwrap(), Split::Dev, "et", &root).unwrap()
    else {
        panic!()
    };
    let rows: Vec<String> = ex
        .iter()
        .map(|e| format!("{{\"idx\": {}, \"label\": {}}}", e.id, e.label.unwrap()))
        .collect();
    let pred = write(dir.path(), "p.jsonl", &(rows.join("\n") + "\n"));
    assert_eq!(
        score(&c, "xcopa", "et", &pred, &gold).unwrap()["accuracy"]
            .as_f64()
            .unwrap(),
        100.0
    );
    let zeros: Vec<String> = ex
        .iter()
        .map(|e| format!("{{\"idx\": {}, \"label\": 0}}", e.id))
        .collect();
    let p0 = write(dir.path(), "zeros.jsonl", &(zeros.join("\n") + "\n"));
    let acc = score(&c, "xcopa", "et", &p0, &gold).unwrap()["accuracy"]
        .as_f64()
        .unwrap();
    let expected =
        100.0 * ex.iter().filter(|e| e.label == Some(0)).count() as f64 / ex.len() as f64;
    assert!((acc - expected).abs() < 1e-9, "{acc} vs {expected}");
    // XTREME's test copy: all labels 0
    let placeholder = write(dir.path(), "test-et.jsonl", &zeros.iter().map(|z| z.replace("\"idx\"", "\"premise\": \"p\", \"choice1\": \"a\", \"choice2\": \"b\", \"question\": \"cause\", \"idx\"")).collect::<Vec<_>>().join("\n"));
    let err = score(&c, "xcopa", "et", &p0, &placeholder)
        .unwrap_err()
        .to_string();
    assert!(err.contains("placeholder"), "{err}");
}

#[test]
fn qa_json_predictions() {
    let Some(root) = common::data_root() else {
        return;
    };
    let c = Catalog::builtin();
    let dir = tempfile::tempdir().unwrap();
    let gold = root.join("xquad/xquad.de.json");
    let Dataset::Qa(qs) = load(c.get("xquad").unwrap(), Split::Test, "de", &root).unwrap() else {
        panic!()
    };
    let mut preds = serde_json::Map::new();
    for (i, q) in qs.iter().enumerate() {
        // half exactly right, half empty
        let a = if i % 2 == 0 {
            q.answers[0].0.clone()
        } else {
            String::new()
        };
        preds.insert(q.id.clone(), a.into());
    }
    let pred = write(
        dir.path(),
        "p.json",
        &serde_json::to_string_pretty(&preds).unwrap(),
    );
    let v = score(&c, "xquad", "de", &pred, &gold).unwrap();
    let expected = 100.0 * qs.len().div_ceil(2) as f64 / qs.len() as f64;
    assert!(
        (v["exact_match"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{v}"
    );
    assert!((v["f1"].as_f64().unwrap() - expected).abs() < 1e-9, "{v}");
    // Like the official scripts: a missing prediction scores 0 with a counted warning, an id
    // that is no question is ignored with a warning, any answer string is scored.
    let first = qs[0].id.clone();
    preds.remove(&first);
    preds.insert("not-a-question".into(), "x".into());
    let p2 = write(
        dir.path(),
        "missing.json",
        &serde_json::to_string_pretty(&preds).unwrap(),
    );
    let s = score_checked(&c, "xquad", "de", &p2, &gold).unwrap();
    // The first question was answered right: one exact match fewer.
    let expected = 100.0 * (qs.len().div_ceil(2) - 1) as f64 / qs.len() as f64;
    let em = s.metrics["exact_match"].as_f64().unwrap();
    assert!((em - expected).abs() < 1e-9, "{:?}", s);
    assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    assert!(s.warnings[0].starts_with("1 ids of") && s.warnings[0].contains("not-a-question"));
    assert!(
        s.warnings[1].starts_with(&format!(
            "1 of {} questions have no prediction and score 0, e.g. `{first}`",
            qs.len()
        )) && s.warnings[1].contains("xquad.de.json:"),
        "{:?}",
        s.warnings
    );
    preds.remove("not-a-question");
    preds.insert(first.clone(), "zzz nicht im Kontext qqq".into());
    let p4 = write(
        dir.path(),
        "span.json",
        &serde_json::to_string_pretty(&preds).unwrap(),
    );
    let s = score_checked(&c, "xquad", "de", &p4, &gold).unwrap();
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(
        s.warnings[0].starts_with("1 answers are not a span of their context"),
        "{:?}",
        s.warnings
    );
    assert!((s.metrics["exact_match"].as_f64().unwrap() - expected).abs() < 1e-9);
    // TyDiQA: XTREME's blanked dev copy is refused
    let blank = root.join(
        "tydiqa_goldp/xtreme_format/tydiqa-goldp-v1.1-dev_UNLABELED/tydiqa.goldp.sw.dev.json",
    );
    let err = score(&c, "tydiqa", "sw", &pred, &blank)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("every gold answer is empty") && err.contains("tydiqa-goldp-v1.1-dev"),
        "{err}"
    );
}

#[test]
fn tagging_predictions() {
    let Some(root) = common::data_root() else {
        return;
    };
    let c = Catalog::builtin();
    let dir = tempfile::tempdir().unwrap();
    let gold = root.join("panx/xtreme_format/dev-de.tsv");
    let Dataset::Tagging(s) = load(c.get("panx").unwrap(), Split::Dev, "de", &root).unwrap() else {
        panic!()
    };
    let mut text = String::new();
    for sent in &s {
        for t in sent.tags.as_ref().unwrap() {
            text.push_str(t);
            text.push('\n');
        }
        text.push('\n');
    }
    let pred = write(dir.path(), "p.tsv", &text);
    let v = score(&c, "panx", "de", &pred, &gold).unwrap();
    assert_eq!(v["f1"].as_f64().unwrap(), 100.0);
    // all O: recall 0 → F1 0
    let all_o: String = s
        .iter()
        .map(|x| "O\n".repeat(x.tokens.len()) + "\n")
        .collect();
    let p0 = write(dir.path(), "o.tsv", &all_o);
    assert_eq!(
        score(&c, "panx", "de", &p0, &gold).unwrap()["f1"]
            .as_f64()
            .unwrap(),
        0.0
    );
    // a sentence one label short
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(0);
    let p1 = write(dir.path(), "short.tsv", &(lines.join("\n") + "\n"));
    let err = score(&c, "panx", "de", &p1, &gold).unwrap_err().to_string();
    assert!(
        err.contains("short.tsv:1:") && err.contains("sentence 1 has 4 labels"),
        "{err}"
    );
    // XTREME's test copy holds tokens only
    let err = score(
        &c,
        "panx",
        "de",
        &pred,
        &root.join("panx/xtreme_format/test-de.tsv"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no tags"), "{err}");
    // UD-POS against CoNLL-U gold
    let conllu = root.join("udpos/UD_English-EWT/en_ewt-ud-dev.conllu");
    let Dataset::Tagging(u) = load(c.get("udpos").unwrap(), Split::Dev, "en", &root).unwrap()
    else {
        panic!()
    };
    let text: String = u
        .iter()
        .map(|x| x.tags.as_ref().unwrap().join("\n") + "\n\n")
        .collect();
    let p2 = write(dir.path(), "pos.tsv", &text);
    assert_eq!(
        score(&c, "udpos", "en", &p2, &conllu).unwrap()["f1"]
            .as_f64()
            .unwrap(),
        100.0
    );
}

#[test]
fn tatoeba_and_mewslix() {
    let Some(root) = common::data_root() else {
        return;
    };
    let c = Catalog::builtin();
    let dir = tempfile::tempdir().unwrap();
    let gold = root.join("tatoeba/v1/tatoeba.deu-eng.deu");
    let idx: String = (0..200)
        .map(|i| format!("{}\n", if i < 150 { i } else { 0 }))
        .collect();
    let pred = write(dir.path(), "t.tsv", &idx);
    assert_eq!(
        score(&c, "tatoeba", "de", &pred, &gold).unwrap()["accuracy"]
            .as_f64()
            .unwrap(),
        75.0
    );
    let mgold = root.join("mewslix/mewsli_x/testdata/example_mentions_no_text.jsonl");
    let mentions = stilts_tasks::readers::read_mewslix_mentions(&mgold, Some("ar")).unwrap();
    assert_eq!(mentions.len(), 2);
    let p = serde_json::json!({
        mentions[0].example_id.clone(): ["Q1", mentions[0].entity_id.clone()],
        mentions[1].example_id.clone(): [mentions[1].entity_id.clone()],
    });
    let pm = write(dir.path(), "m.json", &p.to_string());
    let v = score(&c, "mewslix", "ar", &pm, &mgold).unwrap();
    assert_eq!(v["map@20"].as_f64().unwrap(), 75.0, "(1/2 + 1) / 2");
}

#[test]
fn mlqa_uses_language_aware_normalisation() {
    let Some(root) = common::data_root() else {
        return;
    };
    let c = Catalog::builtin();
    let dir = tempfile::tempdir().unwrap();
    // No MLQA files in the shared data: lay out XQuAD-de (same SQuAD format) as an MLQA dev file.
    let mlqa_dir = dir.path().join("mlqa/MLQA_V1/dev");
    std::fs::create_dir_all(&mlqa_dir).unwrap();
    let gold = mlqa_dir.join("dev-context-de-question-de.json");
    std::fs::copy(root.join("xquad/xquad.de.json"), &gold).unwrap();
    let Dataset::Qa(qs) = load(c.get("mlqa").unwrap(), Split::Dev, "de", dir.path()).unwrap()
    else {
        panic!()
    };
    // prediction = the word before the answer + the answer (a span of the context)
    let preds: serde_json::Map<String, serde_json::Value> = qs
        .iter()
        .map(|q| {
            let (text, start) = &q.answers[0];
            let chars: Vec<char> = q.context.chars().collect();
            let mut s = *start;
            while s > 0 && chars[s - 1] == ' ' {
                s -= 1;
            }
            while s > 0 && chars[s - 1] != ' ' {
                s -= 1;
            }
            let end = start + text.chars().count();
            (
                q.id.clone(),
                chars[s..end].iter().collect::<String>().into(),
            )
        })
        .collect();
    let pred = write(
        dir.path(),
        "p.json",
        &serde_json::Value::Object(preds).to_string(),
    );
    let mlqa = score(&c, "mlqa", "de", &pred, &gold).unwrap();
    let squad = score(&c, "xquad", "de", &pred, &root.join("xquad/xquad.de.json")).unwrap();
    let (m, s) = (
        mlqa["exact_match"].as_f64().unwrap(),
        squad["exact_match"].as_f64().unwrap(),
    );
    eprintln!("preceding word + answer: MLQA-de EM {m:.2} vs SQuAD EM {s:.2}");
    assert!(
        m > s + 5.0,
        "MLQA drops German articles (der/die/das…), SQuAD does not: {mlqa} {squad}"
    );
}

/// Noisy predictions for `qs`: missing, exact, non-span, re-cased with punctuation, truncated,
/// empty, a context substring, another question's answer — in turn — plus two stray ids.
fn noisy_predictions(qs: &[stilts_tasks::QaExample]) -> serde_json::Map<String, serde_json::Value> {
    let mut preds = serde_json::Map::new();
    for (i, q) in qs.iter().enumerate() {
        let answer = &q.answers[0].0;
        let other = &qs[(i * 7 + 3) % qs.len()].answers[0].0;
        let words: Vec<&str> = answer.split_whitespace().collect();
        let chars: Vec<char> = q.context.chars().collect();
        let start = (i * 13) % chars.len().max(1);
        let p = match i % 8 {
            0 => continue,
            1 => answer.clone(),
            2 => format!("zzq {answer} qqz"),
            3 => format!("The {}!", answer.to_uppercase()),
            4 => words[..words.len().div_ceil(2)].join(" "),
            5 => String::new(),
            6 => chars[start..(start + 20).min(chars.len())].iter().collect(),
            _ => other.clone(),
        };
        preds.insert(q.id.clone(), p.into());
    }
    preds.insert("stray-1".into(), "x".into());
    preds.insert("stray-2".into(), "y".into());
    preds
}

/// `stilts score` on noisy SQuAD / XQuAD / MLQA predictions gives the official scripts' EM and
/// F1 (tests/oracle/qa_file_oracle.py, the file-level logic of the official scripts) to 1e-3.
#[test]
fn noisy_qa_files_score_like_the_official_scripts() {
    let Some(root) = common::data_root() else {
        return;
    };
    if common::python_with("unicodedata").is_none() {
        return;
    }
    let c = Catalog::builtin();
    let dir = tempfile::tempdir().unwrap();
    let mlqa_dir = dir.path().join("mlqa/MLQA_V1/dev");
    std::fs::create_dir_all(&mlqa_dir).unwrap();
    // (task, lang, gold, oracle mode, split, data root); MLQA files are XQuAD laid out as MLQA
    // dev files (the shared data has no MLQA).
    let mut files = vec![(
        "squad",
        "en".to_string(),
        root.join("squad_v1.1/dev-v1.1.json"),
        "squad",
        Split::Dev,
        root.clone(),
    )];
    for lang in ["de", "zh", "ar", "th"] {
        let gold = root.join(format!("xquad/xquad.{lang}.json"));
        files.push((
            "xquad",
            lang.into(),
            gold,
            "squad",
            Split::Test,
            root.clone(),
        ));
    }
    for lang in ["es", "hi", "vi", "zh"] {
        let gold = mlqa_dir.join(format!("dev-context-{lang}-question-{lang}.json"));
        std::fs::copy(root.join(format!("xquad/xquad.{lang}.json")), &gold).unwrap();
        let base = dir.path().to_path_buf();
        files.push(("mlqa", lang.into(), gold, "mlqa", Split::Dev, base));
    }
    let mut scored = 0;
    for (task, lang, gold, mode, split, base) in &files {
        let Dataset::Qa(qs) = load(c.get(task).unwrap(), *split, lang, base).unwrap() else {
            panic!("{} reads as QA", gold.display())
        };
        let preds = noisy_predictions(&qs);
        let pred = write(
            dir.path(),
            &format!("{task}-{lang}.json"),
            &serde_json::Value::Object(preds).to_string(),
        );
        let s = score_checked(&c, task, lang, &pred, gold).unwrap();
        let out = common::run_python(
            &common::oracle("qa_file_oracle.py"),
            &[mode, lang, gold.to_str().unwrap(), pred.to_str().unwrap()],
            "",
        );
        let want: serde_json::Value = serde_json::from_str(&out).unwrap();
        for key in ["exact_match", "f1"] {
            let (got, exp) = (
                s.metrics[key].as_f64().unwrap(),
                want[key].as_f64().unwrap(),
            );
            assert!(
                (got - exp).abs() < 1e-3,
                "{task} {lang} {key}: stilts {got}, official logic {exp}"
            );
        }
        let unanswered = want["unanswered"].as_u64().unwrap() as usize;
        assert_eq!(unanswered, qs.len().div_ceil(8));
        let text = s.warnings.join("\n");
        assert!(
            text.contains(&format!(
                "{unanswered} of {} questions have no prediction",
                qs.len()
            )),
            "{text}"
        );
        assert!(
            text.contains("2 ids of") && text.contains("not a span of their context"),
            "{text}"
        );
        eprintln!(
            "{task} {lang}: EM {:.3} F1 {:.3} = official logic; {} questions, {unanswered} unanswered",
            s.metrics["exact_match"].as_f64().unwrap(),
            s.metrics["f1"].as_f64().unwrap(),
            qs.len()
        );
        scored += 1;
    }
    assert_eq!(scored, files.len());
}
