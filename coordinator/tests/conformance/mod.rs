//! The `Store` conformance suite: every backend (SQLite, etcd, the in-memory test store) must
//! pass every function here. A backend instantiates it with a [`StoreFactory`] and
//! [`store_conformance_suite!`], which expands one `#[tokio::test]` per suite function, and one
//! `#[test]` that fails when a `pub async fn` here is missing from the macro's list:
//!
//! ```ignore
//! mod conformance;
//! mod store_factory;
//! store_conformance_suite!(MyFactory::default());
//! ```
//!
//! The suite asserts only what the `Store` docs promise: versions grow on every write (the
//! SQLite-specific tests check the exact `+1`), event sequence numbers grow, and so on.

pub mod fixtures;

use stilts_common::series::Point;
use stilts_common::state::JobState;
use stilts_common::store::{Conflict, CurveRecord, JobRecord, Snapshot, Store, StoreError};

use self::fixtures::{LANGUAGES, completed, evaluate_key, failed, grid, intermediate_key};
use self::fixtures::{transition, worker};
use crate::store_factory::StoreFactory;

/// Expands one `#[tokio::test]` per suite function, each calling it with a fresh `$factory`, and
/// `every_suite_function_is_listed`, which fails when a `pub async fn` of this file is not in the
/// list below.
#[macro_export]
macro_rules! store_conformance_suite {
    ($factory:expr) => {
        $crate::store_conformance_suite!(@tests $factory;
            submit_load_round_trip,
            resubmit_same_digest_is_a_no_op,
            resubmit_other_digest_is_sweep_exists,
            shared_jobs_are_inserted_once,
            cas_success_bumps_version,
            stale_cas_conflicts_and_changes_nothing,
            unknown_job_conflicts_with_actual_zero,
            batch_with_one_conflict_applies_the_others,
            empty_batch_is_a_no_op,
            records_round_trip_every_field,
            events_are_ordered_and_page,
            workers_put_replace_remove,
            cells_keep_submission_order,
            set_sweep_cancelled_round_trips,
            state_persists_across_reopen,
            curves_are_per_attempt_replaced_and_survive_reopen,
            delete_keeps_shared_jobs_and_purge_removes_orphans,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::conformance::$name($factory).await;
            }
        )*

        #[test]
        fn every_suite_function_is_listed() {
            $crate::store_factory::assert_every_suite_function_is_listed(
                "conformance/mod.rs",
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/mod.rs")),
                &[$(stringify!($name)),*],
            );
        }
    };
}

async fn load<S: Store>(store: &S) -> Snapshot {
    store.load().await.expect("load")
}

/// The stored job `key`, with its sweeps (sorted).
fn stored(snap: &Snapshot, key: &str) -> (JobRecord, Vec<String>) {
    let (job, sweeps) = snap
        .jobs
        .iter()
        .find(|(j, _)| j.key == key)
        .unwrap_or_else(|| panic!("job {key} not in snapshot"));
    let mut sweeps = sweeps.clone();
    sweeps.sort();
    (job.clone(), sweeps)
}

/// The snapshot's jobs in a backend-independent order (by key, sweeps sorted).
fn jobs_sorted(snap: &Snapshot) -> Vec<(JobRecord, Vec<String>)> {
    let mut jobs: Vec<_> = snap
        .jobs
        .iter()
        .map(|(j, _)| stored(snap, &j.key))
        .collect();
    jobs.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    jobs
}

/// `job` as submitted vs as stored: equal but for the version, which must be set.
fn assert_same_but_version(submitted: &JobRecord, stored: &JobRecord) {
    assert!(stored.version > 0, "{}: stored version is 0", stored.key);
    let mut expected = submitted.clone();
    expected.version = stored.version;
    assert_eq!(&expected, stored);
}

async fn submitted<S: Store>(store: &S, name: &str, targets: &[&str]) -> Snapshot {
    let (sweep, jobs, cells) = grid(name, &format!("digest-{name}"), targets);
    let outcome = store.submit(sweep, jobs, cells).await.expect("submit");
    assert!(outcome.sweep_created);
    load(store).await
}

