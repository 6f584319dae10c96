//! Python `str` semantics the official scripts rely on: `str.split()` whitespace, `\w` word
//! characters for `re`'s `\b`, and `re.sub(r'\b(w1|w2|…)\b', ' ', s)`.

use unicode_general_category::{GeneralCategory as G, get_general_category};

/// `str.isspace()`: Unicode White_Space plus the ASCII separators U+001C–U+001F.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.split()` with no argument.
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|t| !t.is_empty())
}

/// A character `re` (str patterns) counts as `\w`: `str.isalnum()` or `_`.
/// isalnum = letters (L*) or numeric (Nd, Nl, No).
pub fn is_py_word(c: char) -> bool {
    c == '_'
        || matches!(
            get_general_category(c),
            G::UppercaseLetter
                | G::LowercaseLetter
                | G::TitlecaseLetter
                | G::ModifierLetter
                | G::OtherLetter
                | G::DecimalNumber
                | G::LetterNumber
                | G::OtherNumber
        )
}

/// `re.sub(r'\b(w1|w2|…)\b', ' ', text)`: alternatives tried in the given order at each
/// position, left to right, non-overlapping.
pub fn remove_words(text: &str, words: &[&str]) -> String {
    let chars: Vec<char> = text.chars().collect();
    let alts: Vec<Vec<char>> = words.iter().map(|w| w.chars().collect()).collect();
    let boundary = |i: usize| {
        let before = i > 0 && is_py_word(chars[i - 1]);
        let after = i < chars.len() && is_py_word(chars[i]);
        before != after
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let matched = if boundary(i) {
            alts.iter().find(|alt| {
                let end = i + alt.len();
                end <= chars.len() && chars[i..end] == alt[..] && boundary(end)
            })
        } else {
            None
        };
        match matched {
            Some(alt) if !alt.is_empty() => {
                out.push(' ');
                i += alt.len();
            }
            _ => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// Python 3 `str.lower()`. Rust's `to_lowercase` follows the same Unicode default case mapping
/// (including final sigma).
pub fn py_lower(s: &str) -> String {
    s.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn article_removal_matches_python_re() {
        assert_eq!(
            remove_words("the cat and a dog", &["a", "an", "the"]),
            "  cat and   dog"
        );
        assert_eq!(remove_words("an apple", &["a", "an", "the"]), "  apple");
        assert_eq!(
            remove_words("theatre a_b", &["a", "an", "the"]),
            "theatre a_b"
        );
        assert_eq!(remove_words("a", &["a", "an", "the"]), " ");
    }

    #[test]
    fn split_like_python() {
        assert_eq!(
            py_split(" a\u{a0}b\u{1f}c  ").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }
}
