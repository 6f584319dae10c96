//! The store operations, each one function over the connection, run on the SQLite thread.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use stilts_common::store::{
    CellRecord, Conflict, EventRecord, JobRecord, JobUpdate, Snapshot, StoreError, SubmitOutcome,
    SweepRecord, WorkerRecord,
};

use super::SqliteError;
use super::codec::{
    CELL_COLS, EVENT_COLS, JOB_COLS, SWEEP_COLS, WORKER_COLS, cell_from_row, decode_worker,
    event_from_row, from_db, job_json, raw_job_from_row, raw_worker_from_row, result_rows,
    sweep_from_row, to_db,
};

/// What an operation fails with on the SQLite thread; becomes a [`StoreError`] for the caller.
#[derive(Debug)]
pub(crate) enum OpError {
    Store(StoreError),
    Db(SqliteError),
    Corrupt { what: String, detail: String },
}

impl From<rusqlite::Error> for OpError {
    fn from(e: rusqlite::Error) -> Self {
        OpError::Db(SqliteError::Sqlite(e))
    }
}

impl From<serde_json::Error> for OpError {
    fn from(e: serde_json::Error) -> Self {
        OpError::Db(SqliteError::Json(e))
    }
}

impl From<OpError> for StoreError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Store(e) => e,
            OpError::Db(e) => e.into(),
            OpError::Corrupt { what, detail } => StoreError::Corrupt { what, detail },
        }
    }
}

/// Wall-clock time for `updated_at_ms` (informational; nothing schedules on it).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn write_tx(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

const INSERT_JOB: &str = "INSERT INTO jobs (key, kind, spec_json, state, attempt, budget_spent, \
     max_attempts, dependents, worker_id, not_before_ms, last_failure_json, metrics_json, \
     artifact, version, updated_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (key) DO NOTHING";

const UPDATE_JOB: &str = "UPDATE jobs SET kind = ?2, spec_json = ?3, state = ?4, attempt = ?5, \
     budget_spent = ?6, max_attempts = ?7, dependents = ?8, worker_id = ?9, not_before_ms = ?10, \
     last_failure_json = ?11, metrics_json = ?12, artifact = ?13, version = ?14, \
     updated_at_ms = ?15 WHERE key = ?1 AND version = ?16";

const INSERT_RESULT: &str = "INSERT INTO results (job_key, language, metric, value) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";

const INSERT_EVENT: &str = "INSERT INTO events (job_key, from_state, to_state, attempt, \
     worker_id, message, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Writes `job` with `version` through `sql` (`INSERT_JOB`, or `UPDATE_JOB` with
/// `expected` as ?16); returns the number of rows changed.
fn write_job(
    tx: &Transaction<'_>,
    sql: &str,
    job: &JobRecord,
    version: u64,
    expected: Option<u64>,
    now: i64,
) -> Result<usize, OpError> {
    let json = job_json(job)?;
    let (version, dependents, not_before) = (
        to_db(version),
        to_db(job.dependents),
        to_db(job.not_before_ms),
    );
    let expected = expected.map(to_db);
    let (kind, state) = (job.spec.kind.as_str(), job.status.state.as_str());
    let mut p: Vec<&dyn ToSql> = vec![
        &job.key,
        &kind,
        &json.spec,
        &state,
        &job.status.attempt,
        &job.status.budget_spent,
        &job.max_attempts,
        &dependents,
        &job.worker_id,
        &not_before,
        &json.last_failure,
        &json.metrics,
        &job.artifact,
        &version,
        &now,
    ];
    if let Some(expected) = &expected {
        p.push(expected);
    }
    Ok(tx.prepare_cached(sql)?.execute(p.as_slice())?)
}

fn write_results(tx: &Transaction<'_>, job: &JobRecord) -> Result<(), OpError> {
    let Some(metrics) = &job.metrics else {
        return Ok(());
    };
    let mut stmt = tx.prepare_cached(INSERT_RESULT)?;
    for (language, metric, value) in result_rows(metrics) {
        stmt.execute(params![job.key, language, metric, value])?;
    }
    Ok(())
}

