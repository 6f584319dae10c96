//! Text from the coordinator or a worker (failure messages, reasons, names from older stores)
//! shown on a terminal: control characters are written as escapes, so a message can never move
//! the cursor, recolour the terminal or set its title.

use std::borrow::Cow;

/// `s` with every control character (C0, DEL, C1) written as `\u{…}`; unchanged when it has none.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    format!("\\u{{{:x}}}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(printable("exit status 2"), Cow::Borrowed(_)));
        assert_eq!(
            printable("\u{1b}]0;pwned\u{7}\u{1b}[31mred\ndone\u{9b}"),
            "\\u{1b}]0;pwned\\u{7}\\u{1b}[31mred\\u{a}done\\u{9b}"
        );
    }
}
