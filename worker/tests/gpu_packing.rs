//! A worker with `gpus` against a real tonic server over loopback (the test peer in `support/`):
//! how many jobs run at once follows the memory packing, not `slots`. The jobs are command jobs
//! (the packing applies to every job of a worker with GPUs; command jobs get
//! `CUDA_VISIBLE_DEVICES`/`STILTS_GPU`); they use no GPU, and the memory budget is given, so this
//! runs on any machine. Burn jobs on a real GPU are not tested here (no GPU in CI).

mod support;

use std::path::Path;
use std::time::Duration;

use stilts_common::convert::job_spec_from_json;
use stilts_common::job::StageKind;
use stilts_proto::v1 as pb;
use stilts_worker::WorkerConfig;
use stilts_worker::gpu_estimate;
use support::harness::{PATIENCE, Worker, command_job, gated, worker_config};
use support::{Peer, PeerServer};

/// A job that records the GPU it was given, waits for `gate`, then writes metrics. Its model is
/// not on this machine: the conservative (XLM-R large) estimate.
fn assignment(key: &str, token: u64, gate: &Path) -> pb::JobAssignment {
    let template = format!(
        "echo \"$STILTS_GPU $CUDA_VISIBLE_DEVICES\" > {{output_dir}}/gpu; {}",
        gated(gate)
    );
    command_job(key, token, StageKind::Target, "models/not-here", &template)
}

fn estimate(a: &pb::JobAssignment) -> u64 {
    gpu_estimate::for_spec(&job_spec_from_json(&a.spec_json).unwrap())
}

fn config(url: String, artifacts: &Path) -> WorkerConfig {
    worker_config(vec![url], artifacts, "gpu-worker")
}

/// Keys of the jobs in the last heartbeat, with their phases.
fn last_heartbeat(s: &support::PeerState) -> Vec<(String, String)> {
    let mut jobs: Vec<(String, String)> = s
        .heartbeats
        .last()
        .map(|h| {
            h.running
                .iter()
                .map(|r| {
                    let phase = r.progress.as_ref().map(|p| p.phase.clone());
                    (r.job_key.clone(), phase.unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    jobs.sort();
    jobs
}

fn gpus_given(artifacts: &Path, keys: &[String]) -> Vec<String> {
    let mut gpus: Vec<String> = keys
        .iter()
        .filter_map(|k| std::fs::read_to_string(artifacts.join(k).join("gpu")).ok())
        .map(|s| s.trim().to_string())
        .collect();
    gpus.sort();
    gpus
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_follows_the_packing_and_a_job_that_does_not_fit_waits() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    let gate = dir.path().join("gate");
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    let jobs: Vec<pb::JobAssignment> = (1..=6)
        .map(|i| assignment(&format!("job{i}"), i, &gate))
        .collect();
    let keys: Vec<String> = jobs.iter().map(|a| a.job_key.clone()).collect();
    let need = estimate(&jobs[0]);
    for a in jobs {
        peer.enqueue(a);
    }
    // Two GPUs that fit two jobs each, with room left for a smaller job (so the worker takes a
    // fifth, which waits) but not for a third of these.
    let mut cfg = config(server.url(), &artifacts);
    cfg.gpus = vec![3, 7];
    cfg.gpu_memory = Some(2 * need + need / 2);
    cfg.slots = 1;
    let worker = Worker::start(cfg);

    // Four run (two per GPU), the fifth waits for memory, heartbeating; the sixth is not taken.
    let running = peer
        .wait_for("four running and one waiting", PATIENCE, |s| {
            let jobs = last_heartbeat(s);
            let waiting = jobs
                .iter()
                .filter(|(_, p)| p.starts_with("waiting for GPU memory"))
                .count();
            let training = jobs.iter().filter(|(_, p)| p == "train").count();
            (training == 4 && waiting == 1).then_some(jobs)
        })
        .await;
    assert_eq!(
        running.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["job1", "job2", "job3", "job4", "job5"]
    );
    let waiting = &running[4].1;
    assert!(
        waiting.contains("needs") && waiting.contains("free on a GPU"),
        "{waiting}"
    );
    assert_eq!(
        gpus_given(&artifacts, &keys),
        ["3 3", "3 3", "7 7", "7 7"],
        "two jobs per GPU, each told its GPU"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    {
        let s = peer.state();
        assert_eq!(
            s.queue.len(),
            1,
            "no job acquired while one waits for memory"
        );
        assert_eq!(
            s.registrations[0].slots,
            2 * ((2 * need + need / 2) / (5 << 28)) as u32
        );
        assert!(s.fails.is_empty() && s.completes.is_empty());
    }
    assert_eq!(gpus_given(&artifacts, &keys).len(), 4);

    std::fs::write(&gate, "").unwrap();
    peer.wait_for("six completions", PATIENCE, |s| {
        (s.completes.len() == 6).then_some(())
    })
    .await;
    assert!(peer.state().fails.is_empty());
    assert_eq!(gpus_given(&artifacts, &keys).len(), 6);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waiting_for_memory_is_handed_back_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    let gate = dir.path().join("gate");
    let peer = Peer::new(3000);
    let server = PeerServer::start(peer.clone(), 0);
    let (first, second) = (
        assignment("first", 1, &gate),
        assignment("second", 2, &gate),
    );
    let need = estimate(&first);
    peer.enqueue(first);
    peer.enqueue(second);
    let mut cfg = config(server.url(), &artifacts);
    cfg.gpus = vec![0];
    cfg.gpu_memory = Some(need + need / 2);
    let worker = Worker::start(cfg);

    peer.wait_for("one running, one waiting", PATIENCE, |s| {
        let jobs = last_heartbeat(s);
        (jobs.len() == 2 && jobs[1].1.starts_with("waiting for GPU memory")).then_some(())
    })
    .await;
    worker.shutdown.cancel();
    let fail = peer
        .wait_for("the waiting job handed back", PATIENCE, |s| {
            s.fails.first().cloned()
        })
        .await;
    assert_eq!(fail.job_key, "second");
    let failure = fail.failure.unwrap();
    assert_eq!(failure.reason, pb::FailureReason::Preempted as i32);
    assert!(failure.retryable && !failure.counts_against_budget);
    assert!(peer.state().completes.is_empty(), "the first still runs");
    std::fs::write(&gate, "").unwrap();
    worker.join().await;
    assert_eq!(peer.state().completes.len(), 1);
    assert!(!artifacts.join("second/gpu").exists(), "never ran");
}
