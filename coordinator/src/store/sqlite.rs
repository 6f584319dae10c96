//! The embedded SQLite backend of [`Store`]: one file, WAL mode, one connection owned by a
//! dedicated thread so SQLite never blocks the async runtime.
//!
//! The schema (tables, the `cell_results` view, what each column holds) is documented in
//! `sqlite_schema.sql`. Every job write is a compare-and-set on `jobs.version`; a batch of writes
//! (`update_jobs`) is one transaction, which is what makes thousands of updates per second cheap
//! (one WAL append and, in `FULL` mode, one fsync per batch).
//!
//! Durability: the default `synchronous = NORMAL` keeps every acknowledged write across a crash
//! of the process (kill -9, panic, OOM kill), because a committed transaction is in the WAL file
//! before the call returns. A power loss or kernel crash may lose the last transactions before
//! the next WAL checkpoint (never corrupting the file). [`Synchronous::Full`] fsyncs the WAL on
//! every commit and closes that window, at the cost of one fsync per batch.

mod codec;
pub(crate) mod lifecycle;
mod op_error;
mod ops;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use stilts_common::store::{
    CellRecord, Conflict, CurveRecord, DeleteOutcome, EventRecord, JobRecord, JobUpdate, Snapshot,
    Store, StoreError, SubmitOutcome, SweepRecord, WorkerRecord,
};
use thiserror::Error;
use tokio::sync::oneshot;

use self::op_error::OpError;

/// Schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 4;
const SCHEMA: &str = include_str!("sqlite_schema.sql");
/// Jobs per transaction in the first steps of a submit (about 20–50 ms of writing each).
const SUBMIT_CHUNK_JOBS: usize = 1_000;
/// WAL pages between automatic checkpoints by the writing connection: a backstop only (256 MiB),
/// the checkpointer thread keeps the WAL far smaller (see [`run_checkpointer`]).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 65_536;
/// WAL size above which the checkpointer thread copies its pages into the database file.
const CHECKPOINT_WAL_BYTES: u64 = 16 << 20;
/// How often the checkpointer thread looks at the WAL's size.
const CHECKPOINT_PERIOD: Duration = Duration::from_millis(200);

/// Failures of the SQLite backend. They reach callers as the source of
/// [`StoreError::Backend`].
#[derive(Debug, Error)]
pub enum SqliteError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} has schema version {found}, newer than this stilts supports ({supported}); \
         upgrade stilts or point it at another state file"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("{path} is not a stilts state file (it holds tables but no stilts schema version)")]
    ForeignFile { path: PathBuf },
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("integrity check of {path} failed: {report}")]
    Integrity { path: PathBuf, report: String },
    #[error("cannot start the sqlite thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the sqlite thread has stopped")]
    ThreadGone,
}

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// How hard each commit is pushed to disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Survives process crashes; a power loss may lose the last commits (see the module doc).
    #[default]
    Normal,
    /// Also survives power loss: one fsync per commit.
    Full,
}

/// Options of [`SqliteStore::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Default: [`Synchronous::Normal`].
    pub synchronous: Synchronous,
    /// How long a write waits for another connection's lock (e.g. a `sqlite3` shell holding a
    /// write transaction) before failing. Default: 5 s.
    pub busy_timeout: Duration,
    /// Page cache size in KiB. Default: 8 MiB. Bigger is not free: SQLite scans the cache's
    /// hash table at the end of every write transaction, which at 32 MiB cost about 8% of the
    /// coordinator's CPU under a stream of small commits (`examples/bench.rs`).
    pub cache_kib: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            cache_kib: 8 * 1024,
        }
    }
}

type Task = Box<dyn FnOnce(&mut Connection) + Send>;

struct Inner {
    tx: Option<mpsc::Sender<Task>>,
    thread: Option<JoinHandle<()>>,
    checkpointer: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Drop for Inner {
    /// Closing the channel ends the thread after the queued work; joining it closes the
    /// connection, so the file can be reopened at once.
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.checkpointer.take() {
            stop.store(true, Ordering::Relaxed);
            thread.thread().unpark();
            let _ = thread.join();
        }
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies the WAL back into the database file from a connection of its own, whenever the WAL
/// has grown past [`CHECKPOINT_WAL_BYTES`]. A PASSIVE checkpoint never blocks the writing
/// connection; done by the writer itself (SQLite's automatic checkpoint), it made the commit
/// that crossed the threshold take hundreds of milliseconds after a big submit, and every job
/// write queued behind it.
fn run_checkpointer(path: PathBuf, stop: Arc<AtomicBool>) {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = Connection::open_with_flags(&path, flags) else {
        return;
    };
    let _ = conn.busy_timeout(Duration::from_millis(100));
    let mut wal = path.into_os_string();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    while !stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(CHECKPOINT_PERIOD);
        let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > CHECKPOINT_WAL_BYTES);
        if big && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "sqlite checkpoint");
        }
    }
}

