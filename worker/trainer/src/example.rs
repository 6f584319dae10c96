//! What the trainer's stages pass between them: one tokenized example with its gold target,
//! the padded batch of some examples, and the scores a model gives them.

use std::sync::Arc;

use crate::batch::TokenBatch;
use crate::encoder::EncoderConfig;
use crate::tokenize::Encoded;

/// Head outputs per example, in the examples' order: class logits, choice scores, one value,
/// (token classification) the tag logits at each word's first sub-token, concatenated
/// (`words × num_labels`), or (span QA) the start logits then the end logits of every position.
pub type Scores = Vec<Vec<f32>>;

/// Gold target of one example.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Class(usize),
    Score(f32),
    /// One segment of a tagged sentence: the sentence's index in the dataset (segments of a
    /// sentence are consecutive examples), the position of each word's first sub-token in this
    /// segment, and the words' gold tag indices (`None` when the file is unlabelled).
    Tags {
        sentence: usize,
        starts: Vec<usize>,
        tags: Option<Vec<usize>>,
    },
    /// One window of an extractive QA question.
    Span(Box<SpanTarget>),
    /// A (query, candidate) pair of a dual encoder; `group`: its task in a multi-task mixture.
    Pair {
        group: usize,
    },
    Unlabelled,
}

impl Target {
    /// Whether the example carries a gold answer.
    pub fn is_labelled(&self) -> bool {
        match self {
            Self::Span(t) => !t.answers.is_empty(),
            other => !matches!(other, Self::Unlabelled | Self::Tags { tags: None, .. }),
        }
    }
}

/// One tokenized example: one sequence, or one per choice for multiple choice.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub id: String,
    pub inputs: Vec<Encoded>,
    pub target: Target,
}

impl Example {
    pub fn max_len(&self) -> usize {
        self.inputs.iter().map(Encoded::len).max().unwrap_or(0)
    }
}

/// What one window of a question carries.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanTarget {
    /// Index of the question in its dataset; windows of a question are consecutive examples.
    pub question: usize,
    pub qid: String,
    pub context: Arc<str>,
    pub context_lang: String,
    /// Gold answer texts (empty when unlabelled).
    pub answers: Vec<String>,
    /// Gold `(start, end)` positions of the first answer in this window, the summary token's
    /// `(c, c)` when it is not inside; `None` when unlabelled.
    pub gold: Option<(usize, usize)>,
    /// Per position: the token's character span in the context (context tokens only).
    pub chars: Vec<Option<(usize, usize)>>,
    /// Per position: whether this window is the token's max-context window.
    pub max_context: Vec<bool>,
}

/// Builds the padded batch of some examples (choices of one example adjacent).
pub fn batch_of(examples: &[&Example], cfg: &EncoderConfig) -> TokenBatch {
    let seqs: Vec<&Encoded> = examples.iter().flat_map(|e| e.inputs.iter()).collect();
    TokenBatch::new(&seqs, cfg)
}
