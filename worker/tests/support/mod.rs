//! A test-only coordinator peer for the worker agent's tests: an in-process `WorkerService` that
//! hands out queued assignments, records every call, and can be told to cancel jobs, fence off
//! tokens or forget workers. It is not a coordinator: it has no scheduler, store or leases.
//!
//! It runs on its own thread and Tokio runtime, so [`PeerServer::stop`] is a real outage: the
//! runtime is dropped with its listener and every open connection.

pub mod harness;

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use stilts_proto::v1 as pb;
use stilts_proto::v1::worker_service_server::{WorkerService, WorkerServiceServer};
use tokio::sync::Notify;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

/// Everything the peer saw, and what it will answer.
#[derive(Default)]
pub struct PeerState {
    pub registrations: Vec<pb::RegisterWorkerRequest>,
    pub heartbeats: Vec<pb::HeartbeatRequest>,
    pub acquires: usize,
    pub completes: Vec<pb::CompleteJobRequest>,
    pub fails: Vec<pb::FailJobRequest>,
    /// Assignments handed out in order by AcquireJob.
    pub queue: VecDeque<pb::JobAssignment>,
    /// Returned in `cancel_job_keys` of every heartbeat.
    pub cancel: BTreeSet<String>,
    /// Reports carrying these tokens are rejected with FAILED_PRECONDITION.
    pub fenced_tokens: HashSet<u64>,
    /// Worker ids the peer knows; heartbeats from others get `known = false`.
    pub known: HashSet<String>,
    pub lease_ttl_ms: u64,
    /// Refuse every registration with PERMISSION_DENIED.
    pub refuse_registration: bool,
}

#[derive(Clone, Default)]
pub struct Peer {
    state: Arc<Mutex<PeerState>>,
    job_queued: Arc<Notify>,
}

impl Peer {
    pub fn new(lease_ttl_ms: u64) -> Self {
        let peer = Self::default();
        peer.state().lease_ttl_ms = lease_ttl_ms;
        peer
    }

    pub fn state(&self) -> MutexGuard<'_, PeerState> {
        self.state.lock().unwrap()
    }

    pub fn enqueue(&self, assignment: pb::JobAssignment) {
        self.state().queue.push_back(assignment);
        self.job_queued.notify_waiters();
    }

    /// Polls `check` on the state until it returns `Some`, failing the test after `timeout`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&PeerState) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check(&self.state()) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tonic::async_trait]
impl WorkerService for Peer {
    async fn register_worker(
        &self,
        request: Request<pb::RegisterWorkerRequest>,
    ) -> Result<Response<pb::RegisterWorkerResponse>, Status> {
        let mut s = self.state();
        s.registrations.push(request.into_inner());
        if s.refuse_registration {
            return Err(Status::permission_denied(
                "workers from this host are not allowed",
            ));
        }
        let worker_id = format!("w{}", s.registrations.len());
        s.known.insert(worker_id.clone());
        Ok(Response::new(pb::RegisterWorkerResponse {
            worker_id,
            lease_ttl_ms: s.lease_ttl_ms,
        }))
    }

    async fn acquire_job(
        &self,
        request: Request<pb::AcquireJobRequest>,
    ) -> Result<Response<pb::AcquireJobResponse>, Status> {
        let req = request.into_inner();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(req.wait_ms);
        loop {
            let queued = self.job_queued.notified();
            {
                let mut s = self.state();
                s.acquires += 1;
                if !s.known.contains(&req.worker_id) {
                    return Err(Status::not_found("unknown worker"));
                }
                if let Some(assignment) = s.queue.pop_front() {
                    return Ok(Response::new(pb::AcquireJobResponse {
                        assignment: Some(assignment),
                    }));
                }
            }
            if tokio::time::timeout_at(deadline, queued).await.is_err() {
                return Ok(Response::new(pb::AcquireJobResponse { assignment: None }));
            }
        }
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let req = request.into_inner();
        let mut s = self.state();
        let known = s.known.contains(&req.worker_id);
        s.heartbeats.push(req);
        let cancel_job_keys = s.cancel.iter().cloned().collect();
        Ok(Response::new(pb::HeartbeatResponse {
            cancel_job_keys,
            known,
        }))
    }

    async fn complete_job(
        &self,
        request: Request<pb::CompleteJobRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        let req = request.into_inner();
        let mut s = self.state();
        let fenced = s.fenced_tokens.contains(&req.fencing_token);
        s.completes.push(req);
        if fenced {
            return Err(Status::failed_precondition("stale fencing token"));
        }
        Ok(Response::new(pb::ReportResponse {
            state: "succeeded".into(),
        }))
    }

    async fn fail_job(
        &self,
        request: Request<pb::FailJobRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        let req = request.into_inner();
        let mut s = self.state();
        let fenced = s.fenced_tokens.contains(&req.fencing_token);
        s.fails.push(req);
        if fenced {
            return Err(Status::failed_precondition("stale fencing token"));
        }
        Ok(Response::new(pb::ReportResponse {
            state: "failed".into(),
        }))
    }
}

/// The peer served on a loopback port, on a runtime of its own.
pub struct PeerServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeerServer {
    /// Serves `peer` on `127.0.0.1:port` (0 = any free port), retrying the bind for a while (a
    /// restarted server takes its old port back).
    pub fn start(peer: Peer, port: u16) -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = bind(port).await;
                ready_tx.send(listener.local_addr().unwrap()).unwrap();
                tokio::spawn(
                    Server::builder()
                        .add_service(WorkerServiceServer::new(peer))
                        .serve_with_incoming(TcpIncoming::from(listener)),
                );
                let _ = stop_rx.await;
            });
            // Dropping the runtime drops the listener and every connection task.
            rt.shutdown_background();
        });
        let addr = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("peer server started");
        Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Takes the server down, connections included.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn bind(port: u16) -> tokio::net::TcpListener {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        match socket.bind(addr).and_then(|()| socket.listen(128)) {
            Ok(listener) => return listener,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot bind {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
