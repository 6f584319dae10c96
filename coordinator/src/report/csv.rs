//! Long-form CSV of the report: one row per matrix entry (task level, per scope) and per
//! per-language entry, absolute and Δ.
//!
//! Columns: `model, intermediate, intermediate_domain, target, target_domain, aligned, level,
//! scope, language, measure, status, mean, sd, n, failed, cancelled, pending, absent`, where
//! `level` is `task` (with `scope` = `all` | `non_english`) or `language` (with `language` set),
//! `measure` is `absolute` or `delta`, `status` is `ok`, `failed` or `missing`, and `aligned` is
//! `true`, `false` or empty (baseline, unknown domain).

use std::fmt::Write;

use super::Report;
use super::matrix::{Entry, Scope};

pub const HEADER: &str = "model,intermediate,intermediate_domain,target,target_domain,aligned,level,\
scope,language,measure,status,mean,sd,n,failed,cancelled,pending,absent";

/// Quotes a field when it holds a comma, quote or line break (RFC 4180).
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn entry_fields(e: &Entry) -> String {
    match e {
        Entry::Value(s) => format!(
            "ok,{},{},{},0,0,0,0",
            s.mean,
            s.sd.map_or(String::new(), |v| v.to_string()),
            s.n
        ),
        Entry::Incomplete { own, baseline } => {
            let g = [
                own.failed + baseline.failed,
                own.cancelled + baseline.cancelled,
                own.pending + baseline.pending,
                own.absent + baseline.absent,
            ];
            let status = if g[0] > 0 { "failed" } else { "missing" };
            format!("{status},,,,{},{},{},{}", g[0], g[1], g[2], g[3])
        }
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
                for scope in [Scope::All, Scope::NonEnglish] {
                    let scope_name = match scope {
                        Scope::All => "all",
                        Scope::NonEnglish => "non_english",
                    };
                    let measures = [("absolute", Some(&c.absolute)), ("delta", c.delta.as_ref())];
                    for (measure, pair) in measures {
                        if let Some(e) = pair.and_then(|p| p.get(scope)) {
                            let _ = writeln!(
                                out,
                                "{prefix},task,{scope_name},,{measure},{}",
                                entry_fields(e)
                            );
                        }
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
                        "{prefix},language,,{},absolute,{}",
                        field(lang),
                        entry_fields(&lrow.absolute[k])
                    );
                    if let Some(d) = &lrow.delta {
                        let _ = writeln!(
                            out,
                            "{prefix},language,,{},delta,{}",
                            field(lang),
                            entry_fields(&d[k])
                        );
                    }
                }
            }
        }
    }
    out
}
