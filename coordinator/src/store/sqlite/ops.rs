//! The store operations, each one function over the connection, run on the SQLite thread.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use stilts_common::store::{
    CellRecord, Conflict, CurveRecord, EventRecord, JobRecord, JobUpdate, Snapshot, StoreError,
    SubmitOutcome, SweepRecord, WorkerRecord,
};

use super::codec::{
    CELL_COLS, EVENT_COLS, JOB_COLS, SWEEP_COLS, WORKER_COLS, cell_from_row, decode_worker,
    event_from_row, from_db, job_json, raw_job_from_row, raw_worker_from_row, result_rows,
    status_json, sweep_from_row, to_db,
};
use super::op_error::OpError;

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
     artifact, version, updated_at_ms, usage_json) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
     ON CONFLICT (key) DO NOTHING";

/// The update of an existing job: only the columns a transition can change. `kind` and
/// `spec_json` are fixed for a key (the key is the content hash of the spec), so re-encoding and
/// rewriting the spec on every transition would be wasted work.
const UPDATE_JOB: &str = "UPDATE jobs SET state = ?2, attempt = ?3, budget_spent = ?4, \
     max_attempts = ?5, dependents = ?6, worker_id = ?7, not_before_ms = ?8, \
     last_failure_json = ?9, metrics_json = ?10, artifact = ?11, version = ?12, \
     updated_at_ms = ?13, usage_json = ?15 WHERE key = ?1 AND version = ?14";

const INSERT_RESULT: &str = "INSERT INTO results (job_key, language, metric, value) \
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";

const INSERT_EVENT: &str = "INSERT INTO events (job_key, from_state, to_state, attempt, \
     worker_id, message, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Inserts `job` with `version` unless its key is stored; returns the number of rows inserted.
fn insert_job(
    tx: &Transaction<'_>,
    job: &JobRecord,
    version: u64,
    now: i64,
) -> Result<usize, OpError> {
    let json = job_json(job)?;
    let (version, dependents, not_before) = (
        to_db(version),
        to_db(job.dependents),
        to_db(job.not_before_ms),
    );
    let (kind, state) = (job.spec.kind.as_str(), job.status.state.as_str());
    Ok(tx.prepare_cached(INSERT_JOB)?.execute(params![
        job.key,
        kind,
        json.spec,
        state,
        job.status.attempt,
        job.status.budget_spent,
        job.max_attempts,
        dependents,
        job.worker_id,
        not_before,
        json.last_failure,
        json.metrics,
        job.artifact,
        version,
        now,
        json.usage,
    ])?)
}

