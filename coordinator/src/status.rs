//! Read-only views of a sweep: cell states derived from their chains, counts, results.

use std::collections::BTreeMap;

use stilts_common::backend::Need;
pub use stilts_common::cell_state::CellState;
use stilts_common::job::StageKind;
use stilts_common::state::JobState;
use stilts_common::sweep_status::{AxisCounts, CellRow, JobSummary, ResultRow, SweepStatus};

use crate::cache::{CellEntry, Core, JobIdx, SweepEntry};
use crate::compute::ComputeTally;

/// Failed jobs listed in a sweep status, at most.
pub const MAX_FAILED_LISTED: usize = 50;

/// Bytes of messages per page of cells or results: far below gRPC's default 4 MiB limit on
/// decoding, small enough that the cache lock is held briefly per page.
pub const PAGE_BYTES: usize = 1 << 20;

/// Fills one page from the cells at `offset..`, `add` pushing a cell's items and returning their
/// size, until `max_bytes` is reached; returns the items and the next offset (0: done). The
/// services measure wire messages with it (`sweep_api.rs`).
pub(crate) fn page<T>(
    s: &SweepEntry,
    offset: u64,
    max_bytes: usize,
    mut add: impl FnMut(&CellEntry, &mut Vec<T>) -> usize,
) -> (Vec<T>, u64) {
    let mut out = Vec::new();
    let mut bytes = 0;
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    for (i, c) in s.cells.iter().enumerate().skip(start) {
        if bytes >= max_bytes {
            return (out, i as u64);
        }
        bytes += add(c, &mut out);
    }
    (out, 0)
}

/// A sweep's status, added up a cell and a job at a time (so that big sweeps can be read in
/// chunks): cell counts overall and per axis value, job counts per stage, failed jobs, and the
/// ready jobs per need for the pending reason.
#[derive(Debug)]
pub struct StatusTally {
    per_axis: [Vec<[u64; 6]>; 5],
    cells: [u64; 6],
    finished: bool,
    jobs: [[u64; 6]; 3],
    failed: Vec<JobSummary>,
    ready_by_need: [u64; Need::ALL.len()],
    /// The definitions of the tasks the sweep's grid brought (see [`Core::sweep_tasks`]).
    tasks: BTreeMap<String, serde_json::Value>,
    compute: ComputeTally,
}

impl StatusTally {
    pub fn new(s: &SweepEntry) -> Self {
        let axes = &s.axes;
        Self {
            per_axis: [
                vec![[0; 6]; axes.models.len()],
                vec![[0; 6]; axes.intermediates.len()],
                vec![[0; 6]; axes.targets.len()],
                vec![[0; 6]; axes.languages.len()],
                vec![[0; 6]; axes.seeds.len()],
            ],
            cells: [0; 6],
            finished: true,
            jobs: [[0; 6]; 3],
            failed: Vec::new(),
            ready_by_need: [0; Need::ALL.len()],
            tasks: BTreeMap::new(),
            compute: ComputeTally::new(s),
        }
    }

    pub fn cell(&mut self, core: &Core, c: &CellEntry, st: CellState) {
        self.compute.cell(core, c);
        let i = st as usize;
        self.finished &= st.is_terminal();
        self.cells[i] += 1;
        for (axis, v) in [c.model, c.intermediate, c.target, c.language, c.seed]
            .into_iter()
            .enumerate()
        {
            if let Some(slot) = self.per_axis[axis].get_mut(v as usize) {
                slot[i] += 1;
            }
        }
    }

    pub fn job(&mut self, core: &Core, j: JobIdx) {
        self.compute.job(core, j);
        let e = &core.jobs[j as usize];
        let st = e.record.status.state;
        self.jobs[e.record.spec.kind.rank() as usize][st as usize] += 1;
        if st == JobState::Failed && self.failed.len() < MAX_FAILED_LISTED {
            self.failed.push(core.job_summary(j));
        }
        if st == JobState::Ready {
            self.ready_by_need[e.need.class() as usize] += 1;
        }
        if e.record.spec.kind != StageKind::Evaluate {
            for (name, def) in &e.record.spec.task_defs {
                self.tasks
                    .entry(name.clone())
                    .or_insert_with(|| def.clone());
            }
        }
    }

