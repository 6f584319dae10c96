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

/// A query of an answer-retrieval pool: a question in one language (LAReQA), or an entity mention
/// (Mewsli-X).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolQuery {
    /// The question id (shared by the parallel questions of every language), or the mention's
    /// `example_id`.
    pub id: String,
    /// The question, or the mention's surface text.
    pub question: String,
    /// Second segment of the query's input: the sentence holding a Mewsli-X mention (empty when
    /// the file has no article text, and for LAReQA).
    pub context: String,
    pub lang: String,
}

/// A candidate of an answer-retrieval pool: one sentence with the paragraph it comes from
/// (LAReQA encodes "sentence + context"), or an entity's title with its description (Mewsli-X).
/// A dual encoder reads `sentence` as the first segment and a non-empty `context` as the second.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolCandidate {
    /// What predictions name: the candidate's index in the pool (LAReQA) or its QID (Mewsli-X).
    pub id: String,
    pub sentence: String,
    pub context: String,
    pub lang: String,
}

/// LAReQA / XQuAD-R: queries of one language against the multilingual pool of answer sentences;
/// Mewsli-X: mentions of one language against the entity candidate set; Mewsli-X training pairs
/// (`wikipedia_pairs-*.jsonl`): query `i`'s one gold is its own entity.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerPool {
    pub queries: Vec<PoolQuery>,
    pub candidates: Vec<PoolCandidate>,
    /// `gold[i]` = indices into `candidates` of every correct answer of query `i`
    /// (one per pool language; 11 in the full XQuAD-R pool).
    pub gold: Vec<Vec<usize>>,
}

/// A loaded split of any task.
#[derive(Debug, Clone, PartialEq)]
pub enum Dataset {
    Pairs(Vec<PairExample>),
    Choices(Vec<ChoiceExample>),
    Qa(Vec<QaExample>),
    Tagging(Vec<TaggedSentence>),
    Retrieval(RetrievalSet),
    /// Language-agnostic retrieval (LAReQA, Mewsli-X): one or more gold candidates per query.
    AnswerPool(AnswerPool),
}

impl Dataset {
    pub fn len(&self) -> usize {
        match self {
            Dataset::Pairs(v) => v.len(),
            Dataset::Choices(v) => v.len(),
            Dataset::Qa(v) => v.len(),
            Dataset::Tagging(v) => v.len(),
            Dataset::Retrieval(r) => r.queries.len(),
            Dataset::AnswerPool(p) => p.queries.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
