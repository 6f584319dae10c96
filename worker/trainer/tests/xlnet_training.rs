//! Fine-tuning XLNet: classification, multiple choice, span QA and tagging heads train on a tiny
//! random XLNet (`tests/oracle/xlnet_numpy.py make`) with the XLNet layout (left padding, the last
//! token as summary, QA gold and token scores shifted by each row's padding). Each task is
//! learnable from its training examples, and the model is scored on those examples after
//! training, token-level heads in one batch of mixed lengths: a wrong summary token or a wrong
//! padding offset fails the test. Needs python3 with numpy and safetensors; skips visibly
//! otherwise.
mod common;

use std::path::Path;

use burn::prelude::*;
use stilts_tasks::example::{QaExample, TaggedSentence};
use stilts_tasks::metrics::squad::QaNormalization;
use stilts_trainer::data::tagged;
use stilts_trainer::evaluate::score_examples;
use stilts_trainer::example::{Example, Target};
use stilts_trainer::heads::HeadKind;
use stilts_trainer::model::Pretrained;
use stilts_trainer::qa::{QaWindows, all_features, qa_metrics};
use stilts_trainer::recipe::TrainConfig;

const NAMES: &[&str] = &["Omar", "Anna", "Peter", "Sara", "Ivan", "Mia"];
const CITIES: &[&str] = &["Oslo", "Paris", "Berlin", "Dublin", "Madrid", "Boston"];

/// Trains a fresh `kind` head for `epochs` in `out`, then the share of the training examples
/// whose highest score is the gold class.
fn fit_accuracy(
    pre: &Pretrained,
    kind: HeadKind,
    data: &[Example],
    (epochs, out): (usize, &Path),
    device: &Device,
) -> f64 {
    let (model, outcome) = common::fit_head(pre, kind, (data, data), &config(epochs, 48), out);
    let scores = score_examples(&model, kind, data, 4, &pre.config, device).unwrap();
    let hits = scores
        .iter()
        .zip(data)
        .filter(|(s, e)| {
            let best = (0..s.len()).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
            matches!(e.target, Target::Class(c) if c == best)
        })
        .count();
    let acc = hits as f64 / data.len() as f64;
    eprintln!(
        "{kind:?}: loss {:.3}, accuracy {acc:.2}",
        outcome.final_loss
    );
    acc
}

fn config(epochs: usize, max_seq_len: usize) -> TrainConfig {
    TrainConfig {
        lr: 3e-3,
        batch_size: 4,
        epochs,
        max_seq_len,
        warmup: 0.0,
        checkpoint_every: 1000,
        seed: 7,
        ..Default::default()
    }
}