    pub fn finish(self, core: &Core, s: &SweepEntry) -> SweepStatus {
        let axes = &s.axes;
        let values: [Vec<String>; 5] = [
            axes.models.clone(),
            axes.intermediates.clone(),
            axes.targets.clone(),
            axes.languages.clone(),
            axes.seeds.iter().map(u64::to_string).collect(),
        ];
        let mut axis_counts = Vec::new();
        for (axis, name) in ["model", "intermediate", "target", "language", "seed"]
            .into_iter()
            .enumerate()
        {
            for (v, &cells) in self.per_axis[axis].iter().enumerate() {
                axis_counts.push(AxisCounts {
                    axis: name,
                    value: values[axis].get(v).cloned().unwrap_or_default(),
                    cells,
                });
            }
        }
        SweepStatus {
            sweep: s.record.name.clone(),
            cells_total: s.cells.len() as u64,
            cells: self.cells,
            jobs: self.jobs,
            axes: axis_counts,
            finished: self.finished,
            failed: self.failed,
            backend: s.record.backend.clone(),
            waiting: core.waiting(&self.ready_by_need),
            tasks_json: if self.tasks.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&self.tasks).unwrap_or_default()
            },
            compute: self.compute.finish(),
        }
    }
}

impl Core {
    pub fn cell_state(&self, cell: &CellEntry) -> CellState {
        CellState::of_chain(
            self.ancestry(cell.evaluate)
                .map(|j| self.jobs[j as usize].record.status.state),
        )
    }

    /// Why a cell failed: `KIND: last failure` of the failed job of its chain.
    pub fn cell_reason(&self, cell: &CellEntry) -> Option<String> {
        self.ancestry(cell.evaluate).find_map(|j| {
            let e = &self.jobs[j as usize].record;
            (e.status.state == JobState::Failed).then(|| {
                format!(
                    "{}: {}",
                    e.spec.kind.as_str(),
                    e.last_failure
                        .as_ref()
                        .map_or_else(|| "failed".to_string(), ToString::to_string)
                )
            })
        })
    }

    /// The job keys of a chain, first stage first.
    fn chain_keys(&self, evaluate: JobIdx) -> Vec<String> {
        let mut keys: Vec<String> = self
            .ancestry(evaluate)
            .map(|j| self.jobs[j as usize].record.key.clone())
            .collect();
        keys.reverse();
        keys
    }

    /// The definitions of the tasks a sweep's grid brought, by name, as its jobs carry them
    /// (`JobSpec::task_defs`): exactly what the sweep was planned with.
    pub fn sweep_tasks(
        &self,
        s: &SweepEntry,
    ) -> std::collections::BTreeMap<String, serde_json::Value> {
        let mut out = std::collections::BTreeMap::new();
        for &j in &s.jobs {
            let spec = &self.jobs[j as usize].record.spec;
            if spec.kind != StageKind::Evaluate {
                for (name, def) in &spec.task_defs {
                    out.entry(name.clone()).or_insert_with(|| def.clone());
                }
            }
        }
        out
    }

    /// The status of a sweep in one hold of the lock (tests and small sweeps; the services
    /// read big ones a chunk at a time with [`crate::scan::sweep_status`]).
    pub fn sweep_status(&self, s: &SweepEntry) -> SweepStatus {
        let mut tally = StatusTally::new(s);
        for c in &s.cells {
            tally.cell(self, c, self.cell_state(c));
        }
        for &j in &s.jobs {
            tally.job(self, j);
        }
        tally.finish(self, s)
    }

