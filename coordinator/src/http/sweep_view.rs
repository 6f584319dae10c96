//! One sweep for the dashboard (`/api/sweeps/NAME`) and its cells page by page
//! (`/api/sweeps/NAME/cells?offset=N&limit=M`), at any size.
//!
//! Everything is read a chunk of cells per hold of the cache lock (`scan.rs`) on a blocking
//! thread, so a poll of a million-cell sweep never holds up heartbeats or acquires. Up to
//! [`CELL_DETAIL_LIMIT`] cells the view lists every cell (one box per seed); above it the heatmap
//! comes as tiles, one per (model, intermediate) × target with counts by state and the cell range
//! it covers (cells are stored in plan order, so a tile's cells are one range), and the page asks
//! for a tile's cells on demand. The Δ matrix reads every cell and result: it is rebuilt only
//! when a job changed since, and at most every [`delta_period_ms`] for big sweeps; the view says
//! when it was built.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};
use stilts_common::job::StageKind;
use stilts_common::state::JobState;
use stilts_common::sweep_status::{by_cell_state, by_job_state};

use super::{HttpState, error, json};
use crate::cache::{CellEntry, Core};
use crate::report::{self, Entry, ReportInput, ReportOptions};
use crate::scan;
use crate::status::CellState;

/// Sweeps up to this many cells list every cell; bigger ones send tiles.
pub const CELL_DETAIL_LIMIT: usize = 5_000;
/// Cells per page of `/api/sweeps/NAME/cells`, at most.
pub const MAX_PAGE: usize = 5_000;

/// How long a Δ matrix may be kept although jobs changed: a millisecond per 25 cells (4 s at
/// 100,000 cells, 40 s at a million): its rebuild reads every cell and result, and the matrix
/// moves slowly anyway (the page says when it was built).
pub fn delta_period_ms(cells: usize) -> u64 {
    (cells / 25) as u64
}

/// One cell of the heatmap.
#[derive(Serialize)]
struct CellView {
    /// Index of the cell in the sweep.
    index: usize,
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

/// Cells of one (model, intermediate) × target, counted by state.
#[derive(Serialize)]
struct Tile {
    /// Indexes into the axes: model, intermediate, target.
    at: [u32; 3],
    /// The tile's cells are `first .. first + cells` (plan order).
    first: usize,
    cells: usize,
    counts: BTreeMap<&'static str, u64>,
}

impl Core {
    fn cell_view(&self, index: usize, c: &CellEntry, state: CellState) -> CellView {
        let mut running = None;
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
            index,
            at: [c.model, c.intermediate, c.target, c.language, c.seed],
            state: state.as_str(),
            running,
            reason: (state == CellState::Failed)
                .then(|| self.cell_reason(c))
                .flatten(),
        }
    }
}

pub async fn sweep(State(st): State<Arc<HttpState>>, Path(name): Path<String>) -> Response {
    let built = tokio::task::spawn_blocking(move || view(&st, &name)).await;
    match built {
        Ok(Some(body)) => json(&body),
        Ok(None) => error(StatusCode::NOT_FOUND, "unknown sweep"),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("building the sweep view failed: {e}"),
        ),
    }
}

fn view(st: &Arc<HttpState>, name: &str) -> Option<Value> {
    let shared = &st.shared;
    let (record, axes, total, seq) = {
        let core = shared.core();
        let s = core.sweep(name)?;
        (
            s.record.clone(),
            s.axes.clone(),
            s.cells.len(),
            core.event_seq,
        )
    };
    let mut cells = Vec::new();
    let mut tiles: Vec<Tile> = Vec::new();
    let detail = total <= CELL_DETAIL_LIMIT;
    // One pass over the cells: the status counts, and the cell list or the tiles.
    let status = scan::sweep_status_with(shared, name, |core, i, c, state| {
        if detail {
            cells.push(core.cell_view(i, c, state));
            return;
        }
        let at = [c.model, c.intermediate, c.target];
        match tiles.last_mut() {
            Some(t) if t.at == at && t.first + t.cells == i => t.cells += 1,
            _ => tiles.push(Tile {
                at,
                first: i,
                cells: 1,
                counts: BTreeMap::new(),
            }),
        }
        let t = tiles.last_mut().expect("pushed above");
        *t.counts.entry(state.as_str()).or_default() += 1;
    })?;
    let mut per_axis: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for a in status.axes {
        let counts: BTreeMap<&str, u64> = by_cell_state(&a.cells).into_iter().collect();
        per_axis
            .entry(a.axis.to_string())
            .or_default()
            .push(json!({ "value": a.value, "cells": counts }));
    }
    let jobs: BTreeMap<&str, BTreeMap<&str, u64>> = StageKind::ALL
        .into_iter()
        .map(|k| {
            let counts = by_job_state(&status.jobs[k.rank() as usize]);
            (k.as_str(), counts.into_iter().collect())
        })
        .collect();
    let counts: BTreeMap<&str, u64> = by_cell_state(&status.cells).into_iter().collect();
    let own: BTreeMap<String, Value> = if status.tasks_json.is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&status.tasks_json).unwrap_or_default()
    };
    let own_tasks: BTreeMap<&String, Value> = own
        .iter()
        .map(|(name, def)| {
            (
                name,
                json!({ "domain": def["domain"], "role": def["role"] }),
            )
        })
        .collect();
    let (delta, delta_at_ms) = delta(st, name, seq, total, own.clone());
    Some(json!({
        "own_tasks": own_tasks,
        "name": record.name,
        "file_name": record.file_name,
        "cancelled": record.cancelled,
        "finished": status.finished,
        "backend": status.backend,
        "waiting": status.waiting,
        "cells_total": total,
        "axes": {
            "model": axes.models,
            "intermediate": axes.intermediates,
            "target": axes.targets,
            "language": axes.languages,
            "seed": axes.seeds,
        },
        "counts": counts,
        "jobs": jobs,
        "per_axis": per_axis,
        "cells": if detail { json!(cells) } else { Value::Null },
        "tiles": if detail { Value::Null } else { json!(tiles) },
        "compute": report::compute::Compute::from(&status.compute),
        "delta": *delta,
        "delta_at_ms": delta_at_ms,
    }))
}

