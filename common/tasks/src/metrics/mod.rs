//! Metrics identical to the official scripts (XTREME-R.md §4). Functions return fractions in
//! [0, 1] unless their name says otherwise; [`crate::score`] and [`aggregate`] report ×100 as
//! `evaluate.py` does.

pub mod aggregate;
pub mod classification;
pub mod mlqa;
pub mod pytext;
pub mod ranking;
pub mod seqeval;
pub mod squad;

pub use aggregate::{TaskScore, task_score};
pub use classification::{accuracy, pearson, spearman};
pub use ranking::{average_precision_at_k, mean_average_precision_at_k};
pub use seqeval::{SeqevalScores, seqeval_scores};
pub use squad::{QaScores, qa_scores};