    /// Why ready jobs of a sweep are not running (`ready_by_need`: its ready jobs counted by
    /// need class): one line per need that no connected worker serves, naming the workers there
    /// are. A sweep waiting for a missing backend stays pending
    /// (never failed, never run elsewhere): this is where the user sees why.
    pub fn waiting(&self, ready_by_need: &[u64; Need::ALL.len()]) -> Vec<String> {
        let mut served = [false; Need::ALL.len()];
        let mut offers: BTreeMap<String, usize> = BTreeMap::new();
        for w in self.workers.values() {
            for n in w.offer.serves() {
                served[n.class() as usize] = true;
            }
            *offers.entry(w.offer.to_string()).or_default() += 1;
        }
        let mut stuck = *ready_by_need;
        for (class, n) in stuck.iter_mut().enumerate() {
            if served[class] {
                *n = 0;
            }
        }
        let workers = if offers.is_empty() {
            "no worker is connected".to_string()
        } else {
            let list: Vec<String> = offers.iter().map(|(o, n)| format!("{n} × {o}")).collect();
            format!("connected workers: {}", list.join(", "))
        };
        Need::ALL
            .into_iter()
            .filter(|n| stuck[n.class() as usize] > 0)
            .map(|n| {
                let count = stuck[n.class() as usize];
                let hint = match n {
                    Need::Trainer(Some(b)) => {
                        format!("; start a worker with `--backend {b}` ({})", b.how_to_get())
                    }
                    Need::Trainer(None) => {
                        "; start a worker built with the `trainer` feature".to_string()
                    }
                    Need::Command => String::new(),
                };
                format!("{count} ready jobs wait for {n}: {workers}{hint}")
            })
            .collect()
    }

    pub fn job_summary(&self, j: JobIdx) -> JobSummary {
        let e = &self.jobs[j as usize];
        JobSummary {
            job_key: e.record.key.clone(),
            kind: e.record.spec.kind,
            state: e.record.status.state,
            attempt: e.record.status.attempt,
            message: e
                .record
                .last_failure
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            progress: e.progress.clone(),
            worker_id: e.record.worker_id.clone().unwrap_or_default(),
        }
    }

    pub fn list_cells(&self, s: &SweepEntry) -> Vec<CellRow> {
        s.cells.iter().map(|c| self.cell_row(s, c)).collect()
    }

    pub(crate) fn cell_row(&self, s: &SweepEntry, c: &CellEntry) -> CellRow {
        CellRow {
            model: s.axes.models[c.model as usize].clone(),
            intermediate: s.axes.intermediates[c.intermediate as usize].clone(),
            target: s.axes.targets[c.target as usize].clone(),
            language: s.axes.languages[c.language as usize].clone(),
            seed: s.axes.seeds[c.seed as usize],
            state: self.cell_state(c),
            job_keys: self.chain_keys(c.evaluate),
            reason: self.cell_reason(c),
        }
    }

    /// One row per cell and numeric metric its evaluate job reported for the cell's language.
    pub fn results(&self, s: &SweepEntry) -> Vec<ResultRow> {
        let mut rows = Vec::new();
        for c in &s.cells {
            self.cell_results(s, c, &mut rows);
        }
        rows
    }

    pub(crate) fn cell_results(&self, s: &SweepEntry, c: &CellEntry, rows: &mut Vec<ResultRow>) {
        let e = &self.jobs[c.evaluate as usize].record;
        if e.status.state != JobState::Succeeded {
            return;
        }
        let language = &s.axes.languages[c.language as usize];
        let Some(serde_json::Value::Object(metrics)) =
            e.metrics.as_ref().and_then(|m| m.get(language))
        else {
            return;
        };
        for (metric, value) in metrics {
            let Some(value) = value.as_f64() else {
                continue;
            };
            rows.push(ResultRow {
                model: s.axes.models[c.model as usize].clone(),
                intermediate: s.axes.intermediates[c.intermediate as usize].clone(),
                target: s.axes.targets[c.target as usize].clone(),
                language: language.clone(),
                seed: s.axes.seeds[c.seed as usize],
                metric: metric.clone(),
                value,
                job_key: e.key.clone(),
                code_version: e.spec.code_version.clone(),
                data_version: e.spec.data_version.clone(),
            });
        }
    }
}
