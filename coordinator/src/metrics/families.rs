//! The counters and histograms the hooks update, registered once in the `prometheus_client`
//! registry of [`Metrics`](super::Metrics), with their typed label sets and bucket bounds.
//!
//! Counters are registered without `_total` (the OpenMetrics encoder adds it) and durations
//! with [`Unit::Seconds`] (the encoder appends `_seconds` and writes a `# UNIT` line), so the
//! names a Prometheus server sees are the ones listed in the README. Every label set of a fixed
//! family (kinds, outcomes, devices, reports) is created at start, so its series exist at 0
//! before the first event.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use stilts_common::job::StageKind;

/// Bucket bounds (seconds) of the job duration histogram: 1 s to 1 day.
const DURATION_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
];
/// Bucket bounds (seconds) of the queue wait histogram: 10 ms to 6 h.
const WAIT_BUCKETS: [f64; 11] = [
    0.01, 0.1, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 7200.0, 21600.0,
];
/// Bucket bounds (seconds) of the acquire latency histogram: 100 µs to 2.5 s.
const LATENCY_BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 2.5,
];

/// How an attempt ended, the `outcome` label of the duration histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Cancelled,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Self::Succeeded, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// `{kind}`: a stage kind (`intermediate`, `target`, `evaluate`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// `{kind, outcome}` of the duration histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindOutcomeLabels {
    pub kind: &'static str,
    pub outcome: &'static str,
}

/// `{device, outcome}` of compute time: `cpu`|`gpu` × `succeeded`|`lost`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComputeLabels {
    pub device: &'static str,
    pub outcome: &'static str,
}

/// `{report}` of fenced reports: `complete` or `fail`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReportLabels {
    pub report: &'static str,
}

/// `{worker}`: a worker id.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    pub worker: String,
}

/// Creates `labels`' series in `family` (at 0), so it is exposed before its first event.
fn touch<S, M, C>(family: &Family<S, M, C>, labels: &S)
where
    S: Clone + std::hash::Hash + Eq,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    drop(family.get_or_create(labels));
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn wait_histogram() -> Histogram {
    Histogram::new(WAIT_BUCKETS)
}

/// Handles on the registered metrics (each shares its value with the registry's copy).
#[derive(Debug)]
pub struct Families {
    pub lease_expiries: Counter,
    pub lease_expired_jobs: Counter,
    pub stale_reports: Family<ReportLabels, Counter>,
    /// Seconds, summed as f64 (a counter's value in the base unit).
    pub compute: Family<ComputeLabels, Counter<f64, AtomicU64>>,
    pub completions: Family<KindLabels, Counter>,
    pub attempt_failures: Family<KindLabels, Counter>,
    pub queue_wait: HistogramFamily<KindLabels>,
    pub durations: HistogramFamily<KindOutcomeLabels>,
    pub acquire: Histogram,
    pub worker_jobs_completed: Family<WorkerLabels, Counter>,
    pub worker_steps: Family<WorkerLabels, Counter>,
}

impl Families {
    /// Creates the metrics, registers them in `registry` and creates every fixed label set.
    pub fn register(registry: &mut Registry) -> Self {
        let f = Self {
            lease_expiries: Counter::default(),
            lease_expired_jobs: Counter::default(),
            stale_reports: Family::default(),
            compute: Family::default(),
            completions: Family::default(),
            attempt_failures: Family::default(),
            queue_wait: Family::new_with_constructor(wait_histogram),
            durations: Family::new_with_constructor(duration_histogram),
            acquire: Histogram::new(LATENCY_BUCKETS),
            worker_jobs_completed: Family::default(),
            worker_steps: Family::default(),
        };
        // Help texts without the final period: the registry adds it.
        registry.register_with_unit(
            "stilts_compute",
            "Wall time of ended job attempts, by device class and outcome (lost: failed, expired, cancelled)",
            Unit::Seconds,
            f.compute.clone(),
        );
        registry.register(
            "stilts_lease_expiries",
            "Worker leases the reaper expired",
            f.lease_expiries.clone(),
        );
        registry.register(
            "stilts_lease_expired_jobs",
            "Attempts lost with an expired worker lease",
            f.lease_expired_jobs.clone(),
        );
        registry.register(
            "stilts_stale_reports",
            "Reports rejected by fencing (stale attempt or token)",
            f.stale_reports.clone(),
        );
        registry.register(
            "stilts_job_completions",
            "Attempts that succeeded, by kind",
            f.completions.clone(),
        );
        registry.register(
            "stilts_job_attempt_failures",
            "Attempts that failed (retried or not), lease expiries included, by kind",
            f.attempt_failures.clone(),
        );
        registry.register_with_unit(
            "stilts_job_queue_wait",
            "Time from ready (backoff passed) to assigned, by kind",
            Unit::Seconds,
            f.queue_wait.clone(),
        );
        registry.register_with_unit(
            "stilts_job_duration",
            "Time from assigned to reported, by kind and outcome",
            Unit::Seconds,
            f.durations.clone(),
        );
        registry.register_with_unit(
            "stilts_acquire_latency",
            "Round trip of an assignment request through the writer",
            Unit::Seconds,
            f.acquire.clone(),
        );
        registry.register(
            "stilts_worker_jobs_completed",
            "Attempts a worker completed successfully",
            f.worker_jobs_completed.clone(),
        );
        registry.register(
            "stilts_worker_steps",
            "Training steps reported in heartbeats, by worker",
            f.worker_steps.clone(),
        );

        for device in ["cpu", "gpu"] {
            for outcome in ["succeeded", "lost"] {
                touch(&f.compute, &ComputeLabels { device, outcome });
            }
        }
        for report in ["complete", "fail"] {
            touch(&f.stale_reports, &ReportLabels { report });
        }
        for kind in StageKind::ALL.map(StageKind::as_str) {
            let labels = KindLabels { kind };
            touch(&f.completions, &labels);
            touch(&f.attempt_failures, &labels);
            touch(&f.queue_wait, &labels);
            for outcome in Outcome::ALL.map(Outcome::as_str) {
                touch(&f.durations, &KindOutcomeLabels { kind, outcome });
            }
        }
        f
    }

    /// A worker's label set, with both of its counters created (at 0 until it counts).
    pub fn worker(&self, worker: &str) -> WorkerLabels {
        let labels = WorkerLabels {
            worker: worker.to_string(),
        };
        touch(&self.worker_jobs_completed, &labels);
        touch(&self.worker_steps, &labels);
        labels
    }
}