pub async fn submit_load_round_trip<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let (sweep, jobs, cells) = grid("s1", "d1", &["xnli", "pawsx"]);
    let outcome = store
        .submit(sweep.clone(), jobs.clone(), cells.clone())
        .await
        .unwrap();
    assert!(outcome.sweep_created);
    assert_eq!(outcome.jobs_inserted, jobs.len() as u64);
    assert!(outcome.already_stored.is_empty());
    let snap = load(&store).await;
    assert_eq!(snap.sweeps, vec![sweep]);
    assert_eq!(snap.jobs.len(), jobs.len());
    for job in &jobs {
        let (got, sweeps) = stored(&snap, &job.key);
        assert_same_but_version(job, &got);
        // The contract the coordinator relies on instead of reading every job back.
        assert_eq!(got.version, 1, "a new job is stored at version 1");
        assert_eq!(sweeps, vec!["s1".to_string()]);
    }
    assert!(snap.workers.is_empty());
    assert_eq!(snap.last_event_seq, 0);
    assert_eq!(store.cells("s1").await.unwrap(), cells);
}

pub async fn resubmit_same_digest_is_a_no_op<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let before = submitted(&store, "s1", &["xnli"]).await;
    let (sweep, jobs, cells) = grid("s1", "digest-s1", &["xnli"]);
    let again = store.submit(sweep, jobs, cells.clone()).await.unwrap();
    assert!(!again.sweep_created);
    assert_eq!(again.jobs_inserted, 0);
    let after = load(&store).await;
    assert_eq!(after.sweeps, before.sweeps);
    assert_eq!(jobs_sorted(&after), jobs_sorted(&before));
    assert_eq!(store.cells("s1").await.unwrap(), cells, "cells duplicated");
}

pub async fn resubmit_other_digest_is_sweep_exists<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let before = submitted(&store, "s1", &["xnli"]).await;
    let (sweep, jobs, cells) = grid("s1", "another-digest", &["pawsx"]);
    match store.submit(sweep, jobs, cells).await {
        Err(StoreError::SweepExists { name, existing }) => {
            assert_eq!(name, "s1");
            assert_eq!(existing, "digest-s1");
        }
        other => panic!("expected SweepExists, got {other:?}"),
    }
    let after = load(&store).await;
    assert_eq!(after.sweeps, before.sweeps);
    assert_eq!(
        jobs_sorted(&after),
        jobs_sorted(&before),
        "a refused submit wrote jobs"
    );
}

pub async fn shared_jobs_are_inserted_once<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let first = submitted(&store, "a", &["xnli"]).await;
    let (sweep, jobs, cells) = grid("b", "digest-b", &["pawsx"]);
    let outcome = store.submit(sweep, jobs.clone(), cells).await.unwrap();
    assert!(outcome.sweep_created);
    // Two intermediate jobs are shared; each seed adds one target and one evaluate job.
    assert_eq!(outcome.jobs_inserted, jobs.len() as u64 - 2);
    let mut already = outcome.already_stored.clone();
    already.sort();
    let mut shared = vec![intermediate_key(1), intermediate_key(2)];
    shared.sort();
    assert_eq!(already, shared, "the jobs found stored are reported");
    let snap = load(&store).await;
    assert_eq!(snap.jobs.len(), first.jobs.len() + jobs.len() - 2);
    for seed in [1, 2] {
        let key = intermediate_key(seed);
        let (job, sweeps) = stored(&snap, &key);
        assert_eq!(sweeps, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(job, stored(&first, &key).0, "re-inserting rewrote {key}");
    }
    let (_, sweeps) = stored(&snap, &evaluate_key("pawsx", 1));
    assert_eq!(sweeps, vec!["b".to_string()]);
}

