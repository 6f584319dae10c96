//! Expansion of a validated grid into the job DAG and its cells.
//!
//! Work is proportional to distinct jobs, not cells: each distinct job's spec is built and
//! hashed once; a cell is six integers found by index arithmetic, with no per-cell string.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use super::{Axes, Cell, Plan, PlannedJob, data};
use crate::grid::{
    self, Grid, GridError, LanguageResolver, Location, NO_INTERMEDIATE, TaskValidator,
};
use crate::job::{JobSpec, Recipe, StageKind};
use crate::key::job_digest;

/// The largest grid `plan` expands (a cell takes 24 bytes).
pub const MAX_CELLS: u64 = 100_000_000;

/// Parses, validates and expands a grid file. `file_name` names the file in errors;
/// `resolver` resolves `languages = "all"`; `task_validator` rejects tasks the catalog lacks.
pub fn plan(
    file_name: &str,
    toml_text: &str,
    resolver: Option<LanguageResolver<'_>>,
    task_validator: Option<TaskValidator<'_>>,
) -> Result<Plan, GridError> {
    plan_capped(file_name, toml_text, resolver, task_validator, MAX_CELLS)
}

/// [`plan_capped`] with the tasks a grid may name: `catalog` (the process's catalog, loaded
/// once), the grid's `catalog = [...]` files (their text from `catalog_files`, by the path as
/// written) and its own `[tasks.NAME]` sections. The grid's own definitions travel with its
/// jobs (`JobSpec::task_def`).
///
/// `data_digests` are the client's digests of the data (`data_version = "auto"`, see
/// [`super::data`]); ignored otherwise.
pub fn plan_with_catalog(
    file_name: &str,
    toml_text: &str,
    catalog: &stilts_tasks::Catalog,
    catalog_files: grid::CatalogFiles<'_>,
    data_digests: &BTreeMap<String, String>,
    max_cells: u64,
) -> Result<Plan, GridError> {
    let tasks = grid::grid_catalog(file_name, toml_text, catalog, catalog_files)?;
    let merged = &tasks.catalog;
    let resolve = |t: &str| merged.get(t).map(|d| d.languages.clone());
    let known = |t: &str| merged.get(t).is_some();
    let mut grid = grid::load(file_name, toml_text, Some(&resolve), Some(&known))?;
    grid.tasks = tasks.own;
    if grid.data_version == data::DATA_AUTO {
        grid.data_digests = data::retain_needed(&grid, data_digests);
    }
    data::check(&grid, file_name, toml_text)?;
    capped(file_name, grid, max_cells)
}

/// [`plan`] refusing grids of more than `max_cells` cells (at most [`MAX_CELLS`]) before they are
/// expanded: a coordinator's cap on sweep size.
pub fn plan_capped(
    file_name: &str,
    toml_text: &str,
    resolver: Option<LanguageResolver<'_>>,
    task_validator: Option<TaskValidator<'_>>,
    max_cells: u64,
) -> Result<Plan, GridError> {
    let grid = grid::load(file_name, toml_text, resolver, task_validator)?;
    data::check(&grid, file_name, toml_text)?;
    capped(file_name, grid, max_cells)
}

fn capped(file_name: &str, grid: Grid, max_cells: u64) -> Result<Plan, GridError> {
    let cells = grid.cell_count();
    let max = max_cells.min(MAX_CELLS);
    if cells > max {
        let at = Location {
            file: file_name.to_string(),
            line: 1,
            column: 1,
        };
        return Err(GridError::Invalid {
            at,
            path: "[grid]".into(),
            message: format!("{cells} cells; at most {max} can be planned here"),
            hint: "split the grid into several sweeps (a coordinator's limit is its --max-cells)"
                .into(),
        });
    }
    Ok(expand(&grid))
}

/// The grid's own definitions a job on `task` reads: the task, its `english_train` tasks and
/// the components of its `mixture` (a multi-task dual encoder).
fn own_defs(grid: &Grid, task: &str) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let Some(def) = grid.tasks.get(task) else {
        return out;
    };
    out.insert(task.to_string(), def.clone());
    let english = def["english_train"].as_array().into_iter().flatten();
    let mixture = def["mixture"].as_array().into_iter().flatten();
    let parts = english.filter_map(|v| v.as_str());
    for name in parts.chain(mixture.filter_map(|c| c["task"].as_str())) {
        if let Some(d) = grid.tasks.get(name) {
            out.insert(name.to_string(), d.clone());
        }
    }
    out
}

