//! The coordinator's behaviour through gRPC, generic over the store: each function takes a
//! [`StoreFactory`], and `coordinator_grpc.rs` instantiates every one for every backend.

use std::collections::HashSet;

use stilts_proto::v1 as pb;
use tonic::Code;

use crate::support::*;

/// Runs every job of the sweep with one worker, returning the assignments in order.
async fn drain<F: StoreFactory>(h: &mut Harness<F>, worker: &str) -> Vec<pb::JobAssignment> {
    let mut order = Vec::new();
    while let Some(a) = h.acquire(worker, 50).await {
        let metrics = metrics_for_kind(&a);
        assert_eq!(h.complete(worker, &a, &metrics).await.unwrap(), "succeeded");
        order.push(a);
    }
    order
}

fn metrics_for_kind(a: &pb::JobAssignment) -> String {
    match kind_and_parent(a).0.as_str() {
        "evaluate" => metrics_for(a),
        _ => r#"{"train": {"steps": 10}}"#.to_string(),
    }
}

/// Lets every lease of the sweep run out, then lets the jobs' backoff pass.
async fn expire_leases<F: StoreFactory>(h: &mut Harness<F>, sweep: &str) {
    h.clock.advance(TTL_MS + 1);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let st = h.status(sweep).await;
        let leased: u64 = ["intermediate", "target", "evaluate"]
            .iter()
            .map(|k| jobs(&st, k, "leased"))
            .sum();
        if leased == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "leases never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Past the backoff cap of the test config.
    h.clock.advance(4_001);
}

/// Intermediate jobs first, then targets (more dependents first), then evaluations; a job is
/// only handed out after its parent succeeded.
pub async fn critical_path_and_parents_first<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    let toml = grid(
        "cp",
        &["none", "mnli"],
        r#"["pawsx", "xnli"]"#,
        r#"{ pawsx = ["de"], xnli = ["de", "fr", "sw"] }"#,
    );
    let sub = h.submit("cp.toml", &toml).await;
    assert_eq!((sub.cells, sub.jobs), (8, 1 + 4 + 8));
    let w = h.register("w1", &[]).await;
    let order = drain(&mut h, &w).await;
    assert_eq!(order.len(), 13);
    let kinds: Vec<String> = order.iter().map(|a| kind_and_parent(a).0).collect();
    assert_eq!(kinds[0], "intermediate", "{kinds:?}");
    // While target jobs are ready, no evaluation starts; xnli (3 cells each) before pawsx (1).
    let first_eval = kinds.iter().position(|k| k == "evaluate").unwrap();
    let last_target = kinds.iter().rposition(|k| k == "target").unwrap();
    assert!(last_target < first_eval, "{kinds:?}");
    let targets: Vec<String> = order[1..5]
        .iter()
        .map(|a| {
            serde_json::from_str::<serde_json::Value>(&a.spec_json).unwrap()["task"].to_string()
        })
        .collect();
    // The worker holds every checkpoint, so locality may reorder targets among the first few,
    // but the first target is one with the most dependent cells.
    assert_eq!(targets[0], "\"xnli\"", "{targets:?}");
    let mut done = HashSet::new();
    for a in &order {
        if let Some(parent) = kind_and_parent(a).1 {
            assert!(
                done.contains(&parent),
                "{} ran before its parent",
                a.job_key
            );
        }
        assert!(done.insert(a.job_key.clone()), "{} ran twice", a.job_key);
    }
    let st = h.status("cp").await;
    assert!(st.finished);
    assert_eq!(count(&st.cells, "succeeded"), 8);
    let rows = h
        .sweeps
        .get_results(pb::GetResultsRequest {
            sweep: "cp".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows.len(), 8 * 2, "one row per cell and metric");
    assert!(rows.iter().all(|r| r.value == 70.5 || r.value == 60.25));
    h.stop().await;
}