pub async fn cas_success_bumps_version<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let snap = submitted(&store, "s1", &["xnli"]).await;
    let (job, _) = stored(&snap, &intermediate_key(1));
    let update = transition(&job, JobState::Leased, "w1", 10);
    let got = store.update_jobs(vec![update.clone()]).await.unwrap();
    let new_version = *got[0].as_ref().expect("cas succeeds");
    assert!(new_version > job.version);
    let (after, _) = stored(&load(&store).await, &job.key);
    let mut expected = update.record;
    expected.version = new_version;
    assert_eq!(after, expected);
    // The new version is the next write's token.
    let next = transition(&after, JobState::Succeeded, "w1", 11);
    let got = store.update_jobs(vec![next]).await.unwrap();
    assert!(*got[0].as_ref().unwrap() > new_version);
}

pub async fn stale_cas_conflicts_and_changes_nothing<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let snap = submitted(&store, "s1", &["xnli"]).await;
    let (job, _) = stored(&snap, &intermediate_key(1));
    let won = store
        .update_jobs(vec![transition(&job, JobState::Leased, "w1", 10)])
        .await
        .unwrap();
    let current = *won[0].as_ref().unwrap();
    let before = load(&store).await;
    let events_before = store.events_after(0, 1000).await.unwrap();
    // A second writer that read the same old version loses.
    let lost = store
        .update_jobs(vec![transition(&job, JobState::Cancelled, "w2", 20)])
        .await
        .unwrap();
    assert_eq!(
        lost,
        vec![Err(Conflict {
            key: job.key.clone(),
            expected: job.version,
            actual: current,
        })]
    );
    let after = load(&store).await;
    assert_eq!(jobs_sorted(&after), jobs_sorted(&before));
    assert_eq!(after.last_event_seq, before.last_event_seq);
    assert_eq!(store.events_after(0, 1000).await.unwrap(), events_before);
}

pub async fn unknown_job_conflicts_with_actual_zero<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let snap = submitted(&store, "s1", &["xnli"]).await;
    let (mut job, _) = stored(&snap, &intermediate_key(1));
    job.key = "no-such-job".into();
    let got = store
        .update_jobs(vec![transition(&job, JobState::Leased, "w1", 10)])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![Err(Conflict {
            key: "no-such-job".into(),
            expected: job.version,
            actual: 0,
        })]
    );
    assert_eq!(jobs_sorted(&load(&store).await), jobs_sorted(&snap));
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
}

pub async fn batch_with_one_conflict_applies_the_others<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let snap = submitted(&store, "s1", &["xnli"]).await;
    let (a, _) = stored(&snap, &intermediate_key(1));
    let (b, _) = stored(&snap, &intermediate_key(2));
    let (c, _) = stored(&snap, &evaluate_key("xnli", 1));
    let mut stale = transition(&b, JobState::Leased, "w1", 10);
    stale.expected_version = b.version + 7;
    let batch = vec![
        transition(&a, JobState::Leased, "w1", 10),
        stale,
        transition(&c, JobState::Cancelled, "user", 10),
    ];
    let got = store.update_jobs(batch).await.unwrap();
    assert_eq!(got.len(), 3);
    assert!(got[0].is_ok() && got[2].is_ok(), "{got:?}");
    assert_eq!(
        got[1],
        Err(Conflict {
            key: b.key.clone(),
            expected: b.version + 7,
            actual: b.version,
        })
    );
    let after = load(&store).await;
    assert_eq!(stored(&after, &a.key).0.status.state, JobState::Leased);
    assert_eq!(stored(&after, &b.key).0, b);
    assert_eq!(stored(&after, &c.key).0.status.state, JobState::Cancelled);
    let events = store.events_after(0, 10).await.unwrap();
    let keys: Vec<_> = events.iter().map(|e| e.job_key.as_str()).collect();
    assert_eq!(keys, vec![a.key.as_str(), c.key.as_str()]);
}

pub async fn empty_batch_is_a_no_op<F: StoreFactory>(f: F) {
    let store = f.open().await;
    assert!(store.update_jobs(Vec::new()).await.unwrap().is_empty());
}

