//! `WorkerService`: registration, long-poll acquisition, heartbeats and fenced reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::propagation::Injector;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer};
use stilts_common::failure::Failure;
use stilts_common::heartbeat::RunningJob;
use stilts_common::series::{MAX_STORED_POINTS, Point};
use stilts_common::store::{CurveRecord, Store, WorkerRecord};
use stilts_proto::v1 as pb;
use stilts_proto::v1::worker_service_server::WorkerService;
use tokio::time::Instant;
use tonic::{Request, Response, Status};
use tracing::{Span, info, info_span, warn};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::CoordinatorError;
use crate::intents::{Intent, Report, Undelivered};
use crate::shared::Shared;

pub struct WorkerApi<S> {
    shared: Arc<Shared>,
    store: Arc<S>,
}

impl<S> WorkerApi<S> {
    pub fn new(shared: Arc<Shared>, store: Arc<S>) -> Self {
        Self { shared, store }
    }

    /// Any call from a worker proves it alive.
    fn renew(&self, worker: &str) -> bool {
        let now = self.shared.clock.now_ms();
        self.shared.core().renew(worker, now, self.shared.ttl_ms())
    }
}

fn invalid(msg: impl Into<String>) -> Status {
    CoordinatorError::InvalidArgument(msg.into()).into()
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

/// `span`'s W3C trace context (`traceparent`, …) through the global propagator: what the worker
/// continues the attempt's trace from. Empty when tracing is off.
fn trace_context_of(span: &Span) -> HashMap<String, String> {
    let cx = span.context();
    let mut map = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut MapInjector(&mut map))
    });
    map
}

/// The attempt's `queue_wait` span (ready to assigned), after the fact: a child of `attempt` with
/// the cache's timestamps, through the global tracer. Nothing when tracing is off.
fn record_queue_wait(attempt: &Span, ready_since_ms: u64, assigned_at_ms: u64) {
    let cx = attempt.context();
    if ready_since_ms == 0
        || ready_since_ms > assigned_at_ms
        || !cx.span().span_context().is_valid()
    {
        return;
    }
    let at = |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    let tracer = opentelemetry::global::tracer("stilts");
    tracer
        .span_builder("queue_wait")
        .with_start_time(at(ready_since_ms))
        .start_with_context(&tracer, &cx)
        .end_with_timestamp(at(assigned_at_ms));
}

impl<S: Store> WorkerApi<S> {
    /// Stores a curve. Curves are display records: a failed write is logged, never fails the
    /// call that carried it (a running job's next heartbeat with a new point brings it again).
    async fn put_curve(&self, curve: CurveRecord) {
        let (job, attempt) = (curve.job_key.clone(), curve.attempt);
        if let Err(e) = self.store.put_curve(curve).await {
            warn!(job = %job, attempt, error = %e, "storing a training curve failed");
        }
    }

    /// Stores the final curve a report carried, once the report was accepted (its token was
    /// current); an empty one means heartbeats delivered it all.
    async fn store_curve(&self, (job_key, attempt, points): (String, u32, Vec<pb::CurvePoint>)) {
        if points.is_empty() {
            return;
        }
        let skip = points.len().saturating_sub(MAX_STORED_POINTS);
        let points = points.into_iter().skip(skip).map(Point::from).collect();
        self.put_curve(CurveRecord {
            job_key,
            attempt,
            points,
        })
        .await;
    }
}

#[tonic::async_trait]
impl<S: Store> WorkerService for WorkerApi<S> {
    async fn register_worker(
        &self,
        request: Request<pb::RegisterWorkerRequest>,
    ) -> Result<Response<pb::RegisterWorkerResponse>, Status> {
        let req = request.into_inner();
        let name = if req.name.is_empty() {
            "worker".to_string()
        } else {
            req.name
        };
        let id = format!("{name}-{:012x}", rand::random::<u64>() >> 16);
        let expires = self.shared.clock.now_ms() + self.shared.ttl_ms();
        let record = WorkerRecord {
            id: id.clone(),
            name,
            slots: req.slots.max(1),
            backend: req.backend,
            labels: req.labels.into_iter().collect(),
            cached_artifacts: req.cached_artifacts,
            lease_expires_at_ms: expires,
        };
        self.store
            .put_worker(record.clone())
            .await
            .map_err(CoordinatorError::from)?;
        info!(worker = %id, slots = record.slots, backend = %record.backend, cached = record.cached_artifacts.len(), "worker registered");
        self.shared.core().add_worker(record, expires);
        Ok(Response::new(pb::RegisterWorkerResponse {
            worker_id: id,
            lease_ttl_ms: self.shared.ttl_ms(),
        }))
    }

