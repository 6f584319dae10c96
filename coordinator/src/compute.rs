//! A sweep's compute accounting (`SweepStatus.compute`), summed from its jobs' `Usage` while a
//! status scan walks its cells and jobs (see `status.rs`, `scan.rs`).

use std::collections::{BTreeMap, HashSet};

use stilts_common::job::StageKind;
use stilts_common::sweep_status::{AxisCompute, ComputeSummary};
use stilts_common::usage::{SweepCompute, Usage};

use crate::cache::{CellEntry, Core, JobIdx, SweepEntry};

/// Spent, GPU and lost milliseconds per (axis, value).
type AxisSums = BTreeMap<(&'static str, String), [u64; 3]>;

#[derive(Debug)]
pub struct ComputeTally {
    submitted_ms: u64,
    totals: SweepCompute,
    /// Training jobs already added to the planned side.
    planned: HashSet<JobIdx>,
    axes: AxisSums,
}

impl ComputeTally {
    pub fn new(s: &SweepEntry) -> Self {
        Self {
            submitted_ms: s.record.submitted_at_ms,
            totals: SweepCompute::default(),
            planned: HashSet::new(),
            axes: BTreeMap::new(),
        }
    }

    /// One distinct job of the sweep.
    pub fn job(&mut self, core: &Core, j: JobIdx) {
        let r = &core.jobs[j as usize].record;
        let before = self.totals;
        self.totals.add_job(&r.usage, self.submitted_ms);
        let add = [
            self.totals.spent_ms - before.spent_ms,
            self.totals.gpu_ms - before.gpu_ms,
            self.totals.lost_ms - before.lost_ms,
        ];
        let spec = &r.spec;
        let mut values = vec![
            ("model", spec.model.clone()),
            ("intermediate", spec.intermediate.clone()),
        ];
        if spec.kind != StageKind::Intermediate {
            values.push(("target", spec.task.clone()));
        }
        for key in values {
            let sums = self.axes.entry(key).or_default();
            for (s, a) in sums.iter_mut().zip(add) {
                *s += a;
            }
        }
    }

    /// One cell: its chain's training jobs (the evaluate job's ancestors).
    pub fn cell(&mut self, core: &Core, c: &CellEntry) {
        let training: Vec<JobIdx> = core.ancestry(c.evaluate).skip(1).collect();
        let usages: Vec<&Usage> = training
            .iter()
            .map(|&j| &core.jobs[j as usize].record.usage)
            .collect();
        if self.totals.add_cell(&usages) {
            for j in training {
                if self.planned.insert(j) {
                    let u = &core.jobs[j as usize].record.usage;
                    self.totals.add_planned(u, self.submitted_ms);
                }
            }
        }
    }

    pub fn finish(self) -> ComputeSummary {
        let t = self.totals;
        ComputeSummary {
            saved_ms: t.saved_ms(),
            totals: t,
            axes: self
                .axes
                .into_iter()
                .map(|((axis, value), [spent, gpu, lost])| AxisCompute {
                    axis: axis.to_string(),
                    value,
                    spent_ms: spent,
                    gpu_ms: gpu,
                    lost_ms: lost,
                })
                .collect(),
        }
    }
}