/// The sweep's Δ matrix and when it was built. It reads every cell and result: a small sweep's
/// (up to [`CELL_DETAIL_LIMIT`] cells) is built in the request whenever a job changed; a bigger
/// one's off the request: a fetch gets the last one built (`null` before the first) and, when
/// jobs changed since and it is older than [`delta_period_ms`], starts one rebuild in the
/// background (never two at once for a sweep).
fn delta(
    st: &Arc<HttpState>,
    name: &str,
    seq: u64,
    total: usize,
    own: BTreeMap<String, Value>,
) -> (Arc<Value>, u64) {
    let now = st.shared.clock.now_ms();
    let mut reports = st.reports();
    let entry = reports.entry(name.to_string()).or_default();
    let fresh = entry.value.is_some()
        && (entry.seq == seq || now.saturating_sub(entry.at_ms) < delta_period_ms(total));
    if !fresh && total <= CELL_DETAIL_LIMIT {
        // Small: cheap enough to build in the request, so the page is never behind (unless the
        // sweep grew meanwhile: a submit fills its cells after it appears).
        drop(reports);
        if let Some(v) = build_delta(st, name, CELL_DETAIL_LIMIT, own.clone()) {
            let v = Arc::new(v);
            st.keep_delta(name, seq, now, v.clone(), false);
            return (v, now);
        }
        reports = st.reports();
    }
    let entry = reports.entry(name.to_string()).or_default();
    if !fresh && !entry.building {
        entry.building = true;
        let (st, name) = (st.clone(), name.to_string());
        std::thread::spawn(move || {
            let v = Arc::new(build_delta(&st, &name, usize::MAX, own).unwrap_or(Value::Null));
            st.keep_delta(&name, seq, now, v, true);
        });
    }
    let value = entry.value.clone().unwrap_or_else(|| Arc::new(Value::Null));
    (value, entry.at_ms)
}

/// The Δ matrix from a chunked read of the sweep's cells and results; `None` when the sweep
/// has more than `max_cells` cells.
fn build_delta(
    st: &HttpState,
    name: &str,
    max_cells: usize,
    own: BTreeMap<String, Value>,
) -> Option<Value> {
    let mut input = ReportInput {
        sweep: name.to_string(),
        cells: Vec::new(),
        results: Vec::new(),
    };
    let mut rows = Vec::new();
    let mut too_big = false;
    scan::cells(&st.shared, name, |core, s, _, c, _| {
        too_big |= s.cells.len() > max_cells;
        if too_big {
            return;
        }
        input
            .cells
            .push(report::CellOutcome::from(core.cell_row(s, c)));
        core.cell_results(s, c, &mut rows);
    });
    if too_big {
        return None;
    }
    input.results = rows.into_iter().map(report::ResultValue::from).collect();
    Some(delta_matrix(st, &input, own))
}

/// The last Δ matrix of a sweep (see [`delta`]).
#[derive(Debug, Default)]
pub(crate) struct DeltaCache {
    /// The event sequence and the time (unix ms) it was built at.
    seq: u64,
    at_ms: u64,
    value: Option<Arc<Value>>,
    /// A rebuild is under way.
    building: bool,
}

/// `/api/sweeps/NAME/cells?offset=N&limit=M`: cell views `offset .. offset + limit` (limit at
/// most [`MAX_PAGE`], default 1,000) and the sweep's total.
pub async fn cells(
    State(st): State<Arc<HttpState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut offset = 0usize;
    let mut limit = 1_000usize;
    for pair in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let Ok(n) = v.parse::<usize>() else {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{k} must be a number, not {v:?}"),
            );
        };
        match k {
            "offset" => offset = n,
            "limit" => limit = n.clamp(1, MAX_PAGE),
            _ => return error(StatusCode::BAD_REQUEST, format!("unknown parameter {k:?}")),
        }
    }
    let page = tokio::task::spawn_blocking(move || {
        let core = st.shared.core();
        let s = core.sweep(&name)?;
        let end = offset.saturating_add(limit).min(s.cells.len());
        let cells: Vec<CellView> = (offset.min(end)..end)
            .map(|i| {
                let c = &s.cells[i];
                core.cell_view(i, c, core.cell_state(c))
            })
            .collect();
        Some(json!({ "offset": offset, "total": s.cells.len(), "cells": cells }))
    })
    .await;
    match page {
        Ok(Some(v)) => json(&v),
        Ok(None) => error(StatusCode::NOT_FOUND, "unknown sweep"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}")),
    }
}

impl HttpState {
    /// Records a built Δ matrix; `finished_build` ends the background build of it.
    fn keep_delta(&self, name: &str, seq: u64, at_ms: u64, v: Arc<Value>, finished_build: bool) {
        let mut reports = self.reports();
        let e = reports.entry(name.to_string()).or_default();
        *e = DeltaCache {
            seq,
            at_ms,
            value: Some(v),
            building: e.building && !finished_build,
        };
    }

    fn reports(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, DeltaCache>> {
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

/// The Δ matrix per model.
fn delta_matrix(st: &HttpState, input: &ReportInput, own: BTreeMap<String, Value>) -> Value {
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