    async fn acquire_job(
        &self,
        request: Request<pb::AcquireJobRequest>,
    ) -> Result<Response<pb::AcquireJobResponse>, Status> {
        let req = request.into_inner();
        if !self.renew(&req.worker_id) {
            return Err(CoordinatorError::UnknownWorker(req.worker_id).into());
        }
        let none = || Ok(Response::new(pb::AcquireJobResponse { assignment: None }));
        if req.free_slots == 0 {
            return none();
        }
        let wait = Duration::from_millis(req.wait_ms).min(self.shared.cfg.acquire_max_wait);
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.shared.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let worker = req.worker_id.clone();
            let started = Instant::now();
            let got = self
                .shared
                .call(|reply| Intent::Assign { worker, reply })
                .await?;
            self.shared.metrics.acquire_latency(started.elapsed());
            if let Some(a) = got {
                let queue_wait_ms = match a.ready_since_ms {
                    0 => 0,
                    ready => a.assigned_at_ms.saturating_sub(ready),
                };
                // One trace per attempt: a root span, whatever span this call runs in.
                let span = info_span!(
                    parent: None,
                    "job_attempt",
                    job.key = %a.job_key,
                    job.kind = a.kind,
                    job.attempt = a.attempt,
                    worker = %req.worker_id,
                    sweep = %a.sweep,
                    queue_wait_ms,
                );
                record_queue_wait(&span, a.ready_since_ms, a.assigned_at_ms);
                let trace_context = trace_context_of(&span);
                return Ok(Response::new(pb::AcquireJobResponse {
                    assignment: Some(pb::JobAssignment {
                        job_key: a.job_key,
                        attempt: a.attempt,
                        fencing_token: a.fencing_token,
                        spec_json: a.spec_json,
                        input_artifact: a.input_artifact,
                        sweep: a.sweep,
                        trace_context,
                    }),
                }));
            }
            if Instant::now() >= deadline {
                return none();
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return none(),
                _ = self.shared.stop.cancelled() => return none(),
            }
        }
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let req = request.into_inner();
        let now = self.shared.clock.now_ms();
        let running: Vec<RunningJob> = req.running.into_iter().map(RunningJob::from).collect();
        self.shared.metrics.heartbeat(&req.worker_id, &running, now);
        let (reply, lost, curves) =
            self.shared
                .core()
                .heartbeat(&req.worker_id, running, now, self.shared.ttl_ms());
        for curve in curves {
            self.put_curve(curve).await;
        }
        for (job, attempt) in lost {
            let intent = Intent::Release {
                job,
                worker: req.worker_id.clone(),
                attempt,
                why: Undelivered::NotRunning,
            };
            if self.shared.intents.send(intent).await.is_err() {
                return Err(Status::unavailable("the coordinator is shutting down"));
            }
        }
        Ok(Response::new(reply.into()))
    }

    async fn complete_job(
        &self,
        request: Request<pb::CompleteJobRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        let req = request.into_inner();
        self.renew(&req.worker_id);
        let metrics = if req.metrics_json.trim().is_empty() {
            None
        } else {
            Some(
                serde_json::from_str::<serde_json::Value>(&req.metrics_json).map_err(|e| {
                    invalid(format!(
                        "metrics_json is not valid JSON (line {}, column {}): {e}",
                        e.line(),
                        e.column()
                    ))
                })?,
            )
        };
        let final_curve = (req.job_key.clone(), req.attempt, req.curve);
        let report = Report {
            worker: req.worker_id,
            key: req.job_key,
            attempt: req.attempt,
            token: req.fencing_token,
        };
        let state = self
            .shared
            .call(|reply| Intent::Complete {
                report,
                metrics,
                artifact: req.artifact,
                reply,
            })
            .await
            .inspect_err(|e| self.shared.metrics.report_rejected(true, e))?;
        self.store_curve(final_curve).await;
        Ok(Response::new(pb::ReportResponse {
            state: state.as_str().to_string(),
        }))
    }

    async fn fail_job(
        &self,
        request: Request<pb::FailJobRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        let req = request.into_inner();
        self.renew(&req.worker_id);
        let failure = req.failure.ok_or_else(|| invalid("failure is required"))?;
        let failure = Failure::try_from(failure).map_err(|e| invalid(e.to_string()))?;
        let final_curve = (req.job_key.clone(), req.attempt, req.curve);
        let report = Report {
            worker: req.worker_id,
            key: req.job_key,
            attempt: req.attempt,
            token: req.fencing_token,
        };
        let state = self
            .shared
            .call(|reply| Intent::Fail {
                report,
                failure,
                reply,
            })
            .await
            .inspect_err(|e| self.shared.metrics.report_rejected(false, e))?;
        self.store_curve(final_curve).await;
        Ok(Response::new(pb::ReportResponse {
            state: state.as_str().to_string(),
        }))
    }
}
