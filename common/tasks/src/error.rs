//! Error types of this crate. Every error that comes from a file names the file and, where it
//! is known, the 1-based line.

use std::path::PathBuf;

/// Errors while building the catalog from TOML.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: task `{task}`: {message}")]
    Invalid {
        file: String,
        task: String,
        message: String,
    },
    #[error("cannot read catalog file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Errors while loading a dataset split.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A malformed line or record (wrong column count, unknown label, bad JSON, …).
    #[error("{}:{line}: {message}", path.display())]
    Format {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No layout of the task has a file for this split and language under the data root.
    #[error("task `{task}`: no {split} file for language `{lang}` under {}; looked for: {tried}", root.display())]
    NotFound {
        task: String,
        split: String,
        lang: String,
        root: PathBuf,
        tried: String,
    },
    /// The task does not list this language (or the split does not exist for it).
    #[error("task `{task}`: {message}")]
    Unsupported { task: String, message: String },
}

impl TaskError {
    pub(crate) fn format(path: &std::path::Path, line: usize, message: impl Into<String>) -> Self {
        TaskError::Format {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        TaskError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Errors of [`crate::score`].
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("unknown task `{0}`")]
    UnknownTask(String),
    /// The prediction file is malformed or does not match the gold (ids, counts).
    #[error("{}:{line}: {message}", path.display())]
    Predictions {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The gold file holds XTREME's placeholder labels instead of the real ones.
    #[error("{}: {message}", path.display())]
    PlaceholderGold { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Gold { path: PathBuf, message: String },
    #[error(transparent)]
    Task(#[from] TaskError),
}
