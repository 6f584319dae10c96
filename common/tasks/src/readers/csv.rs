//! CSV task files (RFC 4180: quoted fields may hold commas, quotes and newlines), read with the
//! `csv` crate. Records carry the 1-based line they start on; blank lines are skipped.

use std::path::Path;

use crate::error::TaskError;

pub fn parse(path: &Path, text: &str) -> Result<Vec<(usize, Vec<String>)>, TaskError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = Vec::new();
    let mut record = ::csv::StringRecord::new();
    // Lines are counted here from byte offsets: the crate's own line count skips the line breaks
    // inside quoted fields and blank lines.
    let bytes = text.as_bytes();
    let (mut counted_to, mut line) = (0, 1);
    let mut line_at = |byte: usize| {
        line += bytes[counted_to..byte]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        counted_to = byte;
        line
    };
    let mut last_start = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                // The crate's start is where it began reading: before the blank lines and the
                // `\n` of a `\r\n` it skipped.
                let from = record
                    .position()
                    .map_or(0, |p| p.byte() as usize)
                    .min(text.len());
                last_start = from
                    + bytes[from..]
                        .iter()
                        .take_while(|&&b| b == b'\n' || b == b'\r')
                        .count();
                records.push((
                    line_at(last_start),
                    record.iter().map(str::to_string).collect(),
                ));
            }
            Err(e) => {
                let at = e.position().map_or(last_start, |p| p.byte() as usize);
                let line = line_at(at.clamp(last_start, text.len()));
                return Err(TaskError::format(path, line, e.to_string()));
            }
        }
    }
    // The crate ends a quoted field left open at the end of the file silently; a truncated file
    // is an error here.
    if let Some((line, _)) = records.last()
        && ends_inside_quotes(&text[last_start..])
    {
        return Err(TaskError::format(path, *line, "unterminated quoted field"));
    }
    Ok(records)
}

/// Whether the last record's text (from its first byte to the end of the file) leaves a quoted
/// field open.
fn ends_inside_quotes(record: &str) -> bool {
    let mut in_quotes = false;
    let mut at_field_start = true;
    let mut chars = record.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_quotes, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
            }
            (true, '"') => in_quotes = false,
            (false, '"') if at_field_start => in_quotes = true,
            (false, ',') => {
                at_field_start = true;
                continue;
            }
            _ => {}
        }
        at_field_start = false;
    }
    in_quotes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields() {
        let text = "a,b\n\"x, \"\"y\"\"\",\"multi\nline\"\r\nlast,\n";
        let r = parse(Path::new("t.csv"), text).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[1],
            (2, vec!["x, \"y\"".to_string(), "multi\nline".to_string()])
        );
        assert_eq!(r[2], (4, vec!["last".to_string(), String::new()]));
    }

    #[test]
    fn blank_lines_are_skipped_and_lines_counted() {
        let text = "h1,h2\n\n1,\"a\nb\"\r\n\r\n2,c";
        let r = parse(Path::new("t.csv"), text).unwrap();
        assert_eq!(
            r,
            vec![
                (1, vec!["h1".to_string(), "h2".to_string()]),
                (3, vec!["1".to_string(), "a\nb".to_string()]),
                (6, vec!["2".to_string(), "c".to_string()]),
            ]
        );
    }

    #[test]
    fn an_unterminated_quote_names_file_and_line() {
        let e = parse(Path::new("t.csv"), "a,b\n1,\"open\nstill open\n").unwrap_err();
        let TaskError::Format {
            path,
            line,
            message,
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!((path.as_path(), *line), (Path::new("t.csv"), 2));
        assert_eq!(message, "unterminated quoted field");
        assert!(parse(Path::new("t.csv"), "a,\"b\"\"\"\n").is_ok());
        assert!(parse(Path::new("t.csv"), "a,b\"c\n").is_ok());
    }
}
