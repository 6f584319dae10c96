//! Turning the typed datasets of `stilts-tasks` into tokenized [`Example`]s.

use stilts_tasks::example::{ChoiceExample, Dataset, Label, PairExample};

use crate::error::{Result, TrainerError};
use crate::heads::HeadKind;
use crate::tokenize::TextTokenizer;
use crate::train::{Example, Target};

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

/// Tokenizes a dataset for a head; `what` names the split in errors.
pub fn examples(
    tok: &TextTokenizer,
    kind: HeadKind,
    data: &Dataset,
    what: &str,
) -> Result<Vec<Example>> {
    let out = match (kind, data) {
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
