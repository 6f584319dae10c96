//! A small RFC 4180 CSV parser (quoted fields may hold commas, quotes and newlines), enough for
//! Cosmos QA. Records carry the 1-based line they start on.

use std::path::Path;

use crate::error::TaskError;

pub fn parse(path: &Path, text: &str) -> Result<Vec<(usize, Vec<String>)>, TaskError> {
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut start_line = 1;
    let mut chars = text.chars().peekable();
    let mut record_has_content = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                in_quotes = true;
                record_has_content = true;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                record_has_content = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if record_has_content || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    records.push((start_line, std::mem::take(&mut fields)));
                }
                record_has_content = false;
                line += 1;
                start_line = line;
            }
            _ => {
                field.push(c);
                record_has_content = true;
            }
        }
    }
    if in_quotes {
        return Err(TaskError::format(
            path,
            start_line,
            "unterminated quoted field",
        ));
    }
    if record_has_content || !field.is_empty() {
        fields.push(field);
        records.push((start_line, fields));
    }
    Ok(records)
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
}