pub async fn records_round_trip_every_field<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let snap = submitted(&store, "s1", &["xnli"]).await;
    let (eval, _) = stored(&snap, &evaluate_key("xnli", 1));
    let (inter, _) = stored(&snap, &intermediate_key(2));
    let mut updates = vec![
        transition(&eval, JobState::Succeeded, "w1", 5),
        transition(&inter, JobState::Failed, "w1", 6),
    ];
    updates[0].record = completed(&eval, 81.5);
    updates[1].record = failed(&inter);
    updates[1].event = None;
    let got = store.update_jobs(updates.clone()).await.unwrap();
    let after = load(&store).await;
    for (update, version) in updates.into_iter().zip(got) {
        let mut expected = update.record;
        expected.version = version.unwrap();
        assert_eq!(stored(&after, &expected.key).0, expected);
    }
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), 1);
}

pub async fn events_are_ordered_and_page<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let snap = submitted(&store, "s1", &["xnli"]).await;
    let jobs: Vec<JobRecord> = snap.jobs.iter().map(|(j, _)| j.clone()).collect();
    // Five events over three calls, one of them a batch.
    let mut written = Vec::new();
    for (i, batch) in [&jobs[0..1], &jobs[1..4], &jobs[4..5]]
        .into_iter()
        .enumerate()
    {
        let updates: Vec<_> = batch
            .iter()
            .map(|j| transition(j, JobState::Cancelled, "user", 100 + i as u64))
            .collect();
        written.extend(updates.iter().map(|u| u.event.clone().unwrap()));
        for r in store.update_jobs(updates).await.unwrap() {
            r.unwrap();
        }
    }
    let all = store.events_after(0, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "{all:?}");
    for (got, sent) in all.iter().zip(&written) {
        let mut sent = sent.clone();
        sent.seq = got.seq;
        assert_eq!(got, &sent);
    }
    assert_eq!(load(&store).await.last_event_seq, all[4].seq);
    assert_eq!(store.events_after(0, 2).await.unwrap(), all[0..2]);
    assert_eq!(store.events_after(all[1].seq, 2).await.unwrap(), all[2..4]);
    assert_eq!(store.events_after(all[3].seq, 2).await.unwrap(), all[4..]);
    assert!(store.events_after(all[4].seq, 2).await.unwrap().is_empty());
    assert!(store.events_after(0, 0).await.unwrap().is_empty());
}

pub async fn workers_put_replace_remove<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let (w1, w2) = (worker("w1", 2), worker("w2", 4));
    store.put_worker(w1.clone()).await.unwrap();
    store.put_worker(w2.clone()).await.unwrap();
    let mut renewed = w1.clone();
    renewed.lease_expires_at_ms += 5_000;
    renewed.cached_artifacts.push(evaluate_key("xnli", 1));
    store.put_worker(renewed.clone()).await.unwrap();
    let mut workers = load(&store).await.workers;
    workers.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(workers, vec![renewed, w2.clone()]);
    store.remove_worker("w1").await.unwrap();
    store.remove_worker("never-registered").await.unwrap();
    assert_eq!(load(&store).await.workers, vec![w2]);
}

pub async fn cells_keep_submission_order<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let (sweep, jobs, cells) = grid("s1", "d1", &["xnli", "pawsx"]);
    assert_ne!(
        cells[0].language, LANGUAGES[0],
        "fixture cells must be unsorted"
    );
    store.submit(sweep, jobs, cells.clone()).await.unwrap();
    let (sweep, jobs, other) = grid("s2", "d2", &["tydiqa"]);
    store.submit(sweep, jobs, other.clone()).await.unwrap();
    assert_eq!(store.cells("s1").await.unwrap(), cells);
    assert_eq!(store.cells("s2").await.unwrap(), other);
    match store.cells("nope").await {
        Err(StoreError::SweepNotFound(name)) => assert_eq!(name, "nope"),
        other => panic!("expected SweepNotFound, got {other:?}"),
    }
}

pub async fn set_sweep_cancelled_round_trips<F: StoreFactory>(f: F) {
    let store = f.open().await;
    submitted(&store, "s1", &["xnli"]).await;
    submitted(&store, "s2", &["pawsx"]).await;
    let cancelled = |snap: &Snapshot, name: &str| {
        snap.sweeps
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .cancelled
    };
    store.set_sweep_cancelled("s1", true).await.unwrap();
    let snap = load(&store).await;
    assert!(cancelled(&snap, "s1") && !cancelled(&snap, "s2"));
    store.set_sweep_cancelled("s1", false).await.unwrap();
    assert!(!cancelled(&load(&store).await, "s1"));
    match store.set_sweep_cancelled("nope", true).await {
        Err(StoreError::SweepNotFound(name)) => assert_eq!(name, "nope"),
        other => panic!("expected SweepNotFound, got {other:?}"),
    }
}

