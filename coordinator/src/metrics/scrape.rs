//! The `/metrics` exposition of [`Metrics`] in the OpenMetrics text format, encoded by
//! `prometheus_client`: the registry of counters and histograms, and the gauges read from the
//! cache at scrape time (a [`Collector`] built from the caller's `&Core`), so they can never
//! drift from it.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, text};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use stilts_common::job::StageKind;
use stilts_common::state::JobState;

use super::{Metrics, worker_rates};
use crate::cache::Core;
use crate::status::CellState;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, EncodeLabelSet)]
struct JobLabels {
    kind: &'static str,
    state: &'static str,
}

#[derive(Debug, Clone, EncodeLabelSet)]
struct CellLabels {
    sweep: String,
    state: &'static str,
}

#[derive(Debug, Clone, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
}

/// The gauges of one scrape, read from the cache.
#[derive(Debug)]
struct CacheGauges {
    jobs: Vec<(JobLabels, u64)>,
    cells: Vec<(CellLabels, u64)>,
    ready_queue: u64,
    workers_connected: u64,
    steps_per_second: Vec<(WorkerLabels, f64)>,
}

impl CacheGauges {
    fn read(core: &Core, steps_per_second: Vec<(String, f64)>) -> Self {
        let mut jobs = [[0u64; JobState::ALL.len()]; StageKind::ALL.len()];
        for e in &core.jobs {
            jobs[e.record.spec.kind.rank() as usize][e.record.status.state as usize] += 1;
        }
        let mut kinds = StageKind::ALL;
        kinds.sort_by_key(|k| k.rank());
        let jobs = kinds
            .iter()
            .zip(jobs)
            .flat_map(|(kind, row)| {
                JobState::ALL.iter().zip(row).map(|(state, n)| {
                    let labels = JobLabels {
                        kind: kind.as_str(),
                        state: state.as_str(),
                    };
                    (labels, n)
                })
            })
            .collect();
        let mut cells = Vec::with_capacity(core.sweeps.len() * CellState::ALL.len());
        for s in &core.sweeps {
            let mut n = [0u64; CellState::ALL.len()];
            for c in &s.cells {
                n[core.cell_state(c) as usize] += 1;
            }
            for (state, n) in CellState::ALL.iter().zip(n) {
                let labels = CellLabels {
                    sweep: s.record.name.clone(),
                    state: state.as_str(),
                };
                cells.push((labels, n));
            }
        }
        Self {
            jobs,
            cells,
            ready_queue: core.queue.len() as u64,
            workers_connected: core.workers.len() as u64,
            steps_per_second: steps_per_second
                .into_iter()
                .map(|(worker, r)| (WorkerLabels { worker }, r))
                .collect(),
        }
    }
}

/// One gauge family: its descriptor, then one sample per label set.
fn gauges<L: EncodeLabelSet, V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(L, V)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        metric.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

impl Collector for CacheGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauges(
            &mut encoder,
            "stilts_jobs",
            "Stage jobs by kind and state.",
            &self.jobs,
        )?;
        gauges(
            &mut encoder,
            "stilts_cells",
            "Cells by sweep and derived state.",
            &self.cells,
        )?;
        encoder
            .encode_descriptor(
                "stilts_ready_queue",
                "Jobs in the ready queue (backoff included).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.ready_queue)?;
        encoder
            .encode_descriptor(
                "stilts_workers_connected",
                "Workers holding a lease.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&self.workers_connected)?;
        gauges(
            &mut encoder,
            "stilts_worker_steps_per_second",
            "Training steps per second over a worker's running jobs (from heartbeat progress).",
            &self.steps_per_second,
        )
    }
}

impl Metrics {
    /// The OpenMetrics exposition (served as [`CONTENT_TYPE`]): gauges read from `core` (the
    /// caller holds its lock briefly), then the registry's counters and histograms, `# EOF`.
    pub fn render(&self, core: &Core) -> Result<String, std::fmt::Error> {
        let rates = worker_rates::connected(&self.inner().workers, core);
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(CacheGauges::read(core, rates)));
        let mut out = String::with_capacity(16 * 1024);
        text::encode_registry(&mut out, &scrape)?;
        text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stilts_common::heartbeat::RunningJob;
    use stilts_common::progress::Progress;

    use super::*;

    fn running(step: u64) -> RunningJob {
        RunningJob {
            job_key: "k".into(),
            attempt: 1,
            fencing_token: 1,
            progress: Some(Progress {
                step,
                total: 100,
                loss: f64::NAN,
                phase: "train".into(),
            }),
            curve: Default::default(),
        }
    }

    #[test]
    fn openmetrics_text_with_totals_units_escaping_and_eof() {
        let m = Metrics::default();
        m.lease_expired(2);
        for ms in [0, 1, 3, 3000] {
            m.acquire_latency(Duration::from_millis(ms));
        }
        let odd = "w\"1\\\n";
        m.heartbeat(odd, &[running(5)], 1_000);
        m.heartbeat(odd, &[running(12)], 2_000);
        let text = m.render(&Core::default()).unwrap();
        let has = |line: &str| text.lines().any(|l| l == line);
        for line in [
            "# TYPE stilts_lease_expiries counter",
            "stilts_lease_expiries_total 1",
            "stilts_lease_expired_jobs_total 2",
            "stilts_stale_reports_total{report=\"fail\"} 0",
            "stilts_compute_seconds_total{device=\"gpu\",outcome=\"lost\"} 0.0",
            "stilts_job_completions_total{kind=\"evaluate\"} 0",
            "# TYPE stilts_acquire_latency_seconds histogram",
            "# UNIT stilts_acquire_latency_seconds seconds",
            "stilts_acquire_latency_seconds_count 4",
            "stilts_acquire_latency_seconds_bucket{le=\"0.0001\"} 1",
            "stilts_acquire_latency_seconds_bucket{le=\"0.001\"} 2",
            "stilts_acquire_latency_seconds_bucket{le=\"0.005\"} 3",
            "stilts_acquire_latency_seconds_bucket{le=\"2.5\"} 3",
            "stilts_acquire_latency_seconds_bucket{le=\"+Inf\"} 4",
            "stilts_job_duration_seconds_count{kind=\"target\",outcome=\"cancelled\"} 0",
            "stilts_worker_steps_total{worker=\"w\\\"1\\\\\\n\"} 7",
            "stilts_worker_jobs_completed_total{worker=\"w\\\"1\\\\\\n\"} 0",
            "stilts_jobs{kind=\"intermediate\",state=\"ready\"} 0",
            "stilts_ready_queue 0",
            "stilts_workers_connected 0",
            "# TYPE stilts_worker_steps_per_second gauge",
        ] {
            assert!(has(line), "no {line:?} in\n{text}");
        }
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert_eq!(m.worker_rate(odd), (7.0, 0));
    }
}
