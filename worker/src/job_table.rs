//! The table of jobs running on this worker: what heartbeats read (progress, curves, fencing
//! tokens) and where cancellations land. The threads that run the jobs are in `jobs.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use stilts_common::failure::Failure;
use stilts_common::series::Series;
use stilts_proto::v1 as pb;
use tokio::sync::watch;

use crate::executor::{CancelFlag, Point, Progress, ProgressSink};
use crate::report_queue::ReportQueue;

/// Why the worker cancelled a job; decides how the failure is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CancelCause {
    /// The coordinator ordered it (sweep cancelled, job reassigned).
    Coordinator,
    /// The worker is shutting down: the job should run again elsewhere at no cost.
    Shutdown,
}

/// The failure reported for work the worker gives back because it is going away.
pub(crate) fn handed_back(message: impl Into<String>) -> Failure {
    Failure::preempted(message)
}

/// Latest progress and the curve of one job, written by its executor, read by heartbeats.
#[derive(Debug, Default)]
pub(crate) struct SharedProgress {
    pub(crate) progress: Mutex<Progress>,
    pub(crate) curve: Mutex<Curve>,
}

/// A job's bounded curve and what of it the coordinator has.
#[derive(Debug, Default)]
pub(crate) struct Curve {
    series: Series,
    /// Points offered when the last heartbeat that reached the coordinator was taken.
    delivered: u64,
    /// Points offered when the last heartbeat was taken (delivered once it is answered).
    pending: u64,
}

impl ProgressSink for SharedProgress {
    fn report(&self, progress: Progress) {
        *self.progress.lock().expect("progress lock") = progress;
    }

    fn point(&self, point: Point) {
        self.curve.lock().expect("curve lock").series.push(point);
    }
}

impl SharedProgress {
    /// The whole curve when it changed since the last delivered heartbeat, else nothing.
    pub(crate) fn curve_update(&self) -> Vec<pb::CurvePoint> {
        let mut curve = self.curve.lock().expect("curve lock");
        let offered = curve.series.offered();
        if offered == curve.delivered {
            return Vec::new();
        }
        curve.pending = offered;
        curve.series.points().into_iter().map(Into::into).collect()
    }
}

/// One running job in the table.
pub(crate) struct Entry {
    pub(crate) attempt: u32,
    pub(crate) token: u64,
    pub(crate) progress: Arc<SharedProgress>,
    pub(crate) cancel: CancelFlag,
    pub(crate) cause: Option<CancelCause>,
    /// The attempt's trace context (from the assignment); the report span joins it.
    pub(crate) trace: opentelemetry::Context,
}

/// The running jobs, by key.
pub(crate) struct Jobs {
    pub(crate) map: Mutex<HashMap<String, Entry>>,
    count: watch::Sender<usize>,
}

impl Jobs {
    pub(crate) fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            count: watch::Sender::new(0),
        }
    }

    pub(crate) fn running(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until fewer than `slots` jobs run; returns the number of free slots.
    pub(crate) async fn wait_free(&self, slots: u32) -> u32 {
        let mut rx = self.count.subscribe();
        let n = *rx
            .wait_for(|n| *n < slots as usize)
            .await
            .expect("sender lives in self");
        slots - n as u32
    }

    /// Waits until no job runs.
    pub(crate) async fn wait_idle(&self) {
        let mut rx = self.count.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// What heartbeats carry: every running job with its current attempt, token and progress,
    /// then every attempt whose report is not delivered yet (no progress), so that the
    /// coordinator can tell a job this worker holds from an assignment that never arrived.
    /// The running table's lock is held while the reports are read: `jobs::finish` queues a report
    /// under that lock, so a job that ends meanwhile is in one list or the other, never in none.
    pub(crate) fn snapshot(&self, reports: &ReportQueue) -> Vec<pb::RunningJob> {
        let map = self.map.lock().expect("jobs lock");
        let mut out: Vec<pb::RunningJob> = map
            .iter()
            .map(|(key, e)| pb::RunningJob {
                job_key: key.clone(),
                attempt: e.attempt,
                fencing_token: e.token,
                progress: Some(
                    e.progress
                        .progress
                        .lock()
                        .expect("progress lock")
                        .clone()
                        .into(),
                ),
                curve: e.progress.curve_update(),
            })
            .collect();
        // A key that runs again here (a newer attempt) is listed once, as running.
        out.extend(
            reports
                .undelivered()
                .into_iter()
                .filter(|(key, ..)| !map.contains_key(key))
                .map(|(job_key, attempt, fencing_token)| pb::RunningJob {
                    job_key,
                    attempt,
                    fencing_token,
                    progress: None,
                    curve: Vec::new(),
                }),
        );
        out
    }

    /// Marks the curves sent with the last heartbeat as delivered (called once it is answered),
    /// so that only changed curves ride on the next ones.
    pub(crate) fn curves_delivered(&self) {
        let map = self.map.lock().expect("jobs lock");
        for entry in map.values() {
            let mut curve = entry.progress.curve.lock().expect("curve lock");
            curve.delivered = curve.pending;
        }
    }

    /// Raises the cancel flag of job `key`; false when it does not run here.
    pub(crate) fn cancel(&self, key: &str, cause: CancelCause) -> bool {
        let mut map = self.map.lock().expect("jobs lock");
        let Some(entry) = map.get_mut(key) else {
            return false;
        };
        entry.cause.get_or_insert(cause);
        entry.cancel.cancel();
        true
    }

    /// Cancels every running job; returns how many.
    pub(crate) fn cancel_all(&self, cause: CancelCause) -> usize {
        let mut map = self.map.lock().expect("jobs lock");
        for entry in map.values_mut() {
            entry.cause.get_or_insert(cause);
            entry.cancel.cancel();
        }
        map.len()
    }

    pub(crate) fn publish(&self, map: &HashMap<String, Entry>) {
        self.count.send_replace(map.len());
    }
}