/// Compare-and-set of a stored job from version `expected` to `version` (the spec is left as
/// stored); returns the number of rows changed (0: the stored version is not `expected`).
fn update_job(
    tx: &Transaction<'_>,
    job: &JobRecord,
    version: u64,
    expected: u64,
    now: i64,
) -> Result<usize, OpError> {
    let json = status_json(job)?;
    Ok(tx.prepare_cached(UPDATE_JOB)?.execute(params![
        job.key,
        job.status.state.as_str(),
        job.status.attempt,
        job.status.budget_spent,
        job.max_attempts,
        to_db(job.dependents),
        job.worker_id,
        to_db(job.not_before_ms),
        json.last_failure,
        json.metrics,
        job.artifact,
        to_db(version),
        now,
        to_db(expected),
        json.usage,
    ])?)
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

/// Whether a sweep of this name is stored: `Some(outcome)` when it is (same digest: nothing to
/// write), an error when it is stored with another grid.
pub(super) fn submitted_already(
    conn: &mut Connection,
    sweep: &SweepRecord,
) -> Result<Option<SubmitOutcome>, OpError> {
    let existing: Option<(String, bool)> = conn
        .prepare_cached("SELECT grid_digest, complete FROM sweeps WHERE name = ?1")?
        .query_row([&sweep.name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let existing = match existing {
        Some((_, false)) => {
            // Left by a submit that stopped halfway: nothing of it is visible; start over.
            crate::store::sqlite::lifecycle::clear_pending(conn, &sweep.name)?;
            None
        }
        other => other.map(|(digest, _)| digest),
    };
    match existing {
        None => Ok(None),
        Some(existing) if existing == sweep.grid_digest => Ok(Some(SubmitOutcome::default())),
        Some(existing) => Err(OpError::Store(StoreError::SweepExists {
            name: sweep.name.clone(),
            existing,
        })),
    }
}

/// The first steps of a submit, one transaction per chunk of jobs: inserts the jobs not stored
/// yet (version 1), without sweep membership. Returns how many were inserted and the keys of
/// those that were stored already.
pub(super) fn insert_new_jobs(
    conn: &mut Connection,
    jobs: &[JobRecord],
) -> Result<(u64, Vec<String>), OpError> {
    let tx = write_tx(conn)?;
    let now = now_ms();
    let (mut inserted, mut already) = (0, Vec::new());
    for job in jobs {
        if insert_job(&tx, job, 1, now)? == 1 {
            inserted += 1;
            write_results(&tx, job)?;
        } else {
            already.push(job.key.clone());
        }
    }
    tx.commit()?;
    Ok((inserted, already))
}

/// Rows per transaction when a submit writes memberships and cells (tens of milliseconds each),
/// so that the writes of running jobs go between them.
pub(super) const SUBMIT_CHUNK_ROWS: usize = 20_000;

/// The steps of a submit after its jobs (see [`insert_new_jobs`]): the sweep row, hidden
/// (`complete = 0`: `load`, `cells` and every other reader skip it); its memberships (in key
/// order) and cells, [`SUBMIT_CHUNK_ROWS`] per transaction; then one small transaction that
/// makes it visible. A submit of the same name that finished meanwhile wins: nothing is written
/// and its outcome is returned. A crash halfway leaves a hidden sweep that the next submit of
/// the name clears.
pub(super) fn begin_submit(
    conn: &mut Connection,
    sweep: &SweepRecord,
) -> Result<Option<SubmitOutcome>, OpError> {
    if let Some(outcome) = submitted_already(conn, sweep)? {
        return Ok(Some(outcome));
    }
    let tx = write_tx(conn)?;
    tx.execute(
        &format!(
            "INSERT INTO sweeps ({SWEEP_COLS}, complete) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)"
        ),
        params![
            sweep.name,
            sweep.file_name,
            sweep.grid_toml,
            sweep.grid_digest,
            to_db(sweep.submitted_at_ms),
            sweep.cancelled,
            sweep.backend
        ],
    )?;
    tx.commit()?;
    Ok(None)
}

/// One transaction of memberships (keys sorted: the table is keyed by job key, so sorted inserts
/// append to its pages instead of splitting them all over the file).
pub(super) fn insert_members(
    conn: &mut Connection,
    sweep: &str,
    keys: &[String],
) -> Result<(), OpError> {
    let tx = write_tx(conn)?;
    {
        let mut member = tx.prepare_cached(
            "INSERT INTO sweep_jobs (job_key, sweep) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?;
        for key in keys {
            member.execute(params![key, sweep])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// One transaction of cells, the first at position `first`.
pub(super) fn insert_cells(
    conn: &mut Connection,
    sweep: &str,
    first: usize,
    cells: &[CellRecord],
) -> Result<(), OpError> {
    let tx = write_tx(conn)?;
    {
        let mut cell = tx.prepare_cached(
            "INSERT INTO cells (sweep, ord, model, intermediate, target, language, seed, \
             evaluate_job) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (i, c) in cells.iter().enumerate() {
            cell.execute(params![
                sweep,
                (first + i) as i64,
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
    Ok(())
}

/// The last step: the sweep becomes visible, with everything written before.
pub(super) fn finish_submit(conn: &mut Connection, sweep: &str) -> Result<(), OpError> {
    let changed = conn.execute(
        "UPDATE sweeps SET complete = 1 WHERE name = ?1 AND complete = 0",
        [sweep],
    )?;
    if changed == 0 {
        return Err(OpError::Corrupt {
            what: format!("sweep {sweep}"),
            detail: "its hidden row went away while it was being submitted".into(),
        });
    }
    Ok(())
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
        // Fast path, one statement: the compare-and-set itself. It needs no read first unless
        // the write carries metrics (their `results` rows are written only by the write that
        // first sets them) or may create the job (expected version 0).
        if u.record.metrics.is_none() && u.expected_version != 0 {
            let version = u.expected_version + 1;
            if update_job(&tx, &u.record, version, u.expected_version, now)? == 1 {
                if let Some(event) = &u.event {
                    append_event(&tx, event)?;
                }
                out.push(Ok(version));
                continue;
            }
            // Not changed: the stored version differs (or the job is missing); the read below
            // reports the conflict.
        }
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
            update_job(&tx, &u.record, version, actual, now)?
        } else {
            insert_job(&tx, &u.record, version, now)?
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
            "SELECT {SWEEP_COLS} FROM sweeps WHERE complete = 1 ORDER BY submitted_at_ms, name"
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
            // Memberships of hidden (half-submitted) sweeps are left out, like the sweeps.
            tx.prepare(
                "SELECT m.job_key, m.sweep FROM sweep_jobs AS m JOIN sweeps AS s \
                 ON s.name = m.sweep AND s.complete = 1 ORDER BY m.job_key, m.sweep",
            )?;
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
        .prepare_cached("SELECT 1 FROM sweeps WHERE name = ?1 AND complete = 1")?
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
        "UPDATE sweeps SET cancelled = ?2 WHERE name = ?1 AND complete = 1",
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

pub(super) fn put_curve(conn: &mut Connection, curve: &CurveRecord) -> Result<(), OpError> {
    let points = serde_json::to_string(&curve.points)?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO curves (job_key, attempt, points_json) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![curve.job_key, curve.attempt, points])?;
    Ok(())
}

pub(super) fn curves(conn: &mut Connection, job_key: &str) -> Result<Vec<CurveRecord>, OpError> {
    let rows = conn
        .prepare_cached(
            "SELECT attempt, points_json FROM curves WHERE job_key = ?1 ORDER BY attempt",
        )?
        .query_map([job_key], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(attempt, json)| -> Result<CurveRecord, OpError> {
            let points = serde_json::from_str(&json).map_err(|e| OpError::Corrupt {
                what: format!("curve of job {job_key} attempt {attempt}"),
                detail: e.to_string(),
            })?;
            Ok(CurveRecord {
                job_key: job_key.to_owned(),
                attempt,
                points,
            })
        })
        .collect()
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
