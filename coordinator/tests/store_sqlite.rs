//! The SQLite store: the conformance suite, plus what only SQLite promises (exact versions, the
//! `results` table and `cell_results` view, schema versioning, durability across kill -9).

mod conformance;
mod store_factory;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stilts_common::state::JobState;
use stilts_common::store::{JobUpdate, Store, StoreError};
use stilts_coordinator::store::sqlite::{SqliteError, SqliteOptions, SqliteStore, Synchronous};
use tempfile::TempDir;

use conformance::fixtures::{completed, evaluate_key, grid, intermediate_key, transition};
use store_factory::{SqliteFactory, StoreFactory};

store_conformance_suite!(SqliteFactory::default());

/// A store at a fresh path with sweep "s1" (targets xnli) submitted.
async fn with_sweep() -> (SqliteFactory, SqliteStore) {
    let f = SqliteFactory::default();
    let store = f.open().await;
    let (sweep, jobs, cells) = grid("s1", "d1", &["xnli"]);
    store.submit(sweep, jobs, cells).await.unwrap();
    (f, store)
}

fn sql(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test]
async fn versions_start_at_one_and_grow_by_one() {
    let (_f, store) = with_sweep().await;
    let snap = store.load().await.unwrap();
    assert!(snap.jobs.iter().all(|(j, _)| j.version == 1));
    let job = &snap.jobs[0].0;
    let got = store
        .update_jobs(vec![transition(job, JobState::Cancelled, "u", 1)])
        .await
        .unwrap();
    assert_eq!(got, vec![Ok(2)]);
}

#[tokio::test]
async fn expecting_version_zero_creates_a_missing_job() {
    let (_f, store) = with_sweep().await;
    let snap = store.load().await.unwrap();
    let mut job = snap.jobs[0].0.clone();
    job.key = "created-by-update".into();
    job.version = 0;
    let got = store
        .update_jobs(vec![transition(&job, JobState::Ready, "u", 1)])
        .await
        .unwrap();
    assert_eq!(got, vec![Ok(1)]);
    let snap = store.load().await.unwrap();
    let (stored, sweeps) = snap.jobs.iter().find(|(j, _)| j.key == job.key).unwrap();
    assert_eq!(stored.version, 1);
    assert!(sweeps.is_empty());
}

