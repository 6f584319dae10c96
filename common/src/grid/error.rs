//! Grid errors: every one names the file, line and column it is about, and says how to fix it.

use std::fmt;
use std::ops::Range;

use thiserror::Error;

use crate::job::StageKind;
use crate::template::TemplateError;

/// A position in a grid file: `grid.toml:12:5`. Line and column count from 1; the column counts
/// characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl Location {
    /// The location of byte `offset` of `text` (clamped to the text's end).
    pub fn at(file: &str, text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            file: file.to_string(),
            line: 1 + before.bytes().filter(|&b| b == b'\n').count() as u32,
            column: 1 + before[line_start..].chars().count() as u32,
        }
    }

    /// The location of a span's start.
    pub fn of(file: &str, text: &str, span: &Range<usize>) -> Self {
        Self::at(file, text, span.start)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// What is wrong with a grid file. Display: `grid.toml:12:5: [grid] intermediate: duplicate value
/// "mnli"`, then an indented `hint:` line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GridError {
    /// Malformed TOML, an unknown key, a wrong type or a missing required key (toml's message).
    #[error("{at}: {message}\n  hint: {hint}")]
    Toml {
        at: Location,
        message: String,
        hint: &'static str,
    },

    /// An axis (or the `[models]` table) with no values.
    #[error("{at}: {path}: empty\n  hint: list at least one value")]
    EmptyAxis { at: Location, path: String },

    /// The same value twice in one axis.
    #[error(
        "{at}: {path}: duplicate value {value:?}\n  hint: remove the repeated value; axis values must be unique"
    )]
    DuplicateValue {
        at: Location,
        path: String,
        value: String,
    },

    /// A command template that does not parse (unknown placeholder, unbalanced brace). `at` is
    /// the position of the offending character inside the string.
    #[error(
        "{at}: [executor] {stage}: {source}\n  hint: use a placeholder from the list; write {{{{ and }}}} for literal braces"
    )]
    Template {
        at: Location,
        stage: StageKind,
        #[source]
        source: TemplateError,
    },

    /// A template placeholder `{recipe.NAME}` that some job of the stage has no value for.
    #[error(
        "{at}: [executor] {stage}: placeholder {{recipe.{name}}} has no value for task {task:?}\n  hint: add `{name} = ...` to [recipe], [recipe.{stage}] or [recipe.{stage}.{task}]"
    )]
    MissingRecipeValue {
        at: Location,
        stage: StageKind,
        task: String,
        name: String,
    },

    /// The command executor lacks the template for a stage the grid needs.
    #[error(
        "{at}: [executor]: no `{stage}` command template, and the grid has {stage} jobs\n  hint: add `{stage} = \"your command ...\"` to [executor]"
    )]
    MissingTemplate { at: Location, stage: StageKind },

    /// A model whose source names nothing.
    #[error(
        "{at}: [models] {model}: empty model source\n  hint: give a HuggingFace directory or hub id, e.g. {model} = \"bert-base-multilingual-cased\""
    )]
    EmptyModelSource { at: Location, model: String },

    /// A timeout that is not a positive duration.
    #[error(
        "{at}: [executor] timeout: {value:?} {reason}\n  hint: write numbers with units ms, s, m, h, d: \"90s\", \"30m\", \"1.5h\", \"1h30m\""
    )]
    BadTimeout {
        at: Location,
        value: String,
        reason: &'static str,
    },

    /// A task name the catalog does not know.
    #[error(
        "{at}: {path}: unknown task {task:?}\n  hint: check the spelling, or add the task to the task catalog"
    )]
    UnknownTask {
        at: Location,
        path: String,
        task: String,
    },

    /// `languages = "all"` without a task catalog to resolve it.
    #[error(
        "{at}: {path}: \"all\" needs the task catalog, which is not available here\n  hint: list the languages, e.g. languages = [\"en\", \"de\", \"sw\"]"
    )]
    LanguagesNeedCatalog { at: Location, path: String },

    /// Anything else that is invalid, with its own hint.
    #[error("{at}: {path}: {message}\n  hint: {hint}")]
    Invalid {
        at: Location,
        path: String,
        message: String,
        hint: String,
    },
}

impl GridError {
    /// Where in the file the error is.
    pub fn location(&self) -> &Location {
        match self {
            Self::Toml { at, .. }
            | Self::EmptyAxis { at, .. }
            | Self::DuplicateValue { at, .. }
            | Self::Template { at, .. }
            | Self::MissingRecipeValue { at, .. }
            | Self::MissingTemplate { at, .. }
            | Self::EmptyModelSource { at, .. }
            | Self::BadTimeout { at, .. }
            | Self::UnknownTask { at, .. }
            | Self::LanguagesNeedCatalog { at, .. }
            | Self::Invalid { at, .. } => at,
        }
    }

    /// Converts toml's error: its first message line, positioned at its span.
    pub(crate) fn from_toml(file: &str, text: &str, e: &toml::de::Error) -> Self {
        let at = Location::at(file, text, e.span().map_or(0, |s| s.start));
        let message = e.message().trim().to_string();
        let hint = if message.contains("unknown field") {
            "remove the key or fix its spelling; the message lists the keys allowed here"
        } else if message.contains("missing field") {
            "add the missing key; see the grid reference in common/src/grid.rs"
        } else if message.contains("invalid type") {
            "give the value the type the message expects"
        } else {
            "fix the TOML syntax at this position"
        };
        Self::Toml { at, message, hint }
    }
}

/// Byte offset in the file of byte `decoded` of the string value whose TOML literal (quotes
/// included) spans `span`. Follows escapes, so positions inside a template are exact even with
/// `\"` or `\u00e9` before them; stops at the literal's end.
pub(crate) fn offset_in_string(text: &str, span: &Range<usize>, decoded: usize) -> usize {
    let Some(raw) = text.get(span.clone()) else {
        return span.start;
    };
    let (delim, basic) = if raw.starts_with("\"\"\"") {
        (3, true)
    } else if raw.starts_with("'''") {
        (3, false)
    } else if raw.starts_with('"') {
        (1, true)
    } else if raw.starts_with('\'') {
        (1, false)
    } else {
        return span.start;
    };
    let mut i = delim;
    if delim == 3 {
        // A newline right after the opening delimiter is not part of the value.
        if raw[i..].starts_with("\r\n") {
            i += 2;
        } else if raw[i..].starts_with('\n') {
            i += 1;
        }
    }
    let end = raw.len().saturating_sub(delim);
    let mut out = 0;
    while i < end && out < decoded {
        let c = raw[i..].chars().next().unwrap_or(' ');
        if basic && c == '\\' {
            let next = raw[i + 1..].chars().next().unwrap_or(' ');
            let (raw_len, out_len) = match next {
                'u' => (6, decode_hex(&raw[i + 2..], 4)),
                'U' => (10, decode_hex(&raw[i + 2..], 8)),
                'x' => (4, decode_hex(&raw[i + 2..], 2)),
                ' ' | '\t' | '\r' | '\n' => {
                    // Line-ending backslash: the whitespace and newlines after it vanish.
                    let rest = &raw[i + 1..end];
                    let ws = rest.len() - rest.trim_start().len();
                    (1 + ws, 0)
                }
                _ => (2, 1),
            };
            i += raw_len;
            out += out_len;
        } else {
            i += c.len_utf8();
            out += c.len_utf8();
        }
    }
    span.start + i.min(raw.len())
}

fn decode_hex(s: &str, digits: usize) -> usize {
    s.get(..digits)
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .and_then(char::from_u32)
        .map_or(1, char::len_utf8)
}
