//! `SweepService`: submit, query, retry, cancel and watch sweeps.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use stilts_common::backend::TrainerBackend;
use stilts_common::convert::event_to_wire;
use stilts_common::state::JobState;
use stilts_common::store::{Store, SweepRecord};
use stilts_proto::v1 as pb;
use stilts_proto::v1::sweep_service_server::SweepService;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::{Request, Response, Status};
use tracing::info;

use crate::cache::{JobIdx, SweepEntry};
use crate::error::CoordinatorError;
use crate::intents::Intent;
use crate::shared::Shared;
use crate::status::{PAGE_BYTES, page};

pub struct SweepApi<S> {
    shared: Arc<Shared>,
    store: Arc<S>,
}

impl<S> SweepApi<S> {
    pub fn new(shared: Arc<Shared>, store: Arc<S>) -> Self {
        Self { shared, store }
    }

    /// Runs `f` on a sweep under the cache lock.
    fn with_sweep<T>(
        &self,
        name: &str,
        f: impl FnOnce(&crate::cache::Core, &SweepEntry) -> T,
    ) -> Result<T, Status> {
        let core = self.shared.core();
        let sweep = core
            .sweep(name)
            .ok_or_else(|| CoordinatorError::UnknownSweep(name.to_string()))?;
        Ok(f(&core, sweep))
    }

