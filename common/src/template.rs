//! Command templates of the `command` executor: `python train.py --task {task} --out {output_dir}`.
//! Placeholders are checked when the grid is planned (an unknown one is an error naming it) and
//! filled in on the worker. `{{` and `}}` stand for literal braces.

use std::collections::BTreeMap;

use thiserror::Error;

/// Every placeholder a template may use, with what it stands for (shown in help and errors).
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("model", "model name from [models]"),
    (
        "model_source",
        "HuggingFace directory or hub id of the model",
    ),
    (
        "task",
        "the stage's task (intermediate task, or target task)",
    ),
    (
        "intermediate",
        "the chain's intermediate task (\"none\" for the baseline)",
    ),
    (
        "target",
        "the chain's target task (empty for intermediate jobs)",
    ),
    ("languages", "evaluate jobs: comma-separated languages"),
    (
        "languages_space",
        "evaluate jobs: space-separated languages",
    ),
    ("seed", "random seed"),
    (
        "input_dir",
        "parent job's artifact directory (base model source for first-stage jobs)",
    ),
    (
        "output_dir",
        "this job's artifact directory (kept across attempts: resume from it)",
    ),
    ("metrics_file", "where the job must write its metrics JSON"),
    ("job_key", "the job's content hash"),
    ("attempt", "attempt number, from 1"),
    (
        "recipe.NAME",
        "a hyperparameter from [recipe], e.g. {recipe.lr}",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{name}}} at column {column}; known: {known}")]
    Unknown {
        name: String,
        column: usize,
        known: String,
    },
    #[error("unclosed '{{' at column {column} (write '{{{{' for a literal brace)")]
    Unclosed { column: usize },
    #[error("stray '}}' at column {column} (write '}}}}' for a literal brace)")]
    Stray { column: usize },
    #[error("placeholder {{{name}}} has no value for this job")]
    Missing { name: String },
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn is_known(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix("recipe.") {
        return !rest.is_empty();
    }
    PLACEHOLDERS.iter().any(|(p, _)| *p == name)
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let bytes = template.as_bytes();
    let (mut i, mut text_start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                pieces.push(Piece::Text(&template[text_start..=i]));
                i += 2;
                text_start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                pieces.push(Piece::Text(&template[text_start..=i]));
                i += 2;
                text_start = i;
            }
            b'{' => {
                let end = template[i + 1..]
                    .find('}')
                    .ok_or(TemplateError::Unclosed { column: i + 1 })?;
                pieces.push(Piece::Text(&template[text_start..i]));
                let name = template[i + 1..i + 1 + end].trim();
                if !is_known(name) {
                    let known: Vec<&str> = PLACEHOLDERS.iter().map(|(p, _)| *p).collect();
                    return Err(TemplateError::Unknown {
                        name: name.to_string(),
                        column: i + 1,
                        known: known.join(", "),
                    });
                }
                pieces.push(Piece::Var(name));
                i += end + 2;
                text_start = i;
            }
            b'}' => return Err(TemplateError::Stray { column: i + 1 }),
            _ => i += 1,
        }
    }
    pieces.push(Piece::Text(&template[text_start..]));
    Ok(pieces)
}

/// Checks a template's syntax and placeholder names.
pub fn validate(template: &str) -> Result<(), TemplateError> {
    parse(template).map(|_| ())
}

/// Fills a template. `vars` maps placeholder names (including `recipe.X`) to values.
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    for piece in parse(template)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(name) => {
                out.push_str(vars.get(name).ok_or_else(|| TemplateError::Missing {
                    name: name.to_string(),
                })?)
            }
        }
    }
    Ok(out)
}

/// `s` as one POSIX shell word: unchanged when it holds only characters no shell treats
/// specially (`A-Z a-z 0-9 _ @ % + = : , . / -`), else in single quotes (a `'` inside becomes
/// `'\''`). The command executor quotes every substituted value with it, so grid values never
/// reach `sh -c` as shell syntax.
pub fn shell_quote(s: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(format!("'{}'", s.replace('\'', "'\\''")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("/tmp/a-b_c.d/e,f=1"), "/tmp/a-b_c.d/e,f=1");
        assert_eq!(shell_quote("x; touch /tmp/f"), "'x; touch /tmp/f'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(id)"), "'$(id)'");
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_placeholders_and_escapes() {
        let v = vars(&[("task", "xnli"), ("seed", "3"), ("recipe.lr", "1e-5")]);
        let s = render("t --task {task} --seed {seed} --lr {recipe.lr} '{{x}}'", &v).unwrap();
        assert_eq!(s, "t --task xnli --seed 3 --lr 1e-5 '{x}'");
    }

    #[test]
    fn unknown_placeholder_is_named_with_column() {
        let e = validate("python x.py {modle}").unwrap_err();
        assert!(
            matches!(e, TemplateError::Unknown { ref name, column: 13, .. } if name == "modle")
        );
        assert!(e.to_string().contains("{modle}"));
    }

    #[test]
    fn unbalanced_braces_are_errors() {
        assert_eq!(
            validate("a {task").unwrap_err(),
            TemplateError::Unclosed { column: 3 }
        );
        assert_eq!(
            validate("a } b").unwrap_err(),
            TemplateError::Stray { column: 3 }
        );
    }

    #[test]
    fn missing_value_is_an_error() {
        let e = render("{input_dir}", &vars(&[])).unwrap_err();
        assert_eq!(
            e,
            TemplateError::Missing {
                name: "input_dir".into()
            }
        );
    }
}