pub async fn state_persists_across_reopen<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let snap = submitted(&store, "s1", &["xnli"]).await;
    submitted(&store, "s2", &["xnli", "pawsx"]).await;
    store.set_sweep_cancelled("s2", true).await.unwrap();
    let (eval, _) = stored(&snap, &evaluate_key("xnli", 2));
    let mut update = transition(&eval, JobState::Succeeded, "w1", 7);
    update.record = completed(&eval, 70.0);
    store.update_jobs(vec![update]).await.unwrap()[0]
        .as_ref()
        .unwrap();
    store.put_worker(worker("w1", 2)).await.unwrap();
    let before = load(&store).await;
    let events = store.events_after(0, 100).await.unwrap();
    let cells = store.cells("s2").await.unwrap();

    let store = f.reopen(store).await;
    let after = load(&store).await;
    assert_eq!(after.sweeps, before.sweeps);
    assert_eq!(jobs_sorted(&after), jobs_sorted(&before));
    assert_eq!(after.workers, before.workers);
    assert_eq!(after.last_event_seq, before.last_event_seq);
    assert_eq!(store.events_after(0, 100).await.unwrap(), events);
    assert_eq!(store.cells("s2").await.unwrap(), cells);
    // Versions read before the restart are still valid tokens, and sequence numbers go on.
    let (job, _) = stored(&before, &intermediate_key(1));
    let got = store
        .update_jobs(vec![transition(&job, JobState::Leased, "w1", 8)])
        .await
        .unwrap();
    assert!(*got[0].as_ref().unwrap() > job.version);
    let last = store.events_after(before.last_event_seq, 10).await.unwrap();
    assert_eq!(last.len(), 1);
    assert!(last[0].seq > before.last_event_seq);
}

/// Curves: one per attempt, a put replaces the attempt's curve, NaN survives, a job's curves come
/// back oldest attempt first, other jobs' curves stay apart, and everything survives a reopen.
pub async fn curves_are_per_attempt_replaced_and_survive_reopen<F: StoreFactory>(f: F) {
    let store = f.open().await;
    let job = intermediate_key(1);
    let curve = |attempt: u32, steps: u64| CurveRecord {
        job_key: job.clone(),
        attempt,
        points: (1..=steps)
            .map(|step| Point {
                step,
                loss: Some(if step == 2 {
                    f64::NAN
                } else {
                    1.0 / step as f64
                }),
                lr: Some(1e-5),
                grad_norm: None,
                dev: (step == steps).then_some(80.5),
            })
            .collect(),
    };
    assert!(store.curves(&job).await.unwrap().is_empty());
    store.put_curve(curve(2, 3)).await.unwrap();
    store.put_curve(curve(1, 2)).await.unwrap();
    store.put_curve(curve(1, 5)).await.unwrap();
    store
        .put_curve(CurveRecord {
            job_key: format!("{job}x"),
            ..curve(1, 1)
        })
        .await
        .unwrap();
    let check = |got: Vec<CurveRecord>| {
        let attempts: Vec<(u32, usize)> = got.iter().map(|c| (c.attempt, c.points.len())).collect();
        assert_eq!(attempts, vec![(1, 5), (2, 3)]);
        assert!(got.iter().all(|c| c.job_key == job));
        let p = got[0].points[1];
        assert!(p.loss.unwrap().is_nan(), "NaN kept: {p:?}");
        assert_eq!(got[0].points[4].dev, Some(80.5));
        assert_eq!(got[1].points[0], curve(2, 3).points[0]);
    };
    check(store.curves(&job).await.unwrap());
    let store = f.reopen(store).await;
    check(store.curves(&job).await.unwrap());
}