/// A transition writes the state columns only: the stored spec (fixed by the key) is kept as
/// it was, and the compare-and-set still fails on a stale or missing version.
#[tokio::test]
async fn transitions_keep_the_stored_spec_and_check_the_version() {
    let (f, store) = with_sweep().await;
    let snap = store.load().await.unwrap();
    let job = snap.jobs[0].0.clone();
    let spec_before: String = sql(&f.path())
        .query_row(
            "SELECT spec_json FROM jobs WHERE key = ?1",
            [&job.key],
            |r| r.get(0),
        )
        .unwrap();
    let mut stale = transition(&job, JobState::Cancelled, "u", 1);
    stale.expected_version = 7;
    let mut missing = transition(&job, JobState::Cancelled, "u", 1);
    missing.record.key = "not-stored".into();
    let got = store
        .update_jobs(vec![
            stale,
            missing,
            transition(&job, JobState::Leased, "w1", 2),
        ])
        .await
        .unwrap();
    assert_eq!(got[0].as_ref().unwrap_err().actual, 1);
    assert_eq!(got[1].as_ref().unwrap_err().actual, 0);
    assert_eq!(got[2], Ok(2));
    let (state, worker, spec_after): (String, String, String) = sql(&f.path())
        .query_row(
            "SELECT state, worker_id, spec_json FROM jobs WHERE key = ?1",
            [&job.key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((state.as_str(), worker.as_str()), ("leased", "w1"));
    assert_eq!(spec_after, spec_before);
    let snap = store.load().await.unwrap();
    let stored = snap.jobs.iter().find(|(j, _)| j.key == job.key).unwrap();
    assert_eq!(stored.0.spec, job.spec);
    assert_eq!(stored.0.version, 2);
}

#[tokio::test]
async fn results_rows_are_written_once_and_queryable_per_cell() {
    let (f, store) = with_sweep().await;
    let snap = store.load().await.unwrap();
    let key = evaluate_key("xnli", 1);
    let eval = snap
        .jobs
        .iter()
        .find(|(j, _)| j.key == key)
        .unwrap()
        .0
        .clone();
    let mut first = transition(&eval, JobState::Succeeded, "w1", 1);
    first.record = completed(&eval, 80.0);
    assert_eq!(
        store.update_jobs(vec![first.clone()]).await.unwrap(),
        vec![Ok(2)]
    );
    // A later write with other metrics leaves the results as first recorded.
    let mut second = first.clone();
    second.expected_version = 2;
    second.record = completed(&eval, 10.0);
    assert_eq!(store.update_jobs(vec![second]).await.unwrap(), vec![Ok(3)]);

    let db = sql(&f.path());
    let mut rows: Vec<(String, String, f64)> = db
        .prepare("SELECT language, metric, value FROM results WHERE job_key = ?1")
        .unwrap()
        .query_map([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let expected = [
        ("de", "accuracy", 80.0),
        ("de", "f1", 79.0),
        ("sw", "accuracy", 70.0),
    ];
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (row, (l, m, v)) in rows.iter().zip(expected) {
        assert_eq!((row.0.as_str(), row.1.as_str(), row.2), (l, m, v));
    }
    let total: i64 = db
        .query_row("SELECT count(*) FROM results", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total, 4, "no other job has results");
    let cell: (String, String, f64) = db
        .query_row(
            "SELECT target, language, value FROM cell_results \
             WHERE sweep = 's1' AND seed = 1 AND language = 'sw' AND metric = 'f1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(cell, ("xnli".to_string(), "sw".to_string(), 69.0));
    let per_cell: i64 = db
        .query_row("SELECT count(*) FROM cell_results", [], |r| r.get(0))
        .unwrap();
    assert_eq!(per_cell, 4, "2 cells (de, sw) × 2 metrics");
}

#[tokio::test]
async fn file_is_wal_with_a_schema_version_and_consistent() {
    let (f, store) = with_sweep().await;
    store.integrity_check().await.unwrap();
    let db = sql(&f.path());
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, stilts_coordinator::store::sqlite::SCHEMA_VERSION);
}

#[tokio::test]
async fn full_synchronous_mode_opens_and_writes() {
    let f = SqliteFactory::default();
    let opts = SqliteOptions {
        synchronous: Synchronous::Full,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(f.path(), opts).unwrap();
    let (sweep, jobs, cells) = grid("s1", "d1", &["xnli"]);
    assert!(
        store
            .submit(sweep, jobs, cells)
            .await
            .unwrap()
            .sweep_created
    );
    drop(store);
    let store = SqliteStore::open(f.path()).unwrap();
    assert_eq!(store.load().await.unwrap().jobs.len(), 6);
}

/// Files of versions 1 (before sweeps recorded their backend), 2 (before curves) and 3 (before
/// compute accounting) open, are upgraded in place step by step, and keep their sweeps and jobs;
/// old sweeps need no particular backend, old jobs have no usage recorded, and curves and usage
/// can be written after the upgrade.
#[tokio::test]
async fn older_files_are_upgraded_in_place() {
    for (version, downgrade) in [
        (
            1,
            "ALTER TABLE sweeps DROP COLUMN backend; DROP TABLE curves; \
             ALTER TABLE jobs DROP COLUMN usage_json; ALTER TABLE sweeps DROP COLUMN complete; \
             PRAGMA user_version = 1",
        ),
        (
            2,
            "DROP TABLE curves; ALTER TABLE jobs DROP COLUMN usage_json; \
             ALTER TABLE sweeps DROP COLUMN complete; PRAGMA user_version = 2",
        ),
        (
            3,
            "ALTER TABLE jobs DROP COLUMN usage_json; ALTER TABLE sweeps DROP COLUMN complete; \
             PRAGMA user_version = 3",
        ),
    ] {
        let (f, store) = with_sweep().await;
        drop(store);
        let db = sql(&f.path());
        db.execute_batch(downgrade).unwrap();
        drop(db);
        let store = SqliteStore::open(f.path()).unwrap();
        let snap = store.load().await.unwrap();
        assert_eq!(snap.sweeps.len(), 1, "from version {version}");
        if version == 1 {
            // Before version 2 a sweep recorded no backend: it needs none in particular.
            assert_eq!(snap.sweeps[0].backend, "");
        }
        assert_eq!(snap.jobs.len(), 6);
        assert!(snap.jobs.iter().all(|(j, _)| j.usage == Default::default()));
        let mut job = snap.jobs[0].0.clone();
        let expected = job.version;
        job.usage.total_ms = 42;
        store
            .update_jobs(vec![stilts_common::store::JobUpdate {
                expected_version: expected,
                record: job.clone(),
                event: None,
            }])
            .await
            .unwrap()[0]
            .as_ref()
            .unwrap();
        let after = store.load().await.unwrap();
        let stored = after.jobs.iter().find(|(j, _)| j.key == job.key).unwrap();
        assert_eq!(
            stored.0.usage.total_ms, 42,
            "usage written after the upgrade"
        );
        let curve = stilts_common::store::CurveRecord {
            job_key: snap.jobs[0].0.key.clone(),
            attempt: 1,
            points: vec![stilts_common::series::Point {
                step: 1,
                loss: Some(0.5),
                ..Default::default()
            }],
        };
        store.put_curve(curve.clone()).await.unwrap();
        assert_eq!(store.curves(&curve.job_key).await.unwrap(), vec![curve]);
        let found: i64 = sql(&f.path())
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(found, stilts_coordinator::store::sqlite::SCHEMA_VERSION);
    }
}

fn backend_source(e: StoreError) -> SqliteError {
    match e {
        StoreError::Backend(source) => *source.downcast::<SqliteError>().expect("SqliteError"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_error() {
    let f = SqliteFactory::default();
    drop(SqliteStore::open(f.path()).unwrap());
    sql(&f.path())
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = SqliteStore::open(f.path()).unwrap_err();
    let msg = err.to_string();
    match backend_source(err) {
        SqliteError::NewerSchema { found, .. } => assert_eq!(found, 99),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(msg.contains("newer than this stilts supports"), "{msg}");
}

#[test]
fn a_foreign_database_is_refused() {
    let f = SqliteFactory::default();
    std::fs::create_dir_all(f.path().parent().unwrap()).unwrap();
    sql(&f.path()).execute_batch("CREATE TABLE t (x)").unwrap();
    let err = SqliteStore::open(f.path()).unwrap_err();
    assert!(matches!(
        backend_source(err),
        SqliteError::ForeignFile { .. }
    ));
}

const CRASH_DB: &str = "STILTS_SQLITE_CRASH_DB";

/// The child of [`kill_9_keeps_every_acknowledged_update`]: does nothing unless `CRASH_DB` is
/// set; then writes job updates in a loop, printing `ack <key> <version>` after each commit.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CRASH_DB) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = SqliteStore::open(&path).unwrap();
        let (sweep, jobs, cells) = grid("crash", "d", &["xnli", "pawsx"]);
        store.submit(sweep, jobs, cells).await.unwrap();
        let mut jobs: Vec<_> = store.load().await.unwrap().jobs;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut round = 0u64;
        while Instant::now() < deadline {
            round += 1;
            let updates: Vec<JobUpdate> = jobs
                .iter()
                .map(|(j, _)| {
                    let mut u = transition(j, JobState::Ready, "w", round);
                    u.record.not_before_ms = round;
                    u
                })
                .collect();
            let got = store.update_jobs(updates).await.unwrap();
            let mut out = String::new();
            for ((job, _), v) in jobs.iter_mut().zip(got) {
                job.version = v.unwrap();
                job.not_before_ms = round;
                out.push_str(&format!("ack {} {}\n", job.key, job.version));
            }
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(out.as_bytes()).unwrap();
            stdout.flush().unwrap();
        }
    });
}

#[tokio::test]
async fn kill_9_keeps_every_acknowledged_update() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CRASH_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acks = Vec::new();
    let read_ack = |line: String, acks: &mut Vec<(String, u64)>| {
        if let Some(rest) = line.strip_prefix("ack ") {
            let (key, version) = rest.rsplit_once(' ').unwrap();
            acks.push((key.to_string(), version.parse::<u64>().unwrap()));
        }
    };
    while acks.len() < 3_000 {
        let line = lines.next().expect("child ended early").unwrap();
        read_ack(line, &mut acks);
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acknowledgements printed before the kill are still in the pipe.
    for line in lines {
        match line {
            Ok(line) => read_ack(line, &mut acks),
            Err(_) => break, // a line cut in half by the kill
        }
    }

    let store = SqliteStore::open(&path).unwrap();
    store.integrity_check().await.unwrap();
    let snap = store.load().await.unwrap();
    let events = store.events_after(0, usize::MAX).await.unwrap();
    for (job, _) in &snap.jobs {
        let acked = acks
            .iter()
            .filter(|(k, _)| *k == job.key)
            .map(|(_, v)| *v)
            .max()
            .unwrap_or(1);
        // At most the one batch in flight at the kill is committed but unacknowledged.
        assert!(
            job.version == acked || job.version == acked + 1,
            "{}: stored version {} but acknowledged {acked}",
            job.key,
            job.version
        );
        // Every committed update carried its event: none lost, none without its update.
        let logged = events.iter().filter(|e| e.job_key == job.key).count() as u64;
        assert_eq!(logged, job.version - 1, "{}", job.key);
        assert_eq!(job.not_before_ms, job.version - 1, "{}", job.key);
    }
    assert!(acks.iter().any(|(k, _)| *k == intermediate_key(1)));
    // The store goes on writing after the crash.
    let (job, _) = &snap.jobs[0];
    let got = store
        .update_jobs(vec![transition(job, JobState::Cancelled, "u", 0)])
        .await
        .unwrap();
    assert_eq!(got, vec![Ok(job.version + 1)]);
}

/// A submit that stopped after writing part of its cells and memberships (a crash between its
/// transactions) leaves a hidden sweep: no reader sees it, and submitting the name again clears it
/// and writes the sweep whole.
#[tokio::test]
async fn a_half_written_sweep_is_hidden_and_cleared_by_the_next_submit() {
    let f = SqliteFactory::default();
    let store = SqliteStore::open(f.path()).unwrap();
    let (sweep, jobs, cells) = grid("s1", "d1", &["xnli"]);
    store
        .submit(sweep.clone(), jobs.clone(), cells.clone())
        .await
        .unwrap();
    drop(store);
    // Back to the state between the cells' transactions and the last one.
    sql(&f.path())
        .execute_batch(
            "UPDATE sweeps SET complete = 0 WHERE name = 's1'; \
             DELETE FROM cells WHERE sweep = 's1' AND ord >= 2;",
        )
        .unwrap();
    let store = SqliteStore::open(f.path()).unwrap();
    let snap = store.load().await.unwrap();
    assert!(snap.sweeps.is_empty(), "a hidden sweep is not loaded");
    assert!(snap.jobs.iter().all(|(_, sweeps)| sweeps.is_empty()));
    assert!(matches!(
        store.cells("s1").await,
        Err(StoreError::SweepNotFound(_))
    ));
    assert!(matches!(
        store.delete_sweep("s1", false).await,
        Err(StoreError::SweepNotFound(_))
    ));
    let again = store
        .submit(sweep.clone(), jobs, cells.clone())
        .await
        .unwrap();
    assert!(again.sweep_created);
    assert_eq!(store.cells("s1").await.unwrap(), cells, "every cell, once");
    assert_eq!(store.load().await.unwrap().sweeps, vec![sweep]);
}
