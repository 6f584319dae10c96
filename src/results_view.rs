//! Rendering result rows as a table (one block per target × metric, languages as columns),
//! CSV or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use stilts_proto::v1::ResultRow;

use crate::cli::Format;

pub fn render(rows: &[ResultRow], format: Format) -> String {
    match format {
        Format::Table => table(rows),
        Format::Csv => csv(rows),
        Format::Json => json(rows),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(rows: &[ResultRow]) -> String {
    let mut out = String::from("model,intermediate,target,language,seed,metric,value,job_key\n");
    for r in rows {
        let fields = [&r.model, &r.intermediate, &r.target, &r.language];
        let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        let _ = writeln!(
            out,
            "{},{},{},{},{}",
            fields.join(","),
            r.seed,
            csv_field(&r.metric),
            r.value,
            r.job_key
        );
    }
    out
}

fn json(rows: &[ResultRow]) -> String {
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "model": r.model, "intermediate": r.intermediate, "target": r.target,
                "language": r.language, "seed": r.seed, "metric": r.metric, "value": r.value,
                "job_key": r.job_key,
            })
        })
        .collect();
    serde_json::to_string_pretty(&values).unwrap_or_default() + "\n"
}

/// One block per (target, metric): rows = model / intermediate / seed, columns = languages, plus
/// the mean over languages and over non-English languages. A row missing some of the block's
/// languages shows `-` there, and its means — over the languages present only — carry `*` with
/// a note under the block, so a partial average never passes for a full one.
fn table(rows: &[ResultRow]) -> String {
    if rows.is_empty() {
        return "no results yet\n".to_string();
    }
    type RowKey = (String, String, u64);
    let mut blocks: BTreeMap<(String, String), BTreeMap<RowKey, BTreeMap<String, f64>>> =
        BTreeMap::new();
    for r in rows {
        blocks
            .entry((r.target.clone(), r.metric.clone()))
            .or_default()
            .entry((r.model.clone(), r.intermediate.clone(), r.seed))
            .or_default()
            .insert(r.language.clone(), r.value);
    }
    let mut out = String::new();
    for ((target, metric), lines) in blocks {
        let mut partial = 0;
        let langs: BTreeSet<&String> = lines.values().flat_map(|m| m.keys()).collect();
        let mut header = vec!["model".to_string(), "intermediate".into(), "seed".into()];
        header.extend(langs.iter().map(|l| l.to_string()));
        header.extend(["avg".to_string(), "avg¬en".to_string()]);
        let mut grid = vec![header];
        for ((model, inter, seed), vals) in &lines {
            let mut line = vec![model.clone(), inter.clone(), seed.to_string()];
            line.extend(
                langs
                    .iter()
                    .map(|l| vals.get(*l).map_or("-".into(), |v| format!("{v:.2}"))),
            );
            let incomplete = vals.len() < langs.len();
            partial += usize::from(incomplete);
            let mark = if incomplete { "*" } else { "" };
            let mean = |it: Vec<f64>| {
                if it.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.2}{mark}", it.iter().sum::<f64>() / it.len() as f64)
                }
            };
            line.push(mean(vals.values().copied().collect()));
            line.push(mean(
                vals.iter()
                    .filter(|(l, _)| l.as_str() != "en")
                    .map(|(_, v)| *v)
                    .collect(),
            ));
            grid.push(line);
        }
        let _ = writeln!(out, "\n{target} · {metric}");
        out.push_str(&align(&grid));
        if partial > 0 {
            let _ = writeln!(
                out,
                "  * partial: {partial} row(s) miss languages (`-`); their averages cover the \
                 languages present only"
            );
        }
    }
    out
}

fn align(grid: &[Vec<String>]) -> String {
    let cols = grid.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            grid.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in grid.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let pad = widths[c].saturating_sub(s.chars().count());
                if c < 3 {
                    format!("{s}{}", " ".repeat(pad))
                } else {
                    format!("{}{s}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(out, "  {}", cells.join("  "));
        if i == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
            let _ = writeln!(out, "  {}", "─".repeat(total));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(inter: &str, lang: &str, v: f64) -> ResultRow {
        ResultRow {
            model: "m".into(),
            intermediate: inter.into(),
            target: "xnli".into(),
            language: lang.into(),
            seed: 1,
            metric: "accuracy".into(),
            value: v,
            job_key: "k".into(),
            ..Default::default()
        }
    }

    #[test]
    fn table_pivots_languages_and_averages() {
        let t = table(&[
            row("none", "en", 80.0),
            row("none", "de", 70.0),
            row("mnli", "en", 90.0),
        ]);
        assert!(t.contains("xnli · accuracy"));
        let none_line = t.lines().find(|l| l.contains("none")).unwrap();
        assert!(none_line.contains("75.00"), "{none_line}");
        assert!(none_line.contains("70.00"));
        let mnli_line = t.lines().find(|l| l.contains("mnli")).unwrap();
        assert!(
            mnli_line.contains('-'),
            "missing language shown as '-': {mnli_line}"
        );
        // mnli has en only: its averages are partial and marked, none's are not.
        assert!(mnli_line.contains("90.00*"), "{mnli_line}");
        assert!(!none_line.contains('*'), "{none_line}");
        assert!(t.contains("* partial: 1 row(s) miss languages"), "{t}");
    }

    #[test]
    fn csv_quotes_fields() {
        let mut r = row("a,b", "en", 1.0);
        r.metric = "f1".into();
        assert!(csv(&[r]).contains("\"a,b\""));
    }
}
