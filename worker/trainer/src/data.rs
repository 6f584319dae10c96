//! Turning the typed datasets of `stilts-tasks` into tokenized [`Example`]s.

use stilts_tasks::example::{ChoiceExample, Dataset, Label, PairExample, TaggedSentence};

use crate::error::{Result, TrainerError};
use crate::example::{Example, Target};
use crate::heads::HeadKind;
use crate::qa::{QaWindows, all_features};
use crate::tokenize::{Encoded, TextTokenizer};

fn pair(tok: &TextTokenizer, e: &PairExample) -> Result<Example> {
    Ok(Example {
        id: e.id.clone(),
        inputs: vec![tok.encode(&e.text_a, e.text_b.as_deref())?],
        target: match e.label {
            Label::Class(c) => Target::Class(c),
            Label::Score(s) => Target::Score(s),
            Label::None => Target::Unlabelled,
        },
    })
}

fn choice(tok: &TextTokenizer, e: &ChoiceExample) -> Result<Example> {
    Ok(Example {
        id: e.id.clone(),
        inputs: e
            .choices
            .iter()
            .map(|c| tok.encode(&e.context, Some(c)))
            .collect::<Result<Vec<_>>>()?,
        target: e.label.map_or(Target::Unlabelled, Target::Class),
    })
}

/// Splits a tagged sentence into segments that fit the tokenizer's window (special tokens
/// included), never cutting a word; each word's first sub-token carries its tag. A word longer
/// than a whole window keeps only its first sub-tokens. Every sentence yields at least one
/// segment, so predictions re-merge to exactly one tag per word.
pub fn tagged(
    tok: &TextTokenizer,
    sentence: usize,
    s: &TaggedSentence,
    labels: &[String],
    what: &str,
) -> Result<Vec<Example>> {
    let (pre_pieces, post_pieces) = tok.special_pieces()?;
    let ids_of = |v: &[(u32, u32)]| v.iter().map(|p| p.0).collect::<Vec<u32>>();
    let (pre, post) = (ids_of(&pre_pieces), ids_of(&post_pieces));
    let budget = tok.max_len().saturating_sub(pre.len() + post.len()).max(1);
    let gold = match &s.tags {
        None => None,
        Some(tags) => {
            if tags.len() != s.tokens.len() {
                return Err(TrainerError::Data(format!(
                    "{what}: sentence {} has {} words but {} tags",
                    s.id,
                    s.tokens.len(),
                    tags.len()
                )));
            }
            let idx = tags.iter().map(|t| {
                labels.iter().position(|l| l == t).ok_or_else(|| {
                    TrainerError::Data(format!(
                        "{what}: sentence {}: tag `{t}` is not in the task's labels",
                        s.id
                    ))
                })
            });
            Some(idx.collect::<Result<Vec<_>>>()?)
        }
    };
    let pieces = tok.word_pieces(&s.tokens)?;
    let mut out = Vec::new();
    let mut word = 0;
    loop {
        let (mut ids, mut starts) = (pre.clone(), Vec::new());
        let first = word;
        while word < pieces.len() {
            let p = &pieces[word];
            let used = ids.len() - pre.len();
            if !starts.is_empty() && used + p.len() > budget {
                break;
            }
            starts.push(ids.len());
            ids.extend(p.iter().take(budget - used));
            word += 1;
        }
        ids.extend(&post);
        let n = ids.len();
        out.push(Example {
            id: format!("{}#{}", s.id, out.len()),
            inputs: vec![Encoded {
                ids,
                type_ids: pre_pieces
                    .iter()
                    .map(|p| p.1)
                    .chain(std::iter::repeat_n(0, n - pre.len() - post.len()))
                    .chain(post_pieces.iter().map(|p| p.1))
                    .collect(),
                offsets: vec![(0, 0); n],
            }],
            target: Target::Tags {
                sentence,
                starts,
                tags: gold.as_ref().map(|g| g[first..word].to_vec()),
            },
        });
        if word >= pieces.len() {
            return Ok(out);
        }
    }
}

/// What turning a dataset into examples needs besides the tokenizer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Featurize<'a> {
    /// The task's label list (tag names for token classification).
    pub labels: &'a [String],
    /// QA windows.
    pub windows: QaWindows,
}

/// Tokenizes a dataset for a head; `what` names the split in errors.
pub fn examples(
    tok: &TextTokenizer,
    kind: HeadKind,
    data: &Dataset,
    opts: &Featurize,
    what: &str,
) -> Result<Vec<Example>> {
    let labels = opts.labels;
    let out = match (kind, data) {
        (HeadKind::DualEncoder { .. }, data) => {
            crate::dual::pair_examples(tok, data, 0, None, what)?
        }
        (HeadKind::SpanQa, Dataset::Qa(v)) => all_features(tok, v, opts.windows)?,
        (HeadKind::TokenClassification { .. }, Dataset::Tagging(v)) => {
            let mut out = Vec::new();
            for (i, s) in v.iter().enumerate() {
                out.extend(tagged(tok, i, s, labels, what)?);
            }
            out
        }
        (HeadKind::Classification { .. } | HeadKind::Regression, Dataset::Pairs(v)) => {
            v.iter().map(|e| pair(tok, e)).collect::<Result<Vec<_>>>()?
        }
        (HeadKind::MultipleChoice, Dataset::Choices(v)) => {
            let out = v
                .iter()
                .map(|e| choice(tok, e))
                .collect::<Result<Vec<_>>>()?;
            if let Some(first) = out.first()
                && let Some(bad) = out.iter().find(|e| e.inputs.len() != first.inputs.len())
            {
                return Err(TrainerError::Data(format!(
                    "{what}: example {} has {} choices, example {} has {}",
                    first.id,
                    first.inputs.len(),
                    bad.id,
                    bad.inputs.len()
                )));
            }
            out
        }
        (kind, _) => {
            return Err(TrainerError::Data(format!(
                "{what}: the reader returned a dataset that does not fit a {kind:?} head"
            )));
        }
    };
    if let HeadKind::Classification { num_labels } = kind
        && let Some(bad) = out
            .iter()
            .find(|e| matches!(e.target, Target::Class(c) if c >= num_labels))
    {
        return Err(TrainerError::Data(format!(
            "{what}: example {} has label {:?} but the task has {num_labels} labels",
            bad.id, bad.target
        )));
    }
    Ok(out)
}
