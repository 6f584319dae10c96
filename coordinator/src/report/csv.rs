//! Long-form CSV of the report: one row per matrix entry (task level, per scope) and per
//! per-language entry, absolute and Δ, plus the transfer gap and QA's F1 and EM alone.
//!
//! Columns: `model, intermediate, intermediate_domain, target, target_domain, aligned, level,
//! scope, language, metric, measure, status, mean, sd, n, ci_low, ci_high, failed, cancelled,
//! pending, absent, no_metric`, where `level` is `task` (with `scope` = `non_english` | `all` |
//! `english`) or `language` (with `language` set), `metric` is `score` (the target's score rule)
//! or a metric of a combined score (`f1`, `exact_match`), `measure` is `absolute`, `delta` or
//! `transfer_gap` (English − non-English, scope empty), `status` is `ok`, `failed`,
//! `metric_missing` or `missing`, prefixed `baseline_` when only the paired `none` units are
//! incomplete; `ci_low`/`ci_high` are the t-interval over seeds (empty below 3 seeds); the gap
//! counts add the row's and the baseline's units; `aligned` is `true`, `false` or empty
//! (baseline, unknown domain).
//!
//! Aligned vs not aligned follows, per model and scope: `level` = `alignment` (intermediate and
//! target empty; `measure` = `aligned`, `not_aligned` or `difference`) and `alignment_target`
//! (one row per target: `measure` = `difference`, the within-target contrast). `status` is
//! `missing` where a group has no complete cell. Flags and exclusions are in report.json/.md.

use std::fmt::Write;

use super::Report;
use super::alignment::AlignmentSummary;
use super::matrix::{Entry, Scope, ScopePair, Summary};

pub const HEADER: &str = "model,intermediate,intermediate_domain,target,target_domain,aligned,level,\
scope,language,metric,measure,status,mean,sd,n,ci_low,ci_high,failed,cancelled,pending,absent,\
no_metric";

/// Quotes a field when it holds a comma, quote or line break (RFC 4180): the one CSV writer.
pub use stilts_common::csv::field;

/// `ok`, or the gap label's words as one token: `failed`, `metric_missing`, `missing`,
/// `baseline_failed`, …
pub fn status(e: &Entry) -> String {
    match e.gap_label() {
        None => "ok".to_string(),
        Some(label) => label
            .split(" (")
            .next()
            .unwrap_or_default()
            .replace(' ', "_"),
    }
}

fn entry_fields(e: &Entry) -> String {
    match e {
        Entry::Value(s) => {
            let (lo, hi) = s.ci.map_or((String::new(), String::new()), |[lo, hi]| {
                (lo.to_string(), hi.to_string())
            });
            format!(
                "ok,{},{},{},{lo},{hi},0,0,0,0,0",
                s.mean,
                s.sd.map_or(String::new(), |v| v.to_string()),
                s.n
            )
        }
        Entry::Incomplete { own, baseline } => {
            let g = own.plus(*baseline);
            format!(
                "{},,,,,,{},{},{},{},{}",
                status(e),
                g.failed,
                g.cancelled,
                g.pending,
                g.absent,
                g.no_metric
            )
        }
    }
}

fn scope_rows(out: &mut String, prefix: &str, metric: &str, measure: &str, p: &ScopePair<Entry>) {
    for scope in Scope::ORDER {
        if let Some(e) = p.get(scope) {
            let _ = writeln!(
                out,
                "{prefix},task,{},,{metric},{measure},{}",
                scope.key(),
                entry_fields(e)
            );
        }
    }
}

/// A summary's fields, or `missing` with zero counts when there is none.
fn summary_fields(s: Option<&Summary>) -> String {
    match s {
        Some(s) => entry_fields(&Entry::Value(*s)),
        None => "missing,,,,,,0,0,0,0,0".to_string(),
    }
}

fn alignment_rows(out: &mut String, model: &str, a: &AlignmentSummary) {
    let scope = a.scope.key();
    for (measure, s) in [
        ("aligned", a.aligned.summary.as_ref()),
        ("not_aligned", a.not_aligned.summary.as_ref()),
        ("difference", a.difference.as_ref()),
    ] {
        let _ = writeln!(
            out,
            "{},,,,,,alignment,{scope},,score,{measure},{}",
            field(model),
            summary_fields(s)
        );
    }
    for t in &a.targets {
        let _ = writeln!(
            out,
            "{},,,{},,,alignment_target,{scope},,score,difference,{}",
            field(model),
            field(&t.target),
            summary_fields(t.difference.as_ref())
        );
    }
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{HEADER}");
    let domain = |name: &str| {
        report
            .targets
            .iter()
            .find(|t| t.name == name)
            .map_or(String::new(), |t| t.domain.clone())
    };
    for m in &report.models {
        for row in &m.rows {
            for t in &m.targets {
                let Some(c) = m.cell(&row.intermediate, t) else {
                    continue;
                };
                let aligned = c.aligned.map_or(String::new(), |a| a.to_string());
                let prefix = format!(
                    "{},{},{},{},{},{aligned}",
                    field(&m.model),
                    field(&row.intermediate),
                    field(&row.domain),
                    field(t),
                    field(&domain(t)),
                );
                scope_rows(&mut out, &prefix, "score", "absolute", &c.absolute);
                if let Some(d) = &c.delta {
                    scope_rows(&mut out, &prefix, "score", "delta", d);
                }
                if let Some(g) = &c.transfer_gap {
                    let _ = writeln!(
                        out,
                        "{prefix},task,,,score,transfer_gap,{}",
                        entry_fields(g)
                    );
                }
                for part in &c.metrics {
                    let metric = field(&part.metric);
                    scope_rows(&mut out, &prefix, &metric, "absolute", &part.absolute);
                    if let Some(d) = &part.delta {
                        scope_rows(&mut out, &prefix, &metric, "delta", d);
                    }
                }
                let Some(table) = m.languages.iter().find(|l| &l.target == t) else {
                    continue;
                };
                let Some(lrow) = table
                    .rows
                    .iter()
                    .find(|r| r.intermediate == row.intermediate)
                else {
                    continue;
                };
                for (k, lang) in table.languages.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{prefix},language,,{},score,absolute,{}",
                        field(lang),
                        entry_fields(&lrow.absolute[k])
                    );
                    if let Some(d) = &lrow.delta {
                        let _ = writeln!(
                            out,
                            "{prefix},language,,{},score,delta,{}",
                            field(lang),
                            entry_fields(&d[k])
                        );
                    }
                }
            }
        }
        for a in &m.alignment {
            alignment_rows(&mut out, &m.model, a);
        }
    }
    out
}
