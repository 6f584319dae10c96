//! The report's compute section and `stilts sweep status`'s compute lines, from
//! `SweepStatus.compute` (see `stilts_common::usage` for what each figure means).

use std::fmt::Write as _;

use serde::Serialize;
use stilts_common::sweep_status::ComputeSummary;
use stilts_common::usage::{SweepCompute, hours};

/// A sweep's compute, in milliseconds, as the report keeps it (JSON: `compute`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Compute {
    #[serde(flatten)]
    pub totals: SweepCompute,
    pub saved_ms: u64,
    /// (axis, value, spent, gpu, lost) for models, intermediate and target tasks.
    pub axes: Vec<(String, String, u64, u64, u64)>,
}

impl From<&ComputeSummary> for Compute {
    fn from(c: &ComputeSummary) -> Self {
        Self {
            totals: c.totals,
            saved_ms: c.saved_ms,
            axes: c
                .axes
                .iter()
                .map(|a| {
                    (
                        a.axis.clone(),
                        a.value.clone(),
                        a.spent_ms,
                        a.gpu_ms,
                        a.lost_ms,
                    )
                })
                .collect(),
        }
    }
}

impl Compute {
    /// The short form: spent (GPU, lost) and saved, two lines.
    pub fn lines(&self) -> Vec<String> {
        let share = if self.totals.naive_training_ms == 0 {
            String::new()
        } else {
            format!(
                ", {:.0}% of training every cell from scratch ({})",
                100.0 * self.saved_ms as f64 / self.totals.naive_training_ms as f64,
                hours(self.totals.naive_training_ms)
            )
        };
        vec![
            format!(
                "spent {} ({} on GPUs, {} lost to attempts that did not succeed)",
                hours(self.totals.spent_ms),
                hours(self.totals.gpu_ms),
                hours(self.totals.lost_ms)
            ),
            format!(
                "saved {} by shared prefixes and earlier sweeps ({} reused){share}",
                hours(self.saved_ms),
                hours(self.totals.reused_training_ms)
            ),
        ]
    }

    /// The report's `## Compute` section.
    pub fn markdown(&self) -> String {
        let mut out = String::from("## Compute\n\n");
        let _ = writeln!(
            out,
            "Wall time of the sweep's job attempts (a job holds one worker slot; GPU = a worker \
             whose `device` is not `cpu`). Jobs an earlier sweep had finished cost this sweep \
             nothing. Training from scratch = every finished cell's intermediate and target job \
             trained for that cell alone, at the measured times.\n"
        );
        let _ = writeln!(out, "| | time |\n|---|---|");
        for (what, ms) in [
            ("spent", self.totals.spent_ms),
            ("of which on GPUs", self.totals.gpu_ms),
            (
                "of which lost to attempts that did not succeed",
                self.totals.lost_ms,
            ),
            (
                "training every cell from scratch",
                self.totals.naive_training_ms,
            ),
            (
                "training as planned (each job once)",
                self.totals.planned_training_ms,
            ),
            (
                "of which reused from earlier sweeps",
                self.totals.reused_training_ms,
            ),
            ("saved", self.saved_ms),
        ] {
            let _ = writeln!(out, "| {what} | {} |", hours(ms));
        }
        if !self.axes.is_empty() {
            let _ = writeln!(
                out,
                "\n| axis | value | spent | GPU | lost |\n|---|---|---|---|---|"
            );
            for (axis, value, spent, gpu, lost) in &self.axes {
                let _ = writeln!(
                    out,
                    "| {axis} | {value} | {} | {} | {} |",
                    hours(*spent),
                    hours(*gpu),
                    hours(*lost)
                );
            }
        }
        out.push('\n');
        out
    }
}
