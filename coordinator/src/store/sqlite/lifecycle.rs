//! Deleting a sweep and giving the space back (`Store::delete_sweep`, `Store::compact`).

use rusqlite::{Connection, TransactionBehavior, params};
use stilts_common::store::{DeleteOutcome, StoreError};

use super::op_error::OpError;

/// One transaction: the sweep's memberships, cells and record; with `purge`, then every job of
/// no sweep that is not leased, with its results and curves.
pub(super) fn delete_sweep(
    conn: &mut Connection,
    sweep: &str,
    purge: bool,
) -> Result<DeleteOutcome, OpError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let visible: bool = tx
        .prepare("SELECT 1 FROM sweeps WHERE name = ?1 AND complete = 1")?
        .exists([sweep])?;
    if !visible {
        return Err(OpError::Store(StoreError::SweepNotFound(sweep.to_owned())));
    }
    let jobs = tx.execute("DELETE FROM sweep_jobs WHERE sweep = ?1", [sweep])? as u64;
    let cells = tx.execute("DELETE FROM cells WHERE sweep = ?1", [sweep])? as u64;
    if tx.execute("DELETE FROM sweeps WHERE name = ?1", [sweep])? == 0 {
        return Err(OpError::Store(StoreError::SweepNotFound(sweep.to_owned())));
    }
    let mut purged = Vec::new();
    if purge {
        purged = tx
            .prepare(
                "SELECT key FROM jobs WHERE state != 'leased' AND NOT EXISTS \
                 (SELECT 1 FROM sweep_jobs AS m WHERE m.job_key = jobs.key) ORDER BY key",
            )?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut results = tx.prepare("DELETE FROM results WHERE job_key = ?1")?;
        let mut curves = tx.prepare("DELETE FROM curves WHERE job_key = ?1")?;
        let mut job = tx.prepare("DELETE FROM jobs WHERE key = ?1")?;
        for key in &purged {
            results.execute(params![key])?;
            curves.execute(params![key])?;
            job.execute(params![key])?;
        }
    }
    tx.commit()?;
    Ok(DeleteOutcome {
        cells,
        jobs,
        purged,
    })
}

/// Removes what a submit that stopped halfway left of a hidden sweep (its row, memberships and
/// cells), in one transaction.
pub(crate) fn clear_pending(conn: &mut Connection, sweep: &str) -> Result<(), OpError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM sweep_jobs WHERE sweep = ?1", [sweep])?;
    tx.execute("DELETE FROM cells WHERE sweep = ?1", [sweep])?;
    tx.execute(
        "DELETE FROM sweeps WHERE name = ?1 AND complete = 0",
        [sweep],
    )?;
    tx.commit()?;
    Ok(())
}

/// `VACUUM` (the file shrinks to its live pages) and a truncating WAL checkpoint.
pub(super) fn compact(conn: &mut Connection) -> Result<String, OpError> {
    let size = |conn: &Connection| -> Result<i64, OpError> {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(pages * page_size)
    };
    let before = size(conn)?;
    conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
    let after = size(conn)?;
    Ok(format!(
        "sqlite: vacuumed, {before} → {after} bytes in the database file"
    ))
}