#[test]
fn xlnet_classification_multiple_choice_span_qa_and_tagging_train() {
    let Some((_dir, pre)) = common::load_tiny_xlnet(2, 48) else {
        return;
    };
    let device = Device::flex();
    let out = tempfile::tempdir().unwrap();
    let tok = &pre.tokenizer;

    // Classification: does the sentence name a city? Lengths differ, so rows are padded.
    let class: Vec<Example> = (0..24)
        .map(|i| {
            let (name, city) = (NAMES[i % 6], CITIES[(i / 6) % 6]);
            let (text, label) = if i % 2 == 0 {
                (format!("{name} lives in {city}."), 1)
            } else {
                (format!("{name} is {} years old and works.", 20 + i), 0)
            };
            Example {
                id: format!("c{i}"),
                inputs: vec![tok.encode(&text, None).unwrap()],
                target: Target::Class(label),
            }
        })
        .collect();
    let kind = HeadKind::Classification { num_labels: 2 };
    let acc = fit_accuracy(&pre, kind, &class, (8, &out.path().join("class")), &device);
    assert!(acc >= 0.9, "classification accuracy {acc}");

    // Multiple choice: the choice that repeats the question's city, in rotating positions.
    let mc: Vec<Example> = (0..18)
        .map(|i| {
            let city = CITIES[i % 6];
            let others = [CITIES[(i + 1) % 6], CITIES[(i + 3) % 6]];
            let mut choices = vec![others[0], others[1]];
            choices.insert(i % 3, city);
            Example {
                id: format!("m{i}"),
                inputs: choices
                    .iter()
                    .map(|c| {
                        tok.encode(&format!("{} lives in {city}.", NAMES[i % 6]), Some(c))
                            .unwrap()
                    })
                    .collect(),
                target: Target::Class(i % 3),
            }
        })
        .collect();
    let kind = HeadKind::MultipleChoice;
    let acc = fit_accuracy(&pre, kind, &mc, (24, &out.path().join("mc")), &device);
    assert!(acc >= 0.8, "multiple choice accuracy {acc} (chance 0.33)");

    // Span QA: where did someone buy something; the answer's position varies with the names.
    let questions: Vec<QaExample> = (0..24)
        .map(|i| {
            let (name, city) = (NAMES[i % 6], CITIES[(i * 5 + 1) % 6]);
            let filler = ["", "Then ", "Last year "][i % 3];
            let context = format!("{filler}{name} bought {} lamps in {city}.", 2 + i);
            let start = context.find(city).unwrap();
            QaExample {
                id: format!("q{i}"),
                question: format!("Where did {name} buy lamps?"),
                context,
                answers: vec![(city.to_string(), start)],
                context_lang: "en".into(),
            }
        })
        .collect();
    let windows = QaWindows {
        max_len: 48,
        doc_stride: 16,
        max_query_len: 16,
    };
    let qa = all_features(tok, &questions, windows).unwrap();
    assert_eq!(qa.len(), questions.len(), "one window per question");
    let qa_out = out.path().join("qa");
    let (model, outcome) =
        common::fit_head(&pre, HeadKind::SpanQa, (&qa, &qa), &config(15, 48), &qa_out);
    // One batch of every length: shorter windows are padded.
    let scores = score_examples(
        &model,
        HeadKind::SpanQa,
        &qa,
        qa.len(),
        &pre.config,
        &device,
    );
    let (f1, _) = qa_metrics(&qa, &scores.unwrap(), QaNormalization::Squad).unwrap();
    eprintln!("span QA: loss {:.3}, F1 {f1:.1}", outcome.final_loss);
    assert!(f1 >= 80.0, "span QA F1 {f1}");

    // Token classification: names and cities tagged among other words; per-word predictions are
    // read at each word's first sub-token, shifted by the row's left padding.
    let labels: Vec<String> = ["O", "PER", "LOC"].map(String::from).to_vec();
    let sentences: Vec<TaggedSentence> = (0..24)
        .map(|i| {
            let (name, city) = (NAMES[i % 6], CITIES[(i * 5 + 2) % 6]);
            let mut words = vec![name, "lives", "in", city];
            let mut tags = vec!["PER", "O", "O", "LOC"];
            // 0, 2 or 4 leading words: rows of a batch differ in padding.
            let lead = 2 * (i % 3);
            words.splice(
                0..0,
                ["Then", "last", "year", "and"][..lead].iter().copied(),
            );
            tags.splice(0..0, std::iter::repeat_n("O", lead));
            TaggedSentence {
                id: format!("t{i}"),
                tokens: words.iter().map(|w| w.to_string()).collect(),
                tags: Some(tags.iter().map(|t| t.to_string()).collect()),
            }
        })
        .collect();
    let tags: Vec<Example> = sentences
        .iter()
        .enumerate()
        .flat_map(|(i, s)| tagged(tok, i, s, &labels, "tags").unwrap())
        .collect();
    let kind = HeadKind::TokenClassification { num_labels: 3 };
    let (model, outcome) = common::fit_head_with(
        &pre,
        (kind, &labels),
        (&tags, &tags),
        &config(15, 48),
        &out.path().join("tags"),
    );
    // One batch of every length: shorter rows are padded.
    let scores = score_examples(&model, kind, &tags, tags.len(), &pre.config, &device).unwrap();
    let (mut hits, mut words) = (0, 0);
    for (e, s) in tags.iter().zip(&scores) {
        let Target::Tags {
            tags: Some(gold), ..
        } = &e.target
        else {
            panic!("tagged examples carry tags");
        };
        for (w, &g) in gold.iter().enumerate() {
            let v = &s[3 * w..3 * w + 3];
            let best = (0..3).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
            hits += usize::from(best == g);
            words += 1;
        }
    }
    let acc = hits as f64 / words as f64;
    eprintln!("tagging: word accuracy {acc:.2}, dev {:?}", outcome.dev);
    assert!(acc >= 0.95, "tagging accuracy {acc}");
}
