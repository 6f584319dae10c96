//! Rendering result rows as a table (one block per target × metric, languages as columns),
//! CSV or JSON, with every cell's state: CSV and JSON carry `state` and `reason` on each row and
//! add one row (no metric, value or job key) per cell without results; the table lists the cells
//! that were not scored under the blocks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use stilts_common::csv::field;
use stilts_proto::v1::{Cell, ResultRow};

use crate::cli::Format;

pub fn render(rows: &[ResultRow], cells: &[Cell], format: Format) -> String {
    match format {
        Format::Table => table(rows) + &unscored(rows, cells),
        Format::Csv => csv(rows, cells),
        Format::Json => json(rows, cells),
    }
}

type Axes<'a> = (&'a str, &'a str, &'a str, &'a str, u64);

fn axes_of_cell(c: &Cell) -> Axes<'_> {
    (&c.model, &c.intermediate, &c.target, &c.language, c.seed)
}

fn axes_of_row(r: &ResultRow) -> Axes<'_> {
    (&r.model, &r.intermediate, &r.target, &r.language, r.seed)
}

/// The cells by axes, and the cells no result row mentions (in the API's order).
fn split_cells<'a>(
    rows: &[ResultRow],
    cells: &'a [Cell],
) -> (BTreeMap<Axes<'a>, &'a Cell>, Vec<&'a Cell>) {
    let with_results: BTreeSet<Axes> = rows.iter().map(axes_of_row).collect();
    let by_axes = cells.iter().map(|c| (axes_of_cell(c), c)).collect();
    let without = cells
        .iter()
        .filter(|c| !with_results.contains(&axes_of_cell(c)))
        .collect();
    (by_axes, without)
}

/// A result row's state: its cell's, else `succeeded` (results come from succeeded jobs).
fn state_of<'a>(cells: &BTreeMap<Axes, &'a Cell>, r: &ResultRow) -> (&'a str, &'a str) {
    cells
        .get(&axes_of_row(r))
        .map_or(("succeeded", ""), |c| (c.state.as_str(), c.reason.as_str()))
}

/// The cells without results, counted by state, with the failures' reasons.
fn unscored(rows: &[ResultRow], cells: &[Cell]) -> String {
    let (_, without) = split_cells(rows, cells);
    if without.is_empty() {
        return String::new();
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &without {
        *counts.entry(c.state.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(s, k)| format!("{k} {s}")).collect();
    let mut out = format!(
        "\nnot scored: {} cell(s): {}\n",
        without.len(),
        counts.join(", ")
    );
    for c in without.iter().filter(|c| !c.reason.is_empty()).take(20) {
        let _ = writeln!(
            out,
            "  {} {} → {} {} seed {}: {} ({})",
            c.model,
            c.intermediate,
            c.target,
            c.language,
            c.seed,
            c.state,
            crate::term::printable(&c.reason)
        );
    }
    out
}

/// Columns: `model,intermediate,target,language,seed,metric,value,job_key,state,reason`; a cell
/// without results has empty `metric`, `value` and `job_key`.
fn csv(rows: &[ResultRow], cells: &[Cell]) -> String {
    let (by_axes, without) = split_cells(rows, cells);
    let mut out =
        String::from("model,intermediate,target,language,seed,metric,value,job_key,state,reason\n");
    let axes = |m: &str, i: &str, t: &str, l: &str| {
        [m, i, t, l]
            .iter()
            .map(|f| field(f))
            .collect::<Vec<_>>()
            .join(",")
    };
    for r in rows {
        let (state, reason) = state_of(&by_axes, r);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{state},{}",
            axes(&r.model, &r.intermediate, &r.target, &r.language),
            r.seed,
            field(&r.metric),
            r.value,
            r.job_key,
            field(reason)
        );
    }
    for c in without {
        let _ = writeln!(
            out,
            "{},{},,,,{},{}",
            axes(&c.model, &c.intermediate, &c.target, &c.language),
            c.seed,
            c.state,
            field(&c.reason)
        );
    }
    out
}

fn json(rows: &[ResultRow], cells: &[Cell]) -> String {
    let (by_axes, without) = split_cells(rows, cells);
    let reason = |r: &str| (!r.is_empty()).then(|| r.to_string());
    let mut values: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let (state, why) = state_of(&by_axes, r);
            serde_json::json!({
                "model": r.model, "intermediate": r.intermediate, "target": r.target,
                "language": r.language, "seed": r.seed, "metric": r.metric, "value": r.value,
                "job_key": r.job_key, "state": state, "reason": reason(why),
            })
        })
        .collect();
    values.extend(without.iter().map(|c| {
        serde_json::json!({
            "model": c.model, "intermediate": c.intermediate, "target": c.target,
            "language": c.language, "seed": c.seed, "metric": null, "value": null,
            "job_key": null, "state": c.state, "reason": reason(&c.reason),
        })
    }));
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
        assert!(csv(&[r], &[]).contains("\"a,b\""));
    }

    fn cell(inter: &str, lang: &str, state: &str, reason: &str) -> Cell {
        Cell {
            model: "m".into(),
            intermediate: inter.into(),
            target: "xnli".into(),
            language: lang.into(),
            seed: 1,
            state: state.into(),
            reason: reason.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_reason_with_terminal_escapes_is_printed_escaped() {
        let cells = [cell(
            "none",
            "de",
            "failed",
            "exit 1\u{1b}[2J\u{1b}]0;x\u{7}",
        )];
        let t = render(&[], &cells, Format::Table);
        assert!(!t.contains('\u{1b}') && !t.contains('\u{7}'), "{t:?}");
        assert!(t.contains("exit 1\\u{1b}[2J"), "{t}");
    }

    #[test]
    fn every_format_carries_cell_states() {
        let rows = [row("none", "en", 80.0)];
        let cells = [
            cell("none", "en", "succeeded", ""),
            cell(
                "none",
                "de",
                "failed",
                "evaluate: exit status 2, out of memory",
            ),
            cell("mnli", "en", "running", ""),
        ];
        let csv = csv(&rows, &cells);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "model,intermediate,target,language,seed,metric,value,job_key,state,reason"
        );
        assert_eq!(lines[1], "m,none,xnli,en,1,accuracy,80,k,succeeded,");
        assert!(
            lines
                .contains(&"m,none,xnli,de,1,,,,failed,\"evaluate: exit status 2, out of memory\"")
        );
        assert!(lines.contains(&"m,mnli,xnli,en,1,,,,running,"));
        assert_eq!(lines.len(), 4);

        let json: serde_json::Value = serde_json::from_str(&json(&rows, &cells)).unwrap();
        assert_eq!(json[0]["state"], "succeeded");
        assert_eq!(json[1]["state"], "failed");
        assert!(json[1]["value"].is_null());
        assert_eq!(json[1]["reason"], "evaluate: exit status 2, out of memory");

        let t = render(&rows, &cells, Format::Table);
        assert!(
            t.contains("not scored: 2 cell(s): 1 failed, 1 running"),
            "{t}"
        );
        assert!(t.contains("m none → xnli de seed 1: failed (evaluate: exit status 2"));
    }
}
