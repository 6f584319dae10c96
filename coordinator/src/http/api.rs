//! JSON views for the dashboard: the sweep list and the workers (one sweep: `sweep_view.rs`).
//! Read from the cache under its lock, which is held only to copy what is needed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use stilts_common::job::StageKind;

use super::{HttpState, error, json};
use crate::scan;
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

/// Every sweep with its cells counted by state, read a chunk of cells per hold of the lock on a
/// blocking thread (the list is polled every second, and sweeps may hold millions of cells).
pub async fn sweeps(State(st): State<Arc<HttpState>>) -> Response {
    let list = tokio::task::spawn_blocking(move || {
        let names: Vec<String> = st
            .shared
            .core()
            .sweeps
            .iter()
            .map(|s| s.record.name.clone())
            .collect();
        names
            .into_iter()
            .filter_map(|name| {
                let mut counts = [0u64; 6];
                let mut head = None;
                let found = scan::cells(&st.shared, &name, |_, s, _, _, state| {
                    counts[state as usize] += 1;
                    head.get_or_insert_with(|| s.record.clone());
                });
                let record = match head {
                    Some(r) => r,
                    None => st.shared.core().sweep(&name)?.record.clone(),
                };
                let total: u64 = counts.iter().sum();
                let done = counts[CellState::Succeeded as usize]
                    + counts[CellState::Failed as usize]
                    + counts[CellState::Cancelled as usize];
                found.then(|| {
                    json!({
                        "name": record.name,
                        "file_name": record.file_name,
                        "submitted_at_ms": record.submitted_at_ms,
                        "cancelled": record.cancelled,
                        "cells_total": total,
                        "finished": done == total,
                        "cells": by_state(&counts, cell_names),
                    })
                })
            })
            .collect::<Vec<Value>>()
    })
    .await;
    match list {
        Ok(list) => json(&list),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}")),
    }
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
