//! MLQA's language-aware answer normalisation (XTREME-R.md §4.2): Unicode punctuation (every
//! `P*` category plus ASCII punctuation), per-language articles, whitespace tokenisation except
//! zh (mixed segmentation: each CJK char U+4E00–U+9FA5 and each punctuation mark is a token).
//! The language is the **context** language; other languages are an error, as in the script.

use unicode_general_category::{GeneralCategory as G, get_general_category};

use super::pytext::{py_lower, py_split, remove_words};
use super::squad::ASCII_PUNCT;

/// A language the MLQA script does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MLQA normalisation has no language `{0}` (en es de ar hi vi zh)")]
pub struct UnknownLanguage(pub String);

/// Every Unicode punctuation character (`P*`) and ASCII punctuation.
pub fn is_punct(c: char) -> bool {
    ASCII_PUNCT.contains(c)
        || matches!(
            get_general_category(c),
            G::ConnectorPunctuation
                | G::DashPunctuation
                | G::OpenPunctuation
                | G::ClosePunctuation
                | G::InitialPunctuation
                | G::FinalPunctuation
                | G::OtherPunctuation
        )
}

fn remove_articles(text: &str, lang: &str) -> Result<String, UnknownLanguage> {
    Ok(match lang {
        "en" => remove_words(text, &["a", "an", "the"]),
        "es" => remove_words(
            text,
            &["un", "una", "unos", "unas", "el", "la", "los", "las"],
        ),
        "vi" => remove_words(text, &["của", "là", "cái", "chiếc", "những"]),
        "de" => remove_words(
            text,
            &[
                "ein", "eine", "einen", "einem", "eines", "einer", "der", "die", "das", "den",
                "dem", "des",
            ],
        ),
        // The script's pattern `\sال^|ال` can only match through its second branch: every "ال"
        // becomes a space, also inside words.
        "ar" => text.replace("ال", " "),
        "hi" | "zh" => text.to_string(),
        other => return Err(UnknownLanguage(other.to_string())),
    })
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fa5}').contains(&c)
}

fn mixed_segmentation(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars() {
        if is_cjk(c) || is_punct(c) {
            out.extend(py_split(&run).map(str::to_string));
            run.clear();
            out.push(c.to_string());
        } else {
            run.push(c);
        }
    }
    out.extend(py_split(&run).map(str::to_string));
    out
}

/// `white_space_fix(remove_articles(remove_punc(lower(s)), lang), lang)`.
pub fn normalize_answer(s: &str, lang: &str) -> Result<String, UnknownLanguage> {
    let lower = py_lower(s);
    let no_punc: String = lower.chars().filter(|c| !is_punct(*c)).collect();
    let no_articles = remove_articles(&no_punc, lang)?;
    let tokens: Vec<String> = match lang {
        "zh" => mixed_segmentation(&no_articles),
        _ => py_split(&no_articles).map(str::to_string).collect(),
    };
    Ok(tokens
        .into_iter()
        .filter(|t| py_split(t).next().is_some())
        .collect::<Vec<_>>()
        .join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_language() {
        assert_eq!(
            normalize_answer("Die Stadt «Berlin»", "de").unwrap(),
            "stadt berlin"
        );
        assert_eq!(normalize_answer("北京，中国", "zh").unwrap(), "北 京 中 国");
        assert_eq!(normalize_answer("الكتاب", "ar").unwrap(), "كتاب");
        assert!(normalize_answer("x", "fr").is_err());
    }
}
