//! JSON views for the dashboard: sweeps, one sweep (cells, per-axis progress, the live Δ matrix),
//! workers. Read from the cache under its lock, which is held only to copy what is needed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};
use stilts_common::job::StageKind;
use stilts_common::state::JobState;

use super::{HttpState, error, json};
use crate::cache::{CellEntry, Core, SweepEntry};
use crate::report::{self, Entry, ReportInput, ReportOptions};
use crate::status::CellState;

/// Counts by state name, zero counts left out.
fn by_state(
    counts: &[u64; 6],
    names: impl Fn(usize) -> &'static str,
) -> BTreeMap<&'static str, u64> {
    counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (names(i), *n))
        .collect()
}

fn cell_names(i: usize) -> &'static str {
    CellState::ALL[i].as_str()
}

pub async fn sweeps(State(st): State<Arc<HttpState>>) -> Response {
    let core = st.shared.core();
    let list: Vec<Value> = core
        .sweeps
        .iter()
        .map(|s| {
            let mut counts = [0u64; 6];
            for c in &s.cells {
                counts[core.cell_state(c) as usize] += 1;
            }
            let done = counts[CellState::Succeeded as usize]
                + counts[CellState::Failed as usize]
                + counts[CellState::Cancelled as usize];
            json!({
                "name": s.record.name,
                "file_name": s.record.file_name,
                "submitted_at_ms": s.record.submitted_at_ms,
                "cancelled": s.record.cancelled,
                "cells_total": s.cells.len(),
                "finished": done == s.cells.len() as u64,
                "cells": by_state(&counts, cell_names),
            })
        })
        .collect();
    drop(core);
    json(&list)
}

/// One cell of the heatmap.
#[derive(Serialize)]
struct CellView {
    /// Indexes into the sweep's axes: model, intermediate, target, language, seed.
    at: [u32; 5],
    state: &'static str,
    /// The running stage and its progress (`step`/`total`, 0 = unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    running: Option<Value>,
    /// Why the cell failed (the failed job's last failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl Core {
    fn cell_view(&self, c: &CellEntry) -> CellView {
        let state = self.cell_state(c);
        let mut running = None;
        let reason = self.cell_reason(c);
        for j in self.ancestry(c.evaluate) {
            let e = &self.jobs[j as usize];
            if e.record.status.state == JobState::Leased {
                let p = e.progress.as_ref();
                running = Some(json!({
                    "kind": e.record.spec.kind.as_str(),
                    "step": p.map_or(0, |p| p.step),
                    "total": p.map_or(0, |p| p.total),
                    "phase": p.map_or("", |p| p.phase.as_str()),
                }));
            }
        }
        CellView {
            at: [c.model, c.intermediate, c.target, c.language, c.seed],
            state: state.as_str(),
            running,
            reason,
        }
    }

    /// The report's input for a sweep: its cells and result rows.
    fn report_input(&self, s: &SweepEntry) -> ReportInput {
        let cells = self
            .list_cells(s)
            .into_iter()
            .filter_map(|c| {
                let state = report::CellState::parse(&c.state)?;
                Some(report::CellOutcome::from_cell(c, state))
            })
            .collect();
        let results = self
            .results(s)
            .into_iter()
            .map(report::ResultValue::from)
            .collect();
        ReportInput {
            sweep: s.record.name.clone(),
            cells,
            results,
        }
    }
}

pub async fn sweep(State(st): State<Arc<HttpState>>, Path(name): Path<String>) -> Response {
    let (mut body, seq, input, own) = {
        let core = st.shared.core();
        let Some(s) = core.sweep(&name) else {
            return error(StatusCode::NOT_FOUND, format!("unknown sweep {name:?}"));
        };
        let status = core.sweep_status(s);
        let cells: Vec<CellView> = s.cells.iter().map(|c| core.cell_view(c)).collect();
        let mut per_axis: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for a in status.axes {
            let counts: BTreeMap<String, u64> =
                a.cells.into_iter().map(|c| (c.state, c.count)).collect();
            per_axis
                .entry(a.axis)
                .or_default()
                .push(json!({ "value": a.value, "cells": counts }));
        }
        let jobs: BTreeMap<String, BTreeMap<String, u64>> = status
            .jobs
            .into_iter()
            .map(|k| {
                (
                    k.kind,
                    k.jobs.into_iter().map(|c| (c.state, c.count)).collect(),
                )
            })
            .collect();
        let counts: BTreeMap<String, u64> = status
            .cells
            .into_iter()
            .map(|c| (c.state, c.count))
            .collect();
        let cached = st
            .reports()
            .get(&name)
            .filter(|(seq, _)| *seq == core.event_seq)
            .map(|(_, v)| v.clone());
        let input = match cached {
            Some(v) => Err(v),
            None => Ok(core.report_input(s)),
        };
        let own = core.sweep_tasks(s);
        let own_tasks: BTreeMap<&String, Value> = own
            .iter()
            .map(|(name, def)| {
                (
                    name,
                    json!({ "domain": def["domain"], "role": def["role"] }),
                )
            })
            .collect();
        let body = json!({
            "own_tasks": own_tasks,
            "name": s.record.name,
            "file_name": s.record.file_name,
            "cancelled": s.record.cancelled,
            "finished": status.finished,
            "backend": status.backend,
            "waiting": status.waiting,
            "cells_total": s.cells.len(),
            "axes": {
                "model": s.axes.models,
                "intermediate": s.axes.intermediates,
                "target": s.axes.targets,
                "language": s.axes.languages,
                "seed": s.axes.seeds,
            },
            "counts": counts,
            "jobs": jobs,
            "per_axis": per_axis,
            "cells": cells,
        });
        (body, core.event_seq, input, own)
    };
    // The Δ matrix and the serialisation grow with the sweep (seconds at 100,000+ cells): on
    // a blocking thread, so the runtime's threads keep serving heartbeats and acquires.
    let built = tokio::task::spawn_blocking(move || {
        let delta = match input {
            Err(cached) => cached,
            Ok(input) => {
                let v = Arc::new(delta_matrix(&st, &input, own));
                st.reports().insert(name, (seq, v.clone()));
                v
            }
        };
        body["delta"] = (*delta).clone();
        json(&body)
    })
    .await;
    built.unwrap_or_else(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("building the sweep view failed: {e}"),
        )
    })
}