/// Expands a validated grid (at most [`MAX_CELLS`] cells) into its plan.
pub fn expand(grid: &Grid) -> Plan {
    let (m_n, i_n, t_n, s_n) = (
        grid.models.len(),
        grid.intermediates.len(),
        grid.targets.len(),
        grid.seeds.len(),
    );
    let batch = |t: usize| match grid.languages_per_job {
        0 => grid.targets[t].languages.len().max(1),
        n => n as usize,
    };
    // Reserve the exact job count: no reallocation of a table that can hold a million specs.
    let with_jobs = grid
        .intermediates
        .iter()
        .filter(|i| *i != NO_INTERMEDIATE)
        .count();
    let evals_per_chain: usize = (0..t_n)
        .map(|t| grid.targets[t].languages.len().div_ceil(batch(t)))
        .sum();
    let capacity = m_n * s_n * (with_jobs + i_n * (t_n + evals_per_chain));
    let mut b = Builder {
        jobs: Vec::with_capacity(capacity),
        index: HashMap::with_capacity(capacity),
        buf: Vec::with_capacity(4096),
    };
    let spec =
        |kind: StageKind, m: usize, task: &str, inter: &str, s: usize, recipe: &Recipe| JobSpec {
            kind,
            model: grid.models[m].name.clone(),
            model_source: grid.models[m].source.clone(),
            task: task.to_string(),
            intermediate: inter.to_string(),
            languages: Vec::new(),
            seed: grid.seeds[s],
            recipe: recipe.clone(),
            executor: grid.executor.spec(kind),
            parent: None,
            data_version: data::job_data_version(grid, kind, task, &[]),
            code_version: grid.code_version.clone(),
            task_defs: own_defs(grid, task),
        };

    // Intermediate jobs, [m][i][s]; None for the baseline.
    let mut inter_jobs = vec![None; m_n * i_n * s_n];
    let inter_recipes: Vec<Recipe> = grid
        .intermediates
        .iter()
        .map(|i| grid.recipe.resolve(StageKind::Intermediate, i))
        .collect();
    for m in 0..m_n {
        for (i, inter) in grid.intermediates.iter().enumerate() {
            if inter == NO_INTERMEDIATE {
                continue;
            }
            for s in 0..s_n {
                let job = spec(
                    StageKind::Intermediate,
                    m,
                    inter,
                    inter,
                    s,
                    &inter_recipes[i],
                );
                inter_jobs[(m * i_n + i) * s_n + s] = Some(b.add(job, None));
            }
        }
    }

    // Target jobs, [m][i][t][s].
    let target_recipes: Vec<Recipe> = grid
        .targets
        .iter()
        .map(|t| grid.recipe.resolve(StageKind::Target, &t.task))
        .collect();
    let mut target_jobs = vec![0u32; m_n * i_n * t_n * s_n];
    for m in 0..m_n {
        for (i, inter) in grid.intermediates.iter().enumerate() {
            for (t, target) in grid.targets.iter().enumerate() {
                for s in 0..s_n {
                    let parent = inter_jobs[(m * i_n + i) * s_n + s];
                    let job = spec(
                        StageKind::Target,
                        m,
                        &target.task,
                        inter,
                        s,
                        &target_recipes[t],
                    );
                    target_jobs[((m * i_n + i) * t_n + t) * s_n + s] = b.add(job, parent);
                }
            }
        }
    }

    // Evaluate jobs: per target job, one per batch of its target's languages.
    let eval_recipes: Vec<Recipe> = grid
        .targets
        .iter()
        .map(|t| grid.recipe.resolve(StageKind::Evaluate, &t.task))
        .collect();
    let mut eval_start = vec![0usize; target_jobs.len()];
    let mut eval_jobs: Vec<u32> = Vec::with_capacity(target_jobs.len() * evals_per_chain);
    for (slot, &parent) in target_jobs.iter().enumerate() {
        let t = (slot / s_n) % t_n;
        let target_spec = &b.jobs[parent as usize].spec;
        let (m, inter, s) = (
            slot / (s_n * t_n * i_n),
            target_spec.intermediate.clone(),
            slot % s_n,
        );
        eval_start[slot] = eval_jobs.len();
        for langs in grid.targets[t].languages.chunks(batch(t)) {
            let mut job = spec(
                StageKind::Evaluate,
                m,
                &grid.targets[t].task,
                &inter,
                s,
                &eval_recipes[t],
            );
            job.languages = langs.to_vec();
            job.languages.sort();
            job.data_version =
                data::job_data_version(grid, StageKind::Evaluate, &job.task, &job.languages);
            eval_jobs.push(b.add(job, Some(parent)));
        }
    }

    // Axes: the language table is the union of the targets' languages.
    let mut languages: Vec<String> = Vec::new();
    let mut language_index: HashMap<&str, u32> = HashMap::new();
    let target_languages: Vec<Vec<u32>> = grid
        .targets
        .iter()
        .map(|t| {
            t.languages
                .iter()
                .map(|l| {
                    *language_index.entry(l).or_insert_with(|| {
                        languages.push(l.clone());
                        (languages.len() - 1) as u32
                    })
                })
                .collect()
        })
        .collect();

    // Cells, in axis order; each adds itself to the dependents of its chain.
    let mut cells = Vec::with_capacity(grid.cell_count() as usize);
    for m in 0..m_n {
        for i in 0..i_n {
            for (t, langs) in target_languages.iter().enumerate() {
                let size = batch(t);
                for (pos, &language) in langs.iter().enumerate() {
                    for s in 0..s_n {
                        let slot = ((m * i_n + i) * t_n + t) * s_n + s;
                        let evaluate_job = eval_jobs[eval_start[slot] + pos / size];
                        cells.push(Cell {
                            model: m as u32,
                            intermediate: i as u32,
                            target: t as u32,
                            language,
                            seed: s as u32,
                            evaluate_job,
                        });
                        let mut at = Some(evaluate_job);
                        while let Some(j) = at {
                            let job = &mut b.jobs[j as usize];
                            job.dependents += 1;
                            at = job.parent;
                        }
                    }
                }
            }
        }
    }

    Plan {
        sweep: grid.sweep.clone(),
        grid_digest: grid.digest(),
        backend: match &grid.executor {
            crate::grid::Executor::Burn { backend } => backend
                .as_deref()
                .and_then(crate::backend::TrainerBackend::parse)
                .map(|b| b.as_str().to_string()),
            crate::grid::Executor::Command { .. } => None,
        },
        jobs: b.jobs,
        cells,
        axes: Axes {
            models: grid.models.iter().map(|m| m.name.clone()).collect(),
            intermediates: grid.intermediates.clone(),
            targets: grid.targets.iter().map(|t| t.task.clone()).collect(),
            languages,
            seeds: grid.seeds.clone(),
        },
        replan_on_new_inputs: grid.data_version == data::DATA_AUTO,
    }
}

/// The deduplicating job table, indexed by raw key digest.
struct Builder {
    jobs: Vec<PlannedJob>,
    index: HashMap<[u8; 32], u32>,
    buf: Vec<u8>,
}

impl Builder {
    /// Adds a job under `parent` (an index into `jobs`) unless a job with its key exists.
    fn add(&mut self, mut spec: JobSpec, parent: Option<u32>) -> u32 {
        spec.parent = parent.map(|p| self.jobs[p as usize].key.clone());
        let digest = job_digest(&spec, &mut self.buf);
        let at = u32::try_from(self.jobs.len()).expect("MAX_CELLS keeps job indices in u32");
        match self.index.entry(digest) {
            Entry::Occupied(existing) => *existing.get(),
            Entry::Vacant(slot) => {
                slot.insert(at);
                let key = hex::encode(digest);
                self.jobs.push(PlannedJob {
                    key,
                    spec,
                    parent,
                    dependents: 0,
                });
                at
            }
        }
    }
}