    /// Sends one request per job and counts those that changed the job.
    async fn for_each_job(
        &self,
        jobs: Vec<JobIdx>,
        make: impl Fn(JobIdx, crate::intents::Reply<bool>) -> Intent,
    ) -> Result<u64, Status> {
        let make = &make;
        let calls = jobs
            .into_iter()
            .map(|j| self.shared.call(move |reply| make(j, reply)));
        let mut changed = 0;
        let mut first_error = None;
        for outcome in futures::future::join_all(calls).await {
            match outcome {
                Ok(true) => changed += 1,
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(changed),
        }
    }
}

/// The backend family a sweep's burn jobs need: the submit's override, else the grid's; none
/// for command grids (their jobs run on every worker).
fn sweep_backend(plan: &stilts_common::plan::Plan, requested: &str) -> Result<String, Status> {
    let is_burn = plan
        .jobs
        .first()
        .is_some_and(|j| j.spec.executor == stilts_common::job::ExecutorSpec::Burn);
    if !is_burn {
        return Ok(String::new());
    }
    if requested.is_empty() {
        return Ok(plan.backend.clone().unwrap_or_default());
    }
    TrainerBackend::parse(requested)
        .map(|b| b.as_str().to_string())
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "unknown backend {requested:?}: use cpu, libtorch-cpu or libtorch-cuda"
            ))
        })
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl<S: Store> SweepService for SweepApi<S> {
    async fn submit_sweep(
        &self,
        request: Request<pb::SubmitSweepRequest>,
    ) -> Result<Response<pb::SubmitSweepResponse>, Status> {
        let req = request.into_inner();
        let file_name = if req.file_name.is_empty() {
            "grid.toml".to_string()
        } else {
            req.file_name
        };
        let catalog = self.shared.catalog.clone();
        let (file, text) = (file_name.clone(), req.grid_toml.clone());
        let catalog_files = req.catalog_files;
        let digests: std::collections::BTreeMap<String, String> =
            req.data_digests.into_iter().collect();
        let max_cells = self.shared.cfg.max_cells;
        let planned = tokio::task::spawn_blocking(move || {
            let files = |path: &str| catalog_files.get(path).cloned();
            match catalog.as_deref() {
                Some(catalog) => stilts_common::plan::plan_with_catalog(
                    &file, &text, catalog, &files, &digests, max_cells,
                ),
                None => stilts_common::plan::plan_capped(&file, &text, None, None, max_cells),
            }
        })
        .await
        .map_err(|e| CoordinatorError::Internal(format!("planner task: {e}")))?;
        let plan = planned.map_err(CoordinatorError::from)?;
        let backend = sweep_backend(&plan, &req.backend)?;
        let sweep = SweepRecord {
            name: plan.sweep.clone(),
            file_name,
            grid_toml: req.grid_toml,
            grid_digest: plan.grid_digest.clone(),
            submitted_at_ms: self.shared.clock.now_ms(),
            cancelled: false,
            backend,
        };
        let name = sweep.name.clone();
        let summary = self
            .shared
            .call(|reply| Intent::Submit {
                sweep,
                plan: Box::new(plan),
                reply,
            })
            .await?;
        Ok(Response::new(pb::SubmitSweepResponse {
            sweep: name,
            cells: summary.cells,
            jobs: summary.jobs,
            jobs_already_done: summary.jobs_already_done,
            replanned: summary.replanned,
        }))
    }

    async fn get_sweep(
        &self,
        request: Request<pb::GetSweepRequest>,
    ) -> Result<Response<pb::SweepStatus>, Status> {
        let name = request.into_inner().sweep;
        // A chunk of the sweep per hold of the lock, on a blocking thread: a million-cell status
        // never holds up heartbeats and acquires.
        let shared = self.shared.clone();
        let status = tokio::task::spawn_blocking(move || {
            crate::scan::sweep_status(&shared, &name).ok_or(name)
        })
        .await
        .map_err(|e| CoordinatorError::Internal(format!("status task: {e}")))?;
        status
            .map(|s| Response::new(s.into()))
            .map_err(|name| CoordinatorError::UnknownSweep(name).into())
    }

    async fn list_sweeps(
        &self,
        _request: Request<pb::ListSweepsRequest>,
    ) -> Result<Response<pb::ListSweepsResponse>, Status> {
        let core = self.shared.core();
        let mut sweeps: Vec<&SweepRecord> = core.sweeps.iter().map(|s| &s.record).collect();
        sweeps.sort_by(|a, b| {
            b.submitted_at_ms
                .cmp(&a.submitted_at_ms)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(Response::new(pb::ListSweepsResponse {
            sweeps: sweeps.into_iter().map(|s| s.name.clone()).collect(),
        }))
    }

    async fn list_cells(
        &self,
        request: Request<pb::ListCellsRequest>,
    ) -> Result<Response<pb::ListCellsResponse>, Status> {
        let req = request.into_inner();
        let (cells, next_offset, total) = self.with_sweep(&req.sweep, |core, s| {
            let (cells, next) = page(s, req.offset, PAGE_BYTES, |c, out: &mut Vec<pb::Cell>| {
                let m = pb::Cell::from(core.cell_row(s, c));
                let n = prost::Message::encoded_len(&m);
                out.push(m);
                n
            });
            (cells, next, s.cells.len() as u64)
        })?;
        Ok(Response::new(pb::ListCellsResponse {
            cells,
            next_offset,
            total,
        }))
    }

    async fn get_results(
        &self,
        request: Request<pb::GetResultsRequest>,
    ) -> Result<Response<pb::GetResultsResponse>, Status> {
        let req = request.into_inner();
        let (rows, next_offset, total) = self.with_sweep(&req.sweep, |core, s| {
            let mut domain = Vec::new();
            let (rows, next) = page(
                s,
                req.offset,
                PAGE_BYTES,
                |c, out: &mut Vec<pb::ResultRow>| {
                    core.cell_results(s, c, &mut domain);
                    let rows = domain.drain(..).map(pb::ResultRow::from);
                    let before = out.len();
                    out.extend(rows);
                    out[before..].iter().map(prost::Message::encoded_len).sum()
                },
            );
            (rows, next, s.cells.len() as u64)
        })?;
        Ok(Response::new(pb::GetResultsResponse {
            rows,
            next_offset,
            total,
        }))
    }

    async fn retry_failed(
        &self,
        request: Request<pb::RetryFailedRequest>,
    ) -> Result<Response<pb::RetryFailedResponse>, Status> {
        let name = request.into_inner().sweep;
        let (jobs, cancelled) = self.with_sweep(&name, |core, s| {
            let jobs: Vec<JobIdx> = s
                .jobs
                .iter()
                .copied()
                .filter(|&j| {
                    matches!(
                        core.jobs[j as usize].record.status.state,
                        JobState::Failed | JobState::Cancelled
                    )
                })
                .collect();
            (jobs, s.record.cancelled)
        })?;
        if cancelled {
            self.store
                .set_sweep_cancelled(&name, false)
                .await
                .map_err(CoordinatorError::from)?;
            self.shared.core().set_cancelled(&name, false);
        }
        let revived = self
            .for_each_job(jobs, |job, reply| Intent::Retry { job, reply })
            .await?;
        info!(sweep = %name, revived, "retry");
        Ok(Response::new(pb::RetryFailedResponse {
            jobs_revived: revived,
        }))
    }

    async fn cancel_sweep(
        &self,
        request: Request<pb::CancelSweepRequest>,
    ) -> Result<Response<pb::CancelSweepResponse>, Status> {
        let name = request.into_inner().sweep;
        self.with_sweep(&name, |_, _| ())?;
        self.store
            .set_sweep_cancelled(&name, true)
            .await
            .map_err(CoordinatorError::from)?;
        let jobs = {
            let mut core = self.shared.core();
            core.set_cancelled(&name, true);
            let core = &*core;
            // Deleted meanwhile: nothing left to cancel.
            let Some(sweep) = core.sweep(&name) else {
                return Err(CoordinatorError::UnknownSweep(name).into());
            };
            sweep
                .jobs
                .iter()
                .copied()
                .filter(|&j| {
                    let e = &core.jobs[j as usize];
                    !e.record.status.state.is_terminal()
                        && e.sweeps
                            .iter()
                            .all(|&s| core.sweeps[s as usize].record.cancelled)
                })
                .collect::<Vec<_>>()
        };
        let cancelled = self
            .for_each_job(jobs, |job, reply| Intent::Cancel { job, reply })
            .await?;
        info!(sweep = %name, cancelled, "sweep cancelled");
        Ok(Response::new(pb::CancelSweepResponse {
            jobs_cancelled: cancelled,
        }))
    }

    async fn delete_sweep(
        &self,
        request: Request<pb::DeleteSweepRequest>,
    ) -> Result<Response<pb::DeleteSweepResponse>, Status> {
        let req = request.into_inner();
        let (name, purge) = (req.sweep.clone(), req.purge);
        let outcome = self
            .shared
            .call(|reply| Intent::DeleteSweep { name, purge, reply })
            .await?;
        let artifacts_removed = match &self.shared.cfg.artifacts_root {
            Some(root) if !outcome.purged.is_empty() => {
                let root = root.clone();
                let keys = outcome.purged.clone();
                tokio::task::spawn_blocking(move || remove_artifacts(&root, &keys))
                    .await
                    .map_err(|e| CoordinatorError::Internal(format!("artifact removal: {e}")))?
            }
            _ => 0,
        };
        let compacted = if req.compact {
            self.store.compact().await.map_err(CoordinatorError::from)?
        } else {
            String::new()
        };
        info!(sweep = %req.sweep, purged = outcome.purged.len(), artifacts_removed, "sweep deleted");
        Ok(Response::new(pb::DeleteSweepResponse {
            cells: outcome.cells,
            jobs: outcome.jobs,
            jobs_purged: outcome.purged.len() as u64,
            artifacts_removed,
            compacted,
        }))
    }

    async fn get_curves(
        &self,
        request: Request<pb::GetCurvesRequest>,
    ) -> Result<Response<pb::GetCurvesResponse>, Status> {
        let key = request.into_inner().job_key;
        let curves = self
            .store
            .curves(&key)
            .await
            .map_err(CoordinatorError::from)?;
        Ok(Response::new(pb::GetCurvesResponse {
            curves: curves
                .into_iter()
                .map(|c| pb::AttemptCurve {
                    attempt: c.attempt,
                    points: c.points.into_iter().map(Into::into).collect(),
                })
                .collect(),
        }))
    }

    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let sweep = request.into_inner().sweep;
        let rx = self.shared.events.subscribe();
        let stream = BroadcastStream::new(rx)
            .filter_map(move |item| {
                let out = match item {
                    Ok(e) if sweep.is_empty() || e.sweeps.contains(&sweep) => {
                        Some(Ok(event_to_wire(&e.record, e.kind)))
                    }
                    Ok(_) => None,
                    Err(BroadcastStreamRecvError::Lagged(n)) => {
                        Some(Err(Status::resource_exhausted(format!(
                            "the event stream fell {n} events behind; subscribe again"
                        ))))
                    }
                };
                futures::future::ready(out)
            })
            .take_until(self.shared.stop.clone().cancelled_owned());
        Ok(Response::new(Box::pin(stream)))
    }
}

impl crate::cache::Core {
    fn set_cancelled(&mut self, sweep: &str, cancelled: bool) {
        if let Some(&s) = self.sweep_by_name.get(sweep) {
            self.sweeps[s as usize].record.cancelled = cancelled;
        }
    }
}

/// Removes `root/<key>` of each purged job (keys are checked hex: never a path outside `root`);
/// returns how many directories were removed. A failure is logged and skipped.
fn remove_artifacts(root: &std::path::Path, keys: &[String]) -> u64 {
    let mut removed = 0;
    for key in keys.iter().filter(|k| stilts_common::key::is_job_key(k)) {
        let dir = root.join(key);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the artifact of a purged job")
            }
        }
    }
    removed
}