impl HttpState {
    fn reports(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (u64, Arc<Value>)>> {
        self.reports.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A matrix entry as the dashboard draws it.
fn entry(e: &Entry) -> Value {
    match e {
        Entry::Value(s) => json!({ "mean": s.mean, "sd": s.sd, "n": s.n, "ci": s.ci }),
        Entry::Incomplete { .. } => json!({ "gap": e.gap_label() }),
    }
}

/// The definitions of a sweep's own tasks, by name.
type SweepTasks = BTreeMap<String, Value>;

/// The Δ matrix per model.
fn delta_matrix(st: &HttpState, input: &ReportInput, own: SweepTasks) -> Value {
    let mut catalog = (*st.catalog).clone();
    for (name, def) in &own {
        if let Ok(task) = stilts_tasks::TaskDef::from_json(name, def) {
            catalog.insert(task);
        }
    }
    let lookup = report::catalog_tasks(&catalog);
    let r = report::build_with(input, &lookup, &ReportOptions::default());
    let models: Vec<Value> = r
        .models
        .iter()
        .map(|m| {
            let cells: Vec<Value> = m
                .cells
                .iter()
                .map(|c| {
                    json!({
                        "intermediate": c.intermediate,
                        "target": c.target,
                        "aligned": c.aligned,
                        "absolute": entry(&c.absolute.all),
                        "absolute_non_english": c.absolute.non_english.as_ref().map(entry),
                        "delta": c.delta.as_ref().map(|d| entry(&d.all)),
                        "delta_non_english": c.delta.as_ref()
                            .and_then(|d| d.non_english.as_ref()).map(entry),
                    })
                })
                .collect();
            json!({
                "model": m.model,
                "targets": m.targets,
                "rows": m.rows,
                "cells": cells,
            })
        })
        .collect();
    let targets: Vec<Value> = r
        .targets
        .iter()
        .map(|t| json!({ "name": t.name, "domain": t.domain, "score": t.score.as_ref().map(|s| s.label()) }))
        .collect();
    json!({ "models": models, "targets": targets, "warnings": r.warnings })
}

pub async fn workers(State(st): State<Arc<HttpState>>) -> Response {
    let now = st.shared.clock.now_ms();
    let core = st.shared.core();
    let mut ids: Vec<&String> = core.workers.keys().collect();
    ids.sort();
    let list: Vec<Value> = ids
        .into_iter()
        .map(|id| {
            let w = &core.workers[id];
            let mut jobs: Vec<Value> = w
                .jobs
                .iter()
                .map(|&j| {
                    let e = &core.jobs[j as usize];
                    let spec = &e.record.spec;
                    let p = e.progress.as_ref();
                    json!({
                        "key": e.record.key,
                        "kind": spec.kind.as_str(),
                        "task": spec.task,
                        "model": spec.model,
                        "intermediate": spec.intermediate,
                        "languages": spec.languages,
                        "seed": spec.seed,
                        "sweep": core.sweep_name_of(j),
                        "attempt": e.record.status.attempt,
                        "step": p.map_or(0, |p| p.step),
                        "total": p.map_or(0, |p| p.total),
                        "phase": p.map_or("", |p| p.phase.as_str()),
                        "loss": p.map(|p| p.loss).filter(|l| l.is_finite()),
                    })
                })
                .collect();
            jobs.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
            let (steps_per_s, completed) = st.shared.metrics.worker_rate(id);
            json!({
                "id": id,
                "name": w.record.name,
                "slots": w.record.slots,
                "backend": w.record.backend,
                "lease_left_ms": w.lease_expires_at_ms.saturating_sub(now),
                "steps_per_s": steps_per_s,
                "completed": completed,
                "jobs": jobs,
            })
        })
        .collect();
    drop(core);
    json(&json!({ "workers": list, "kinds": StageKind::ALL.map(|k| k.as_str()) }))
}
