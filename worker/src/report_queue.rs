//! Results waiting to reach the coordinator, in order: what a job's thread queues when it ends
//! and what heartbeats list as undelivered. Delivered by `reports.rs`.

use std::collections::VecDeque;
use std::sync::Mutex;

use stilts_common::failure::Failure;
use stilts_proto::v1 as pb;
use tokio::sync::watch;

/// How an attempt ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Complete {
        metrics_json: String,
        artifact: String,
        duration_s: f64,
    },
    Fail(Failure),
}

/// One attempt's result, under the attempt and fencing token it was assigned with.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub key: String,
    pub attempt: u32,
    pub token: u64,
    pub outcome: Outcome,
    /// The attempt's curve when heartbeats have not delivered all of it (else empty).
    pub curve: Vec<pb::CurvePoint>,
    /// The attempt's trace context; delivery runs in a `report` span of that trace.
    pub trace: opentelemetry::Context,
}

/// FIFO of undelivered reports.
pub(crate) struct ReportQueue {
    queue: Mutex<VecDeque<Report>>,
    len: watch::Sender<usize>,
}

impl ReportQueue {
    pub(crate) fn new() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            len: watch::Sender::new(0),
        }
    }

    pub(crate) fn push(&self, report: Report) {
        let mut q = self.queue.lock().expect("report lock");
        q.push_back(report);
        self.len.send_replace(q.len());
    }

    /// (key, attempt, fencing token) of every queued report, oldest first.
    pub(crate) fn undelivered(&self) -> Vec<(String, u32, u64)> {
        let q = self.queue.lock().expect("report lock");
        q.iter()
            .map(|r| (r.key.clone(), r.attempt, r.token))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        *self.len.borrow()
    }

    /// The oldest report, once there is one (it stays queued until [`ReportQueue::pop`]).
    pub(crate) async fn next(&self) -> Report {
        let mut rx = self.len.subscribe();
        loop {
            if let Some(r) = self.queue.lock().expect("report lock").front() {
                return r.clone();
            }
            let _ = rx.wait_for(|n| *n > 0).await;
        }
    }

    pub(crate) fn pop(&self) {
        let mut q = self.queue.lock().expect("report lock");
        q.pop_front();
        self.len.send_replace(q.len());
    }

    /// Waits until every report is delivered or dropped.
    pub(crate) async fn wait_empty(&self) {
        let mut rx = self.len.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}