/// A handle to a SQLite state file; cheap to clone. The file closes when the last clone drops.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the state file at `path` with default
    /// options. Blocks briefly (file open, schema check): call it at start-up.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, opts: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| SqliteError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = open_connection(&path, &opts)?;
        let (tx, rx) = mpsc::channel::<Task>();
        let thread = std::thread::Builder::new()
            .name("stilts-sqlite".into())
            .spawn(move || run_thread(conn, rx))
            .map_err(SqliteError::Spawn)?;
        let stop = Arc::new(AtomicBool::new(false));
        let checkpointer = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::Builder::new()
                .name("stilts-sqlite-checkpoint".into())
                .spawn(move || run_checkpointer(path, stop))
                .map_err(SqliteError::Spawn)?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                tx: Some(tx),
                thread: Some(thread),
                checkpointer: Some((stop, checkpointer)),
            }),
            path: Arc::new(path),
        })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `PRAGMA integrity_check` and `foreign_key_check`; an error names what is wrong.
    pub async fn integrity_check(&self) -> Result<(), StoreError> {
        let path = self.path.to_path_buf();
        self.call(move |conn| {
            let report = ops::integrity_report(conn)?;
            if report.is_empty() {
                Ok(())
            } else {
                Err(OpError::Db(SqliteError::Integrity { path, report }))
            }
        })
        .await
    }

    /// Runs `f` on the SQLite thread and waits for its answer.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, OpError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        let task: Task = Box::new(move |conn| {
            let _ = reply.send(f(conn).map_err(StoreError::from));
        });
        self.inner
            .tx
            .as_ref()
            .ok_or(SqliteError::ThreadGone)?
            .send(task)
            .map_err(|_| SqliteError::ThreadGone)?;
        answer.await.map_err(|_| SqliteError::ThreadGone)?
    }
}

fn open_connection(path: &Path, opts: &SqliteOptions) -> Result<Connection, SqliteError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(opts.busy_timeout)?;
    // journal_mode answers with the mode now in effect.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "sqlite refused WAL mode");
    }
    let sync = match opts.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    // A checkpoint copies every page changed since the last one into the database file. The
    // checkpointer thread does it past 16 MiB of WAL (instead of SQLite's default 1,000 pages, so
    // a page that many commits touch is copied once instead of several times); the automatic
    // one is only a backstop.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{}; \
         PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};",
        opts.cache_kib
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    init_schema(&mut conn, path)?;
    Ok(conn)
}

/// In-place upgrades: entry `i` takes a file from version `i + 1` to `i + 2`. A new schema
/// version appends one entry (and changes `sqlite_schema.sql` to match).
const MIGRATIONS: [&str; (SCHEMA_VERSION - 1) as usize] = [
    // 1 -> 2: the sweep's backend requirement; old sweeps need none.
    "ALTER TABLE sweeps ADD COLUMN backend TEXT NOT NULL DEFAULT '';",
    // 2 -> 3: training curves per job attempt.
    "CREATE TABLE curves (
        job_key     TEXT NOT NULL,
        attempt     INTEGER NOT NULL,
        points_json TEXT NOT NULL,
        PRIMARY KEY (job_key, attempt)
    ) STRICT, WITHOUT ROWID;",
    // 3 -> 4: compute accounting per job (NULL for jobs stored before: no usage known), and
    // sweeps written in several transactions, hidden until complete.
    "ALTER TABLE jobs ADD COLUMN usage_json TEXT;
     ALTER TABLE sweeps ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;",
];

