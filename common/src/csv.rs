//! The one CSV writer of stilts (results, report, curve exports): RFC 4180 fields, `\n` line
//! ends. Task files are read with the `csv` crate (`stilts-tasks`).

/// `s` as one CSV field: quoted (with `"` doubled) when it holds a comma, a quote, `\n` or `\r`;
/// as is otherwise.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One CSV line (fields quoted by [`field`], joined by commas, ending in `\n`).
pub fn row<S: AsRef<str>>(fields: impl IntoIterator<Item = S>) -> String {
    let mut line = String::new();
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&field(f.as_ref()));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(field("plain text"), "plain text");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("carriage\rreturn"), "\"carriage\rreturn\"");
        assert_eq!(field(""), "");
        assert_eq!(row(["a", "b,c", ""]), "a,\"b,c\",\n");
    }
}