fn append_event(tx: &Transaction<'_>, e: &EventRecord) -> Result<(), OpError> {
    tx.prepare_cached(INSERT_EVENT)?.execute(params![
        e.job_key,
        e.from,
        e.to,
        e.attempt,
        e.worker_id,
        e.message,
        to_db(e.at_ms)
    ])?;
    Ok(())
}

pub(super) fn submit(
    conn: &mut Connection,
    sweep: &SweepRecord,
    jobs: &[JobRecord],
    cells: &[CellRecord],
) -> Result<SubmitOutcome, OpError> {
    let tx = write_tx(conn)?;
    let existing: Option<String> = tx
        .query_row(
            "SELECT grid_digest FROM sweeps WHERE name = ?1",
            [&sweep.name],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(existing) = existing {
        if existing == sweep.grid_digest {
            return Ok(SubmitOutcome::default());
        }
        return Err(OpError::Store(StoreError::SweepExists {
            name: sweep.name.clone(),
            existing,
        }));
    }
    tx.execute(
        &format!("INSERT INTO sweeps ({SWEEP_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            sweep.name,
            sweep.file_name,
            sweep.grid_toml,
            sweep.grid_digest,
            to_db(sweep.submitted_at_ms),
            sweep.cancelled
        ],
    )?;
    let now = now_ms();
    let mut jobs_inserted = 0;
    {
        let mut member = tx.prepare_cached(
            "INSERT INTO sweep_jobs (job_key, sweep) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?;
        for job in jobs {
            if write_job(&tx, INSERT_JOB, job, 1, None, now)? == 1 {
                jobs_inserted += 1;
                write_results(&tx, job)?;
            }
            member.execute(params![job.key, sweep.name])?;
        }
        let mut cell = tx.prepare_cached(
            "INSERT INTO cells (sweep, ord, model, intermediate, target, language, seed, \
             evaluate_job) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (ord, c) in cells.iter().enumerate() {
            cell.execute(params![
                sweep.name,
                ord as i64,
                c.model,
                c.intermediate,
                c.target,
                c.language,
                to_db(c.seed),
                c.evaluate_job
            ])?;
        }
    }
    tx.commit()?;
    Ok(SubmitOutcome {
        sweep_created: true,
        jobs_inserted,
    })
}

/// One transaction for the whole batch. Each write checks the stored version first and is
/// skipped (reported as a conflict) when it differs, so a lost race leaves the others intact.
/// A write expecting version 0 to a key that is not stored creates the job (version 1).
pub(super) fn update_jobs(
    conn: &mut Connection,
    updates: Vec<JobUpdate>,
) -> Result<Vec<Result<u64, Conflict>>, OpError> {
    let tx = write_tx(conn)?;
    let now = now_ms();
    let mut out = Vec::with_capacity(updates.len());
    for u in updates {
        let key = &u.record.key;
        let stored: Option<(i64, bool)> = tx
            .prepare_cached("SELECT version, metrics_json IS NULL FROM jobs WHERE key = ?1")?
            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (actual, had_no_metrics) = match stored {
            Some((v, no_metrics)) => (from_db(v), no_metrics),
            None => (0, true),
        };
        if actual != u.expected_version {
            out.push(Err(Conflict {
                key: key.clone(),
                expected: u.expected_version,
                actual,
            }));
            continue;
        }
        let version = actual + 1;
        let changed = if stored.is_some() {
            write_job(&tx, UPDATE_JOB, &u.record, version, Some(actual), now)?
        } else {
            write_job(&tx, INSERT_JOB, &u.record, version, None, now)?
        };
        if changed != 1 {
            // Unreachable while this connection holds the write lock; refuse rather than guess.
            return Err(OpError::Corrupt {
                what: format!("job {key}"),
                detail: format!("compare-and-set on version {actual} changed {changed} rows"),
            });
        }
        if had_no_metrics {
            write_results(&tx, &u.record)?;
        }
        if let Some(event) = &u.event {
            append_event(&tx, event)?;
        }
        out.push(Ok(version));
    }
    tx.commit()?;
    Ok(out)
}

pub(super) fn load(conn: &mut Connection) -> Result<Snapshot, OpError> {
    // A read transaction so the snapshot is consistent.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let sweeps = tx
        .prepare(&format!(
            "SELECT {SWEEP_COLS} FROM sweeps ORDER BY submitted_at_ms, name"
        ))?
        .query_map([], sweep_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let raw_jobs = tx
        .prepare(&format!("SELECT {JOB_COLS} FROM jobs ORDER BY key"))?
        .query_map([], raw_job_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut jobs = Vec::with_capacity(raw_jobs.len());
    let mut index = HashMap::with_capacity(raw_jobs.len());
    for raw in raw_jobs {
        let job = raw.decode()?;
        index.insert(job.key.clone(), jobs.len());
        jobs.push((job, Vec::new()));
    }
    {
        let mut stmt =
            tx.prepare("SELECT job_key, sweep FROM sweep_jobs ORDER BY job_key, sweep")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let Some(&i) = index.get(&key) else {
                return Err(OpError::Corrupt {
                    what: format!("sweep membership of job {key}"),
                    detail: "the job is not stored".into(),
                });
            };
            jobs[i].1.push(r.get(1)?);
        }
    }
    let workers = tx
        .prepare(&format!("SELECT {WORKER_COLS} FROM workers ORDER BY id"))?
        .query_map([], raw_worker_from_row)?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(decode_worker)
        .collect::<Result<Vec<_>, _>>()?;
    let last_event_seq: i64 = tx.query_row(
        "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
        [],
        |r| r.get(0),
    )?;
    Ok(Snapshot {
        sweeps,
        jobs,
        workers,
        last_event_seq: from_db(last_event_seq),
    })
}

fn sweep_exists(conn: &Connection, sweep: &str) -> Result<bool, OpError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sweeps WHERE name = ?1")?
        .exists([sweep])?)
}

pub(super) fn cells(conn: &mut Connection, sweep: &str) -> Result<Vec<CellRecord>, OpError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    if !sweep_exists(&tx, sweep)? {
        return Err(OpError::Store(StoreError::SweepNotFound(sweep.to_owned())));
    }
    let cells = tx
        .prepare(&format!(
            "SELECT {CELL_COLS} FROM cells WHERE sweep = ?1 ORDER BY ord"
        ))?
        .query_map([sweep], cell_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(cells)
}

pub(super) fn set_sweep_cancelled(
    conn: &mut Connection,
    sweep: &str,
    cancelled: bool,
) -> Result<(), OpError> {
    let changed = conn.execute(
        "UPDATE sweeps SET cancelled = ?2 WHERE name = ?1",
        params![sweep, cancelled],
    )?;
    if changed == 0 {
        return Err(OpError::Store(StoreError::SweepNotFound(sweep.to_owned())));
    }
    Ok(())
}

pub(super) fn put_worker(conn: &mut Connection, w: &WorkerRecord) -> Result<(), OpError> {
    let labels = serde_json::to_string(&w.labels)?;
    let cached = serde_json::to_string(&w.cached_artifacts)?;
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO workers ({WORKER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?
    .execute(params![
        w.id,
        w.name,
        w.slots,
        w.backend,
        labels,
        cached,
        to_db(w.lease_expires_at_ms)
    ])?;
    Ok(())
}

pub(super) fn remove_worker(conn: &mut Connection, id: &str) -> Result<(), OpError> {
    conn.prepare_cached("DELETE FROM workers WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

pub(super) fn events_after(
    conn: &mut Connection,
    after: u64,
    limit: usize,
) -> Result<Vec<EventRecord>, OpError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let events = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_COLS} FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?
        .query_map(
            params![i64::try_from(after).unwrap_or(i64::MAX), limit],
            event_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(events)
}

/// Problems `integrity_check` and `foreign_key_check` report, one per line; empty when none.
pub(super) fn integrity_report(conn: &mut Connection) -> Result<String, OpError> {
    let mut problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|line| line != "ok")
        .collect();
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let table: String = r.get(0)?;
        let parent: String = r.get(2)?;
        problems.push(format!("{table}: dangling reference to {parent}"));
    }
    Ok(problems.join("\n"))
}