/// Creates the schema in an empty file, upgrades a file of an older version in place (see
/// [`MIGRATIONS`]), accepts a file of this version, refuses anything else.
fn init_schema(conn: &mut Connection, path: &Path) -> Result<(), SqliteError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        0 => {
            let objects: i64 =
                tx.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
            if objects > 0 {
                return Err(SqliteError::ForeignFile {
                    path: path.to_path_buf(),
                });
            }
            tx.execute_batch(SCHEMA)?;
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        }
        SCHEMA_VERSION => {}
        found if (1..SCHEMA_VERSION).contains(&found) => {
            // One step per version, in order, so a file of any older version upgrades.
            for step in &MIGRATIONS[(found - 1) as usize..] {
                tx.execute_batch(step)?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        }
        found if found > SCHEMA_VERSION => {
            return Err(SqliteError::NewerSchema {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        _ => {
            return Err(SqliteError::ForeignFile {
                path: path.to_path_buf(),
            });
        }
    }
    tx.commit()?;
    Ok(())
}

fn run_thread(mut conn: Connection, rx: mpsc::Receiver<Task>) {
    while let Ok(task) = rx.recv() {
        // A panic inside a task rolls its transaction back (the guard drops) and drops its reply
        // channel; the caller sees `ThreadGone` for that call only, and the thread goes on.
        let run = std::panic::AssertUnwindSafe(|| task(&mut conn));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!("sqlite store task panicked");
        }
    }
}

impl Store for SqliteStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.call(ops::load).await
    }

    async fn submit(
        &self,
        sweep: SweepRecord,
        jobs: Vec<JobRecord>,
        cells: Vec<CellRecord>,
    ) -> Result<SubmitOutcome, StoreError> {
        // Several transactions, so that the writes of running jobs (queued on the same thread)
        // go between them instead of waiting for a million-row insert: new jobs first, a chunk
        // per transaction and without membership (a job of no sweep is never scheduled), then
        // the sweep row (hidden), its memberships and cells a chunk per transaction, and last
        // one small transaction that makes the sweep visible with all of it.
        let sweep = Arc::new(sweep);
        let probe = sweep.clone();
        if let Some(outcome) = self
            .call(move |conn| ops::submitted_already(conn, &probe))
            .await?
        {
            return Ok(outcome);
        }
        let keys: Vec<String> = jobs.iter().map(|j| j.key.clone()).collect();
        let (mut jobs_inserted, mut already_stored) = (0, Vec::new());
        let mut rest = jobs;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(SUBMIT_CHUNK_JOBS));
            let chunk = std::mem::replace(&mut rest, tail);
            let (n, already) = self
                .call(move |conn| ops::insert_new_jobs(conn, &chunk))
                .await?;
            jobs_inserted += n;
            already_stored.extend(already);
        }
        let begin = sweep.clone();
        if let Some(outcome) = self
            .call(move |conn| ops::begin_submit(conn, &begin))
            .await?
        {
            return Ok(outcome);
        }
        let name = Arc::new(sweep.name.clone());
        let mut keys = keys;
        keys.sort_unstable();
        keys.dedup();
        for chunk in keys.chunks(ops::SUBMIT_CHUNK_ROWS) {
            let (name, chunk) = (name.clone(), chunk.to_vec());
            self.call(move |conn| ops::insert_members(conn, &name, &chunk))
                .await?;
        }
        let cells = Arc::new(cells);
        for first in (0..cells.len()).step_by(ops::SUBMIT_CHUNK_ROWS) {
            let (name, cells) = (name.clone(), cells.clone());
            self.call(move |conn| {
                let end = (first + ops::SUBMIT_CHUNK_ROWS).min(cells.len());
                ops::insert_cells(conn, &name, first, &cells[first..end])
            })
            .await?;
        }
        self.call(move |conn| ops::finish_submit(conn, &name))
            .await?;
        Ok(SubmitOutcome {
            sweep_created: true,
            jobs_inserted,
            already_stored,
        })
    }

    async fn update_jobs(
        &self,
        updates: Vec<JobUpdate>,
    ) -> Result<Vec<Result<u64, Conflict>>, StoreError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        self.call(move |conn| ops::update_jobs(conn, updates)).await
    }

    async fn cells(&self, sweep: &str) -> Result<Vec<CellRecord>, StoreError> {
        let sweep = sweep.to_owned();
        self.call(move |conn| ops::cells(conn, &sweep)).await
    }

    async fn set_sweep_cancelled(&self, sweep: &str, cancelled: bool) -> Result<(), StoreError> {
        let sweep = sweep.to_owned();
        self.call(move |conn| ops::set_sweep_cancelled(conn, &sweep, cancelled))
            .await
    }

    async fn put_worker(&self, worker: WorkerRecord) -> Result<(), StoreError> {
        self.call(move |conn| ops::put_worker(conn, &worker)).await
    }

    async fn remove_worker(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.call(move |conn| ops::remove_worker(conn, &id)).await
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.call(move |conn| ops::events_after(conn, after, limit))
            .await
    }

    async fn delete_sweep(&self, sweep: &str, purge: bool) -> Result<DeleteOutcome, StoreError> {
        let sweep = sweep.to_owned();
        self.call(move |conn| lifecycle::delete_sweep(conn, &sweep, purge))
            .await
    }

    async fn compact(&self) -> Result<String, StoreError> {
        self.call(lifecycle::compact).await
    }

    async fn put_curve(&self, curve: CurveRecord) -> Result<(), StoreError> {
        self.call(move |conn| ops::put_curve(conn, &curve)).await
    }

    async fn curves(&self, job_key: &str) -> Result<Vec<CurveRecord>, StoreError> {
        let job_key = job_key.to_owned();
        self.call(move |conn| ops::curves(conn, &job_key)).await
    }
}