/// Deleting a sweep removes its record, cells and memberships and keeps every job; the jobs it
/// shared keep their other sweep. The name can be submitted again (nothing new is inserted).
/// `purge` then removes the jobs of no sweep, with their curves, except a leased one; the other
/// sweep is untouched, and everything holds across a reopen and a compaction.
pub async fn delete_keeps_shared_jobs_and_purge_removes_orphans<F: StoreFactory>(f: F) {
    let store = f.open().await;
    submitted(&store, "a", &["xnli"]).await;
    let before = submitted(&store, "b", &["pawsx"]).await;
    let (_, a_jobs, a_cells) = grid("a", "digest-a", &["xnli"]);
    let (_, _, b_cells) = grid("b", "digest-b", &["pawsx"]);
    let leased = stored(&before, "target:xnli:1").0;
    store
        .update_jobs(vec![transition(&leased, JobState::Leased, "w1", 10)])
        .await
        .unwrap()[0]
        .as_ref()
        .expect("lease");
    let curve = |job: &str| CurveRecord {
        job_key: job.to_string(),
        attempt: 1,
        points: vec![Point {
            step: 1,
            loss: Some(0.5),
            lr: None,
            grad_norm: None,
            dev: None,
        }],
    };
    store
        .put_curve(curve(&evaluate_key("xnli", 2)))
        .await
        .unwrap();
    store.put_curve(curve(&intermediate_key(2))).await.unwrap();

    let out = store.delete_sweep("a", false).await.unwrap();
    assert_eq!(out.cells, a_cells.len() as u64);
    assert_eq!(out.jobs, a_jobs.len() as u64);
    assert!(out.purged.is_empty());
    let snap = load(&store).await;
    assert_eq!(
        snap.sweeps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(
        snap.jobs.len(),
        before.jobs.len(),
        "a delete without purge keeps every job"
    );
    assert_eq!(stored(&snap, &intermediate_key(1)).1, vec!["b".to_string()]);
    assert!(stored(&snap, &evaluate_key("xnli", 1)).1.is_empty());
    assert!(matches!(
        store.cells("a").await,
        Err(StoreError::SweepNotFound(_))
    ));
    assert_eq!(store.cells("b").await.unwrap(), b_cells);
    assert!(matches!(
        store.delete_sweep("a", false).await,
        Err(StoreError::SweepNotFound(_))
    ));

    let (sweep, jobs, cells) = grid("a", "digest-a", &["xnli"]);
    let again = store.submit(sweep, jobs, cells).await.unwrap();
    assert!(again.sweep_created, "a deleted name can be submitted again");
    assert_eq!(again.jobs_inserted, 0, "its jobs were kept");
    assert_eq!(store.cells("a").await.unwrap(), a_cells);

    let out = store.delete_sweep("a", true).await.unwrap();
    // a's own jobs: target and evaluate of xnli for seeds 1 and 2, but the leased target stays.
    let mut expect = vec![
        evaluate_key("xnli", 1),
        evaluate_key("xnli", 2),
        "target:xnli:2".to_string(),
    ];
    expect.sort();
    assert_eq!(out.purged, expect);
    let check = |snap: &Snapshot| {
        assert_eq!(snap.jobs.len(), before.jobs.len() - 3);
        for k in &expect {
            assert!(snap.jobs.iter().all(|(j, _)| &j.key != k), "{k} purged");
        }
        let (job, sweeps) = stored(snap, "target:xnli:1");
        assert_eq!(
            job.status.state,
            JobState::Leased,
            "a leased job is never purged"
        );
        assert!(sweeps.is_empty());
        assert_eq!(stored(snap, &intermediate_key(2)).1, vec!["b".to_string()]);
    };
    check(&load(&store).await);
    assert!(
        store
            .curves(&evaluate_key("xnli", 2))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.curves(&intermediate_key(2)).await.unwrap().len(), 1);
    let said = store.compact().await.unwrap();
    assert!(!said.is_empty());
    let store = f.reopen(store).await;
    check(&load(&store).await);
    assert_eq!(store.cells("b").await.unwrap(), b_cells);
}