/// A worker that holds a parent checkpoint gets that parent's children first among equals.
pub async fn prefers_the_worker_holding_the_parent<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    let toml = grid("loc", &["none"], r#"["xnli"]"#, r#"["de", "fr"]"#);
    h.submit("loc.toml", &toml).await;
    let cached = {
        let w0 = h.register("w0", &[]).await;
        let t = h.acquire(&w0, 50).await.unwrap();
        assert_eq!(kind_and_parent(&t).0, "target");
        h.complete(&w0, &t, "{}").await.unwrap();
        t.job_key
    };
    let w1 = h.register("w1", &[&cached]).await;
    let a = h.acquire(&w1, 50).await.unwrap();
    assert_eq!(kind_and_parent(&a).1.as_deref(), Some(cached.as_str()));
    assert_eq!(a.input_artifact, format!("/artifacts/{cached}"));
    h.stop().await;
}

/// A lost lease returns the job to ready with attempt+1; the old worker's late report is
/// rejected and changes nothing; its heartbeat learns it is unknown and must cancel the job.
pub async fn lease_expiry_fences_the_old_worker<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    h.submit(
        "le.toml",
        &grid("le", &["none"], r#"["xnli"]"#, r#"["de"]"#),
    )
    .await;
    let old = h.register("old", &[]).await;
    let first = h.acquire(&old, 50).await.unwrap();
    assert_eq!(first.attempt, 1);
    expire_leases(&mut h, "le").await;
    let new = h.register("new", &[]).await;
    let second = h.acquire(&new, 5_000).await.unwrap();
    assert_eq!(second.job_key, first.job_key);
    assert_eq!(second.attempt, 2);
    assert!(second.fencing_token > first.fencing_token);

    let late = h.complete(&old, &first, "{}").await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition, "{late:?}");
    assert!(late.message().contains("stale fencing token"), "{late:?}");
    let late = h.fail(&old, &first, true).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    let st = h.status("le").await;
    assert_eq!(
        jobs(&st, "target", "leased"),
        1,
        "the late reports changed nothing"
    );

    let hb = h.heartbeat(&old, &[&first]).await;
    assert!(!hb.known);
    assert_eq!(hb.cancel_job_keys, vec![first.job_key.clone()]);
    let hb = h.heartbeat(&new, &[&second]).await;
    assert!(hb.known && hb.cancel_job_keys.is_empty());
    assert_eq!(h.complete(&new, &second, "{}").await.unwrap(), "succeeded");
    // A repeated delivery of the same completion is answered, not refused.
    assert_eq!(h.complete(&new, &second, "{}").await.unwrap(), "succeeded");
    h.stop().await;
}

/// The lost-lease race: a worker that lost its lease registers again and acquires a job, while
/// a heartbeat with its old id (and the new job listed) is on its way. The coordinator must not
/// order that job cancelled (the worker would report it failed for good); the same old id
/// listing an attempt that is no longer current is still told to cancel it.
pub async fn old_registration_never_cancels_the_new_assignment<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    h.submit(
        "race.toml",
        &grid("race", &["none"], r#"["xnli"]"#, r#"["de"]"#),
    )
    .await;
    let old = h.register("w", &[]).await;
    let first = h.acquire(&old, 50).await.unwrap();
    expire_leases(&mut h, "race").await;
    let new = h.register("w", &[]).await;
    assert_ne!(new, old);
    let current = h.acquire(&new, 5_000).await.unwrap();
    assert_eq!(current.job_key, first.job_key);

    let hb = h.heartbeat(&old, &[&current]).await;
    assert!(!hb.known);
    assert!(
        hb.cancel_job_keys.is_empty(),
        "the current assignment was cancelled through the old id: {:?}",
        hb.cancel_job_keys
    );
    let hb = h.heartbeat(&old, &[&first]).await;
    assert_eq!(
        hb.cancel_job_keys,
        vec![first.job_key.clone()],
        "stale attempt"
    );
    let hb = h.heartbeat(&new, &[&current]).await;
    assert!(hb.known && hb.cancel_job_keys.is_empty());
    assert_eq!(h.complete(&new, &current, "{}").await.unwrap(), "succeeded");
    let st = h.status("race").await;
    assert_eq!(jobs(&st, "target", "succeeded"), 1);
    assert_eq!(jobs(&st, "target", "failed"), 0);
    h.stop().await;
}

