//! The worker agent against a real tonic server over loopback (the test peer in `support/`),
//! running real jobs through the command executor.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stilts_common::job::StageKind;
use stilts_proto::v1 as pb;
use stilts_worker::{WorkerConfig, WorkerError};
use support::harness::{PATIENCE, Worker, command_job, gated, worker_config};
use support::{Peer, PeerServer};

fn assignment(key: &str, token: u64, kind: StageKind, template: &str) -> pb::JobAssignment {
    command_job(key, token, kind, "models/xlmr", template)
}

fn config(urls: Vec<String>, artifacts: &Path) -> WorkerConfig {
    worker_config(urls, artifacts, "test-worker")
}

fn touch(path: &Path) {
    std::fs::write(path, "").unwrap();
}

fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn read_when_written(path: &Path) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn running_in(s: &support::PeerState, key: &str) -> Option<pb::RunningJob> {
    s.heartbeats
        .iter()
        .rev()
        .flat_map(|h| h.running.iter())
        .find(|r| r.job_key == key)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_and_complete_with_their_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    peer.enqueue(assignment(
        "train1",
        11,
        StageKind::Target,
        "echo trained > {output_dir}/ckpt",
    ));
    peer.enqueue(assignment(
        "eval1",
        12,
        StageKind::Evaluate,
        r#"echo '{{"de": {{"accuracy": 81.5}}}}' > {metrics_file}"#,
    ));
    let mut cfg = config(vec![server.url()], dir.path());
    cfg.slots = 2;
    let worker = Worker::start(cfg);

    let completes = peer
        .wait_for("two completions", PATIENCE, |s| {
            (s.completes.len() == 2).then(|| s.completes.clone())
        })
        .await;
    let train = completes.iter().find(|c| c.job_key == "train1").unwrap();
    assert_eq!(
        (train.attempt, train.fencing_token, train.worker_id.as_str()),
        (1, 11, "w1")
    );
    assert_eq!(train.metrics_json, "{}");
    assert_eq!(PathBuf::from(&train.artifact), dir.path().join("train1"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("train1/ckpt")).unwrap(),
        "trained\n"
    );
    let eval = completes.iter().find(|c| c.job_key == "eval1").unwrap();
    assert_eq!(eval.fencing_token, 12);
    let metrics: serde_json::Value = serde_json::from_str(&eval.metrics_json).unwrap();
    assert_eq!(metrics["de"]["accuracy"], 81.5);
    assert!(dir.path().join("eval1/logs/attempt-1/stdout.log").exists());
    {
        let s = peer.state();
        assert_eq!(s.registrations.len(), 1);
        assert_eq!(s.registrations[0].backend, "command");
        assert_eq!(s.registrations[0].slots, 2);
        assert!(s.fails.is_empty());
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_carry_progress() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    let gate = dir.path().join("gate");
    peer.enqueue(assignment("job", 5, StageKind::Target, &gated(&gate)));
    let worker = Worker::start(config(vec![server.url()], &dir.path().join("artifacts")));

    let running = peer
        .wait_for("progress in a heartbeat", PATIENCE, |s| {
            running_in(s, "job").filter(|r| r.progress.as_ref().is_some_and(|p| p.step == 3))
        })
        .await;
    assert_eq!((running.attempt, running.fencing_token), (1, 5));
    let p = running.progress.unwrap();
    assert_eq!(
        (p.step, p.total, p.loss, p.phase.as_str()),
        (3, 10, 0.5, "train")
    );
    touch(&gate);
    peer.wait_for("completion", PATIENCE, |s| {
        (!s.completes.is_empty()).then_some(())
    })
    .await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_order_kills_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    let pid_file = dir.path().join("child.pid");
    let template = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
    peer.enqueue(assignment("doomed", 9, StageKind::Target, &template));
    let worker = Worker::start(config(vec![server.url()], &dir.path().join("artifacts")));

    let pid = read_when_written(&pid_file).await;
    assert!(alive(&pid));
    peer.state().cancel.insert("doomed".into());
    let fail = peer
        .wait_for("the cancelled job's report", PATIENCE, |s| {
            s.fails.first().cloned()
        })
        .await;
    assert_eq!((fail.job_key.as_str(), fail.fencing_token), ("doomed", 9));
    let failure = fail.failure.unwrap();
    assert_eq!(failure.reason, pb::FailureReason::Cancelled as i32);
    assert!(!failure.retryable && !failure.counts_against_budget);
    assert!(!alive(&pid), "the job's child survived the cancel");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_coordinator_outage_and_report_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::new(3000);
    let mut server = PeerServer::start(peer.clone(), 0);
    let port = server.addr.port();
    let gate = dir.path().join("gate");
    peer.enqueue(assignment("long", 21, StageKind::Evaluate, &gated(&gate)));
    let artifacts = dir.path().join("artifacts");
    let worker = Worker::start(config(vec![server.url()], &artifacts));

    peer.wait_for("the job running", PATIENCE, |s| running_in(s, "long"))
        .await;
    server.stop();
    let heartbeats_before = peer.state().heartbeats.len();
    // The job finishes while the coordinator is down.
    touch(&gate);
    let metrics = read_when_written(&artifacts.join("long/metrics.json")).await;
    assert!(metrics.contains("accuracy"));
    assert!(peer.state().completes.is_empty());

    let _server = PeerServer::start(peer.clone(), port);
    let done = peer
        .wait_for("the report after the outage", PATIENCE, |s| {
            s.completes.first().cloned()
        })
        .await;
    assert_eq!(
        (done.job_key.as_str(), done.attempt, done.fencing_token),
        ("long", 1, 21)
    );
    assert!(done.metrics_json.contains("accuracy"));
    peer.wait_for("heartbeats again", PATIENCE, |s| {
        (s.heartbeats.len() > heartbeats_before).then_some(())
    })
    .await;
    assert_eq!(peer.state().completes.len(), 1);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_report_is_dropped_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    peer.state().fenced_tokens.insert(7);
    peer.enqueue(assignment("stale", 7, StageKind::Target, "true"));
    peer.enqueue(assignment("fresh", 8, StageKind::Target, "true"));
    let worker = Worker::start(config(vec![server.url()], dir.path()));

    // Reports go out in order and a retried report blocks the ones behind it, so the second
    // job's report arriving means the fenced one was given up.
    peer.wait_for("the second report", PATIENCE, |s| {
        s.completes
            .iter()
            .any(|c| c.job_key == "fresh")
            .then_some(())
    })
    .await;
    let stale = peer
        .state()
        .completes
        .iter()
        .filter(|c| c.job_key == "stale")
        .count();
    assert_eq!(stale, 1, "the fenced report was sent again");
    worker.stop().await;
    assert_eq!(
        peer.state()
            .completes
            .iter()
            .filter(|c| c.job_key == "stale")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_jobs_finish_and_takes_no_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    let gate = dir.path().join("gate");
    peer.enqueue(assignment("first", 1, StageKind::Target, &gated(&gate)));
    let worker = Worker::start(config(vec![server.url()], &dir.path().join("artifacts")));
    peer.wait_for("the job running", PATIENCE, |s| running_in(s, "first"))
        .await;
    peer.enqueue(assignment("second", 2, StageKind::Target, "true"));

    worker.shutdown.cancel();
    touch(&gate);
    worker.join().await;
    let s = peer.state();
    assert_eq!(s.completes.len(), 1);
    assert_eq!(s.completes[0].job_key, "first");
    assert_eq!(s.queue.len(), 1, "a job was acquired during shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_grace_expiry_hands_jobs_back_as_preempted() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    peer.enqueue(assignment("slow", 4, StageKind::Target, "sleep 60"));
    let mut cfg = config(vec![server.url()], dir.path());
    cfg.shutdown_grace = Duration::from_millis(200);
    let worker = Worker::start(cfg);
    peer.wait_for("the job running", PATIENCE, |s| running_in(s, "slow"))
        .await;

    let started = Instant::now();
    worker.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    let s = peer.state();
    assert_eq!(s.fails.len(), 1);
    let failure = s.fails[0].failure.clone().unwrap();
    assert_eq!(failure.reason, pb::FailureReason::Preempted as i32);
    assert!(failure.retryable && !failure.counts_against_budget);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_worker_registers_again_and_keeps_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    let gate = dir.path().join("gate");
    peer.enqueue(assignment("kept", 3, StageKind::Target, &gated(&gate)));
    let worker = Worker::start(config(vec![server.url()], &dir.path().join("artifacts")));
    peer.wait_for("the job running", PATIENCE, |s| running_in(s, "kept"))
        .await;

    peer.state().known.clear();
    peer.wait_for("a second registration", PATIENCE, |s| {
        (s.registrations.len() == 2).then_some(())
    })
    .await;
    peer.wait_for("a heartbeat from the new id", PATIENCE, |s| {
        s.heartbeats
            .iter()
            .any(|h| h.worker_id == "w2" && h.running.iter().any(|r| r.fencing_token == 3))
            .then_some(())
    })
    .await;
    touch(&gate);
    let done = peer
        .wait_for("completion", PATIENCE, |s| s.completes.first().cloned())
        .await;
    assert_eq!((done.worker_id.as_str(), done.fencing_token), ("w2", 3));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_addresses_are_tried_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    peer.enqueue(assignment("job", 1, StageKind::Target, "true"));
    let worker = Worker::start(config(
        vec![format!("http://{dead}"), server.url()],
        dir.path(),
    ));
    peer.wait_for("completion", PATIENCE, |s| s.completes.first().cloned())
        .await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_the_coordinator_is_unreachable_still_returns() {
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let worker = Worker::start(config(vec![format!("http://{dead}")], dir.path()));
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_now_skips_the_grace_and_hands_jobs_back() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    peer.enqueue(assignment("slow", 4, StageKind::Target, "sleep 60"));
    let mut cfg = config(vec![server.url()], dir.path());
    cfg.shutdown_grace = Duration::from_secs(600);
    let worker = Worker::start(cfg);
    peer.wait_for("the job running", PATIENCE, |s| running_in(s, "slow"))
        .await;

    worker.shutdown.cancel();
    worker.now.cancel();
    worker.join().await;
    let s = peer.state();
    let failure = s.fails[0].failure.clone().unwrap();
    assert_eq!(failure.reason, pb::FailureReason::Preempted as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_ends_the_worker_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::new(3000);
    peer.state().refuse_registration = true;
    let server = PeerServer::start(peer.clone(), 0);
    let worker = Worker::start(config(vec![server.url()], dir.path()));
    let err = worker.result().await.unwrap_err();
    assert!(
        matches!(err, WorkerError::RegistrationRefused { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("not allowed"), "{err}");
}
