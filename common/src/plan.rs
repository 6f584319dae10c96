//! The plan: a grid expanded into deduplicated stage jobs (a DAG in topological order) and the
//! cells that read their results from it.

pub mod data;
mod expand;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::job::{JobSpec, StageKind};

pub use expand::{MAX_CELLS, expand, plan, plan_capped, plan_with_catalog};

/// A planned sweep. Cheap in memory: cells are small index records into [`Axes`] and `jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The sweep name from `[sweep] name`.
    pub sweep: String,
    /// sha256 hex of the canonical grid (parsed, spans dropped, re-serialised as JSON): two files
    /// that differ only in comments, layout or key order have the same digest.
    pub grid_digest: String,
    /// The backend family the grid's burn jobs need (`[executor] backend`, canonical name such
    /// as `libtorch-cuda`); `None` for command grids and burn grids that name none.
    pub backend: Option<String>,
    /// Deduplicated stage jobs, topologically ordered: every parent comes before its children
    /// (all intermediate jobs, then all target jobs, then all evaluate jobs).
    pub jobs: Vec<PlannedJob>,
    /// Every cell of the grid, in axis order (model, intermediate, target, language, seed).
    pub cells: Vec<Cell>,
    /// The axis value tables that cells index into.
    pub axes: Axes,
    /// The grid's job keys hold digests of its data (`data_version = "auto"`): a submit of the
    /// same grid text whose digest differs means changed data, and plans the sweep again.
    pub replan_on_new_inputs: bool,
}

/// One deduplicated stage job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedJob {
    /// `key::job_key(&spec)`.
    pub key: String,
    pub spec: JobSpec,
    /// Index into `Plan::jobs` of the job whose key is `spec.parent` (always a lower index).
    pub parent: Option<u32>,
    /// Number of cells whose chain contains this job: a scheduling priority.
    pub dependents: u64,
}

/// The values of each axis, in grid order (models in name order: TOML tables are unordered).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Axes {
    pub models: Vec<String>,
    /// Includes "none" where the grid lists it.
    pub intermediates: Vec<String>,
    pub targets: Vec<String>,
    /// The union of every target's languages, in first-appearance order.
    pub languages: Vec<String>,
    pub seeds: Vec<u64>,
}

/// One point of the grid. Fields index into [`Axes`]; `evaluate_job` indexes into `Plan::jobs`,
/// and the rest of the chain is reached through `PlannedJob::parent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cell {
    pub model: u32,
    pub intermediate: u32,
    pub target: u32,
    pub language: u32,
    pub seed: u32,
    pub evaluate_job: u32,
}

/// A cell's axis values, borrowed from the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellValues<'a> {
    pub model: &'a str,
    pub intermediate: &'a str,
    pub target: &'a str,
    pub language: &'a str,
    pub seed: u64,
}

/// Counts for `stilts plan`: what the DAG saves against training every cell from scratch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub cells: u64,
    pub intermediate_jobs: u64,
    pub target_jobs: u64,
    pub evaluate_jobs: u64,
    /// Training runs if every cell were trained from scratch: 2 per cell (intermediate, then
    /// target), 1 per baseline ("none") cell.
    pub naive_training_runs: u64,
    /// Training jobs in the plan: intermediate + target jobs.
    pub planned_training_runs: u64,
    /// `naive_training_runs / planned_training_runs` (1.0 for an empty plan).
    pub saving_factor: f64,
}

impl Plan {
    /// A cell's axis values.
    pub fn cell_values(&self, cell: &Cell) -> CellValues<'_> {
        CellValues {
            model: &self.axes.models[cell.model as usize],
            intermediate: &self.axes.intermediates[cell.intermediate as usize],
            target: &self.axes.targets[cell.target as usize],
            language: &self.axes.languages[cell.language as usize],
            seed: self.axes.seeds[cell.seed as usize],
        }
    }

    /// The job indices of a cell's chain, root first: `[intermediate,] target, evaluate`.
    pub fn chain(&self, cell: &Cell) -> Vec<u32> {
        self.job_chain(cell.evaluate_job)
    }

    /// The indices of a job and its ancestors, root first.
    pub fn job_chain(&self, job: u32) -> Vec<u32> {
        let mut chain = vec![job];
        let mut at = job;
        while let Some(parent) = self.jobs[at as usize].parent {
            chain.push(parent);
            at = parent;
        }
        chain.reverse();
        chain
    }

    /// Counts of cells and jobs, and what the DAG saves against training every cell alone.
    pub fn summary(&self) -> PlanSummary {
        let mut per_kind = [0u64; 3];
        for job in &self.jobs {
            per_kind[job.spec.kind.rank() as usize] += 1;
        }
        let baseline = self
            .axes
            .intermediates
            .iter()
            .position(|i| i == crate::grid::NO_INTERMEDIATE);
        let naive: u64 = self
            .cells
            .iter()
            .map(|c| {
                if Some(c.intermediate as usize) == baseline {
                    1
                } else {
                    2
                }
            })
            .sum();
        let planned = per_kind[0] + per_kind[1];
        PlanSummary {
            cells: self.cells.len() as u64,
            intermediate_jobs: per_kind[0],
            target_jobs: per_kind[1],
            evaluate_jobs: per_kind[2],
            naive_training_runs: naive,
            planned_training_runs: planned,
            saving_factor: if planned == 0 {
                1.0
            } else {
                naive as f64 / planned as f64
            },
        }
    }
}

impl PlanSummary {
    /// Jobs of one kind.
    pub fn jobs(&self, kind: StageKind) -> u64 {
        match kind {
            StageKind::Intermediate => self.intermediate_jobs,
            StageKind::Target => self.target_jobs,
            StageKind::Evaluate => self.evaluate_jobs,
        }
    }
}

impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cells:           {}", self.cells)?;
        writeln!(
            f,
            "stage jobs:      {} intermediate + {} target + {} evaluate",
            self.intermediate_jobs, self.target_jobs, self.evaluate_jobs
        )?;
        write!(
            f,
            "training runs:   {} planned vs {} naive ({:.1}x fewer)",
            self.planned_training_runs, self.naive_training_runs, self.saving_factor
        )
    }
}