/// Past its budget a job fails; its dependants stay blocked; `RetryFailed` revives it.
pub async fn budget_exhaustion_and_retry<F: StoreFactory>(f: F) {
    let mut cfg = test_config();
    cfg.max_attempts = 2;
    cfg.lease_ttl = std::time::Duration::from_secs(3_600);
    let mut h = Harness::start(f, cfg).await;
    h.submit(
        "bx.toml",
        &grid("bx", &["mnli"], r#"["xnli"]"#, r#"["de"]"#),
    )
    .await;
    let w = h.register("w", &[]).await;
    let a1 = h.acquire(&w, 50).await.unwrap();
    assert_eq!(h.fail(&w, &a1, true).await.unwrap(), "ready");
    h.clock.advance(5_000);
    let a2 = h.acquire(&w, 2_000).await.unwrap();
    assert_eq!((a2.job_key == a1.job_key, a2.attempt), (true, 2));
    assert_eq!(h.fail(&w, &a2, true).await.unwrap(), "failed");
    h.clock.advance(60_000);
    assert!(h.acquire(&w, 50).await.is_none(), "dependants stay blocked");
    let st = h.status("bx").await;
    assert_eq!(jobs(&st, "intermediate", "failed"), 1);
    assert_eq!(jobs(&st, "target", "blocked"), 1);
    assert_eq!(count(&st.cells, "failed"), 1);
    assert!(st.finished);
    assert_eq!(st.failed.len(), 1);
    assert!(
        st.failed[0].message.contains("exit status 1"),
        "{:?}",
        st.failed
    );

    let revived = h
        .sweeps
        .retry_failed(pb::RetryFailedRequest { sweep: "bx".into() })
        .await
        .unwrap()
        .into_inner()
        .jobs_revived;
    assert_eq!(revived, 1);
    let a3 = h.acquire(&w, 2_000).await.unwrap();
    assert_eq!((a3.job_key == a1.job_key, a3.attempt), (true, 3));
    h.complete(&w, &a3, "{}").await.unwrap();
    let next = h.acquire(&w, 2_000).await.unwrap();
    assert_eq!(
        kind_and_parent(&next).1.as_deref(),
        Some(a1.job_key.as_str())
    );
    h.stop().await;
}

/// A failed attempt is not handed out again before its backoff passes.
pub async fn backoff_is_respected<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    h.submit(
        "bo.toml",
        &grid("bo", &["none"], r#"["xnli"]"#, r#"["de"]"#),
    )
    .await;
    let w = h.register("w", &[]).await;
    let a1 = h.acquire(&w, 50).await.unwrap();
    h.fail(&w, &a1, true).await.unwrap();
    // base 1 s, first retry: between 0.5 s and 1 s.
    assert!(h.acquire(&w, 30).await.is_none());
    h.clock.advance(450);
    assert!(h.acquire(&w, 30).await.is_none());
    h.clock.advance(600);
    let a2 = h.acquire(&w, 2_000).await.unwrap();
    assert_eq!((a2.job_key == a1.job_key, a2.attempt), (true, 2));
    h.stop().await;
}

/// Restart mid-sweep on the same store: no finished job runs again; a leased job is adopted
/// and its completion with the old token is accepted.
pub async fn restart_adopts_leases_and_repeats_nothing<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    let toml = grid("rs", &["none", "mnli"], r#"["xnli"]"#, r#"["de", "sw"]"#);
    h.submit("rs.toml", &toml).await;
    let w = h.register("w", &[]).await;
    let mut seen = HashSet::new();
    let first = h.acquire(&w, 50).await.unwrap();
    h.complete(&w, &first, "{}").await.unwrap();
    seen.insert(first.job_key.clone());
    let held = h.acquire(&w, 50).await.unwrap();
    seen.insert(held.job_key.clone());

    h.restart().await;
    let hb = h.heartbeat(&w, &[&held]).await;
    assert!(hb.known, "the worker survives the restart");
    assert!(hb.cancel_job_keys.is_empty());
    assert_eq!(h.complete(&w, &held, "{}").await.unwrap(), "succeeded");
    // The same submission again is a resume: nothing new, two jobs already done.
    let again = h.submit("rs.toml", &toml).await;
    assert_eq!(again.jobs_already_done, 2);
    for a in drain(&mut h, &w).await {
        assert!(seen.insert(a.job_key.clone()), "{} ran twice", a.job_key);
    }
    assert_eq!(seen.len(), 1 + 2 + 4);
    assert!(h.status("rs").await.finished);

    // A lease nobody reports on after a restart expires one TTL later.
    h.submit(
        "rs2.toml",
        &grid("rs2", &["none"], r#"["pawsx"]"#, r#"["de"]"#),
    )
    .await;
    let lost = h.acquire(&w, 50).await.unwrap();
    h.restart().await;
    expire_leases(&mut h, "rs2").await;
    let other = h.register("other", &[]).await;
    let again = h.acquire(&other, 5_000).await.unwrap();
    assert_eq!((again.job_key == lost.job_key, again.attempt), (true, 2));
    h.stop().await;
}

/// An assignment whose reply never reached the worker (the leader died between commit and
/// reply) while the worker keeps its lease alive: once a TTL has passed and two heartbeats in a
/// row do not list the job, it goes back to ready without spending budget. A job the worker
/// does list stays with it however long it runs.
pub async fn unlisted_assignment_is_taken_back<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    h.submit(
        "lost.toml",
        &grid("lost", &["none", "mnli"], r#"["xnli"]"#, r#"["de"]"#),
    )
    .await;
    let w = h.register("w", &[]).await;
    let kept = h.acquire(&w, 50).await.unwrap();
    let lost = h.acquire(&w, 50).await.unwrap();
    let leased = |st: &pb::SweepStatus| {
        ["intermediate", "target", "evaluate"]
            .iter()
            .map(|k| jobs(st, k, "leased"))
            .sum::<u64>()
    };
    // Within the grace, and then once past it: still the worker's.
    for step in [TTL_MS / 2, TTL_MS / 2 + 1] {
        h.clock.advance(step);
        let hb = h.heartbeat(&w, &[&kept]).await;
        assert!(hb.known && hb.cancel_job_keys.is_empty(), "{hb:?}");
        assert_eq!(leased(&h.status("lost").await), 2);
    }
    // The second heartbeat in a row without it takes it back.
    h.clock.advance(10);
    h.heartbeat(&w, &[&kept]).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while leased(&h.status("lost").await) != 1 {
        assert!(tokio::time::Instant::now() < deadline, "never taken back");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let other = h.register("other", &[]).await;
    let again = h.acquire(&other, 2_000).await.unwrap();
    assert_eq!((again.job_key == lost.job_key, again.attempt), (true, 2));
    // Budget untouched: the released attempt is not a failure of the job.
    let st = h.status("lost").await;
    assert_eq!(
        jobs(&st, "intermediate", "failed") + jobs(&st, "target", "failed"),
        0
    );
    // The kept job is still the first worker's: its completion is accepted.
    assert_eq!(h.complete(&w, &kept, "{}").await.unwrap(), "succeeded");
    h.stop().await;
}

/// Submitting the same grid twice is a no-op; a different grid under the same name is refused.
pub async fn duplicate_submit_is_idempotent<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    let toml = grid("dup", &["none", "mnli"], r#"["xnli"]"#, r#"["de"]"#);
    let a = h.submit("dup.toml", &toml).await;
    let b = h.submit("dup.toml", &format!("# a comment\n{toml}")).await;
    assert_eq!((a.sweep, a.cells, a.jobs), (b.sweep, b.cells, b.jobs));
    let other = grid("dup", &["none"], r#"["xnli"]"#, r#"["de", "sw"]"#);
    let e = h
        .sweeps
        .submit_sweep(pb::SubmitSweepRequest {
            file_name: "other.toml".into(),
            grid_toml: other,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    let sweeps = h
        .sweeps
        .list_sweeps(pb::ListSweepsRequest {})
        .await
        .unwrap()
        .into_inner()
        .sweeps;
    assert_eq!(sweeps, ["dup"]);
    // A second sweep sharing jobs adds only its new ones and runs the shared ones once.
    let w = h.register("w", &[]).await;
    let done = drain(&mut h, &w).await.len();
    assert_eq!(done, 1 + 2 + 2);
    let wider = grid("wider", &["none", "mnli"], r#"["xnli"]"#, r#"["de", "sw"]"#);
    let s = h.submit("wider.toml", &wider).await;
    assert_eq!(s.jobs_already_done, 1 + 2 + 2);
    assert_eq!(drain(&mut h, &w).await.len(), 2);
    h.stop().await;
}

/// A bad grid is refused with file:line:column and nothing is stored.
pub async fn bad_grid_stores_nothing<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    let bad = grid("bad", &["none", "none"], r#"["xnli"]"#, r#"["de"]"#);
    let e = h
        .sweeps
        .submit_sweep(pb::SubmitSweepRequest {
            file_name: "bad.toml".into(),
            grid_toml: bad,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("bad.toml:9:"), "{}", e.message());
    h.restart().await;
    let sweeps = h
        .sweeps
        .list_sweeps(pb::ListSweepsRequest {})
        .await
        .unwrap();
    assert!(sweeps.into_inner().sweeps.is_empty());
    h.stop().await;
}

/// Cancelling orders running jobs cancelled via heartbeat and finishes the sweep; retry revives.
pub async fn cancel_and_events<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    let mut events = h
        .sweeps
        .stream_events(pb::StreamEventsRequest { sweep: "cx".into() })
        .await
        .unwrap()
        .into_inner();
    h.submit(
        "cx.toml",
        &grid("cx", &["none"], r#"["xnli"]"#, r#"["de", "sw"]"#),
    )
    .await;
    let w = h.register("w", &[]).await;
    let a = h.acquire(&w, 50).await.unwrap();
    let ev = events.message().await.unwrap().unwrap();
    assert_eq!(
        (
            ev.job_key.as_str(),
            ev.from_state.as_str(),
            ev.to_state.as_str()
        ),
        (a.job_key.as_str(), "ready", "leased")
    );
    assert_eq!(ev.worker_id, w);
    let n = h
        .sweeps
        .cancel_sweep(pb::CancelSweepRequest { sweep: "cx".into() })
        .await
        .unwrap()
        .into_inner()
        .jobs_cancelled;
    assert_eq!(n, 3);
    let hb = h.heartbeat(&w, &[&a]).await;
    assert_eq!(hb.cancel_job_keys, vec![a.job_key.clone()]);
    let e = h.complete(&w, &a, "{}").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let st = h.status("cx").await;
    assert!(st.finished);
    assert_eq!(count(&st.cells, "cancelled"), 2);
    let cells = h
        .sweeps
        .list_cells(pb::ListCellsRequest {
            sweep: "cx".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .cells;
    assert_eq!(cells.len(), 2);
    assert!(
        cells
            .iter()
            .all(|c| c.state == "cancelled" && c.job_keys.len() == 2)
    );
    let revived = h
        .sweeps
        .retry_failed(pb::RetryFailedRequest { sweep: "cx".into() })
        .await
        .unwrap()
        .into_inner()
        .jobs_revived;
    assert_eq!(revived, 3);
    assert_eq!(drain(&mut h, &w).await.len(), 3);
    assert!(h.status("cx").await.finished);
    h.stop().await;
}

/// A burn sweep needing a backend no connected worker has stays pending, with the reason in its
/// status, and is never handed to a worker with another backend (nor to one without the
/// trainer), across a restart too; a worker with the backend runs it. The newest sweep that
/// contains a job decides where it runs; re-submitting a sweep for another backend is refused.
pub async fn burn_jobs_wait_for_their_backend<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    h.submit("gpu.toml", &burn_grid("gpu", Some("libtorch-cuda")))
        .await;
    let cpu = h.register_as("cpu-w", "command+burn-cpu", &[]).await;
    let plain = h.register("plain", &[]).await;
    assert!(
        h.acquire(&cpu, 50).await.is_none(),
        "a CPU worker got a CUDA job"
    );
    assert!(
        h.acquire(&plain, 50).await.is_none(),
        "a worker without trainer got a burn job"
    );
    let st = h.status("gpu").await;
    assert_eq!(st.backend, "libtorch-cuda");
    assert_eq!(st.waiting.len(), 1, "{:?}", st.waiting);
    let why = &st.waiting[0];
    assert!(
        why.starts_with("1 ready jobs wait for a worker with backend libtorch-cuda"),
        "{why}"
    );
    assert!(
        why.contains("1 × cpu") && why.contains("1 × no trainer"),
        "{why}"
    );
    assert!(why.contains("--backend libtorch-cuda"), "{why}");
    assert_eq!(count(&st.cells, "failed"), 0);
    assert_eq!(jobs(&st, "target", "ready"), 1);

    h.restart().await;
    assert!(h.acquire(&cpu, 50).await.is_none(), "after a restart");
    assert_eq!(h.status("gpu").await.waiting.len(), 1);

    // The same sweep for another backend: refused, nothing changes.
    let e = h
        .submit_for("gpu.toml", &burn_grid("gpu", Some("libtorch-cuda")), "cpu")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(e.message().contains("libtorch-cuda"), "{}", e.message());
    let e = h
        .submit_for("x.toml", &burn_grid("x", None), "tpu")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let gpu = h
        .register_as("gpu-w", "command+burn-libtorch-cuda:0", &[])
        .await;
    let a = h
        .acquire(&gpu, 1_000)
        .await
        .expect("the GPU worker gets it");
    assert_eq!(kind_and_parent(&a).0, "target");
    assert!(h.status("gpu").await.waiting.is_empty());
    assert_eq!(
        h.complete(&gpu, &a, r#"{"train": {}}"#).await.unwrap(),
        "succeeded"
    );

    // A newer sweep with the same jobs, for the CPU: the waiting evaluate job moves to the CPU.
    assert!(h.acquire(&cpu, 50).await.is_none());
    h.submit_for(
        "gpu2.toml",
        &burn_grid("gpu", Some("libtorch-cuda")).replace("name = \"gpu\"", "name = \"gpu-cpu\""),
        "cpu",
    )
    .await
    .unwrap();
    assert_eq!(h.status("gpu-cpu").await.backend, "cpu");
    let a = h
        .acquire(&cpu, 1_000)
        .await
        .expect("the CPU worker now gets it");
    assert_eq!(kind_and_parent(&a).0, "evaluate");
    assert_eq!(
        h.complete(&cpu, &a, &metrics_for(&a)).await.unwrap(),
        "succeeded"
    );
    assert!(h.status("gpu").await.finished);
    h.stop().await;
}

/// A 100,000-cell sweep (1,000 languages × 100 seeds, one evaluate job per seed) reads back
/// completely through the paged `ListCells` and `GetResults`: every cell and every result row
/// exactly once, in cell order, no page near gRPC's 4 MiB decoding limit.
pub async fn big_sweeps_read_back_in_pages<F: StoreFactory>(f: F) {
    let mut h = Harness::start(f, test_config()).await;
    let langs: Vec<String> = (0..1000).map(|i| format!("\"l{i:04}\"")).collect();
    let seeds: Vec<String> = (1..=100).map(|s| s.to_string()).collect();
    let toml = grid(
        "big",
        &["none"],
        r#"["xnli"]"#,
        &format!("[{}]", langs.join(", ")),
    )
    .replace("seeds = [1]", &format!("seeds = [{}]", seeds.join(", ")))
    .replace("languages_per_job = 1", "languages_per_job = 0");
    let sub = h.submit("big.toml", &toml).await;
    assert_eq!((sub.cells, sub.jobs), (100_000, 200));
    let w = h.register("w", &[]).await;
    assert_eq!(drain(&mut h, &w).await.len(), 200);

    let (mut offset, mut cells, mut pages, mut largest) = (0, Vec::new(), 0, 0);
    loop {
        let page = h
            .sweeps
            .list_cells(pb::ListCellsRequest {
                sweep: "big".into(),
                offset,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total, 100_000);
        largest = largest.max(prost::Message::encoded_len(&page));
        pages += 1;
        cells.extend(page.cells);
        if page.next_offset == 0 {
            break;
        }
        assert_eq!(page.next_offset, cells.len() as u64, "pages are contiguous");
        offset = page.next_offset;
    }
    assert_eq!(cells.len(), 100_000);
    assert!(cells.iter().all(|c| c.state == "succeeded"));
    assert!(pages > 1, "one page of 100,000 cells");
    assert!(largest < 2 << 20, "a page of {largest} bytes");

    let (mut offset, mut rows, mut largest) = (0, Vec::new(), 0);
    loop {
        let page = h
            .sweeps
            .get_results(pb::GetResultsRequest {
                sweep: "big".into(),
                offset,
            })
            .await
            .unwrap()
            .into_inner();
        largest = largest.max(prost::Message::encoded_len(&page));
        rows.extend(page.rows);
        if page.next_offset == 0 {
            break;
        }
        offset = page.next_offset;
    }
    assert!(largest < 2 << 20, "a page of {largest} bytes");
    // Two metrics per cell (accuracy, f1), each cell exactly once.
    assert_eq!(rows.len(), 200_000);
    let distinct: HashSet<(String, u64, String)> = rows
        .iter()
        .map(|r| (r.language.clone(), r.seed, r.metric.clone()))
        .collect();
    assert_eq!(distinct.len(), 200_000);
    h.stop().await;
}

/// Compute accounting through the real write path: each attempt's wall time (manual clock) is
/// added by the write that ends it, a failed attempt counts as lost, the GPU worker's time is GPU
/// time, the savings against training every cell from scratch are exact, everything survives a
/// restart, and a second sweep over the same jobs spent nothing and reused all of them.
pub async fn compute_is_accounted_and_survives_restart<F: StoreFactory>(factory: F) {
    let cfg = stilts_coordinator::config::CoordinatorConfig {
        lease_ttl: std::time::Duration::from_secs(10_000),
        ..test_config()
    };
    let mut h = Harness::start(factory, cfg).await;
    let toml = grid("cost", &["none", "mnli"], r#"["xnli"]"#, r#"["de", "fr"]"#);
    h.submit("cost.toml", &toml).await;
    let worker = h
        .workers
        .register_worker(pb::RegisterWorkerRequest {
            name: "gpu-box".into(),
            slots: 1,
            backend: "command".into(),
            labels: [("device".to_string(), "NVIDIA H100".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .worker_id;
    let mut failed_once = false;
    for _ in 0..100 {
        let Some(a) = h.acquire(&worker, 20).await else {
            if h.status("cost").await.finished {
                break;
            }
            h.clock.advance(5_000); // backoff
            continue;
        };
        let kind = kind_and_parent(&a).0;
        if kind == "intermediate" && !failed_once {
            failed_once = true;
            h.clock.advance(50_000);
            h.fail(&worker, &a, true).await.unwrap();
            continue;
        }
        h.clock.advance(match kind.as_str() {
            "intermediate" => 100_000,
            "target" => 10_000,
            _ => 1_000,
        });
        h.complete(&worker, &a, &metrics_for_kind(&a))
            .await
            .unwrap();
    }
    assert!(failed_once);
    let check = |c: &pb::SweepCompute| {
        // 1 intermediate (50 s lost + 100 s), 2 targets, 4 evaluate jobs.
        assert_eq!(c.spent_ms, 150_000 + 20_000 + 4_000);
        assert_eq!(c.gpu_ms, c.spent_ms);
        assert_eq!(c.lost_ms, 50_000);
        // Cells: 2 baseline (10 s each), 2 mnli (110 s each); each job once: 120 s.
        assert_eq!(c.naive_training_ms, 240_000);
        assert_eq!(c.planned_training_ms, 120_000);
        assert_eq!(c.saved_ms, 120_000);
        let mnli = c
            .axes
            .iter()
            .find(|a| a.axis == "intermediate" && a.value == "mnli")
            .unwrap();
        assert_eq!(mnli.spent_ms, 150_000 + 10_000 + 2_000);
    };
    let status = h.status("cost").await;
    check(status.compute.as_ref().unwrap());
    h.restart().await;
    check(h.status("cost").await.compute.as_ref().unwrap());

    h.clock.advance(1);
    let again = grid("cost2", &["none", "mnli"], r#"["xnli"]"#, r#"["de", "fr"]"#);
    h.submit("cost2.toml", &again).await;
    let c = h.status("cost2").await.compute.unwrap();
    assert_eq!(c.spent_ms, 0, "every job was trained by the earlier sweep");
    assert_eq!(c.reused_training_ms, 120_000);
    assert_eq!(c.saved_ms, 240_000);
    h.stop().await;
}
