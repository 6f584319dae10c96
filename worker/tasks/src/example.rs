//! Typed examples, the interface between readers and the trainer. Every reader returns one of
//! these; the trainer never sees a file format.

/// A single sentence or a sentence pair with a class index or a real-valued target.
#[derive(Debug, Clone, PartialEq)]
pub struct PairExample {
    /// Stable id within its split (line number or the dataset's own id).
    pub id: String,
    pub text_a: String,
    pub text_b: Option<String>,
    pub label: Label,
}

/// Gold label of a classification/regression example.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// Index into the task's label list.
    Class(usize),
    /// Regression target (STS-B).
    Score(f32),
    /// Unlabelled (test files whose labels the XTREME download removed).
    None,
}

/// A multiple-choice example: each choice is scored as the pair (`context`, choice text).
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceExample {
    pub id: String,
    /// First segment, already templated (e.g. XCOPA's "{premise} What was the {question}?").
    pub context: String,
    pub choices: Vec<String>,
    /// Index of the correct choice.
    pub label: Option<usize>,
}

/// An extractive QA example (SQuAD format).
#[derive(Debug, Clone, PartialEq)]
pub struct QaExample {
    pub id: String,
    pub question: String,
    pub context: String,
    /// Gold answers: text and character offset into `context`.
    pub answers: Vec<(String, usize)>,
    /// Language of the context (decides MLQA normalisation).
    pub context_lang: String,
}

/// One sentence of a tagging task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedSentence {
    pub id: String,
    pub tokens: Vec<String>,
    /// One tag per token; `None` for unlabelled test files.
    pub tags: Option<Vec<String>>,
}

/// One side of a retrieval task: sentences in order, and for each the index of its gold match
/// in the other side (Tatoeba's permutation).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalSet {
    pub queries: Vec<String>,
    pub candidates: Vec<String>,
    /// `gold[i]` = index into `candidates` of query `i`'s match.
    pub gold: Vec<usize>,
}

/// A loaded split of any task.
#[derive(Debug, Clone, PartialEq)]
pub enum Dataset {
    Pairs(Vec<PairExample>),
    Choices(Vec<ChoiceExample>),
    Qa(Vec<QaExample>),
    Tagging(Vec<TaggedSentence>),
    Retrieval(RetrievalSet),
}

impl Dataset {
    pub fn len(&self) -> usize {
        match self {
            Dataset::Pairs(v) => v.len(),
            Dataset::Choices(v) => v.len(),
            Dataset::Qa(v) => v.len(),
            Dataset::Tagging(v) => v.len(),
            Dataset::Retrieval(r) => r.queries.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
