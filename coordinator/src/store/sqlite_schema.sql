-- stilts coordinator state, schema version 4 (kept in `PRAGMA user_version`).
--
-- One file, WAL mode. Integers that are u64 in Rust are stored as i64 (two's complement), so
-- values above 2^63 read back exactly but show negative in SQL tools.
--
--   sweeps      one row per submitted grid; `grid_toml` kept for re-planning and audit.
--               `complete` is 0 while a submit writes its cells and memberships (several
--               transactions): every reader skips such a sweep (added in version 4).
--   jobs        one row per stage job, shared across sweeps by key (content hash of spec_json).
--               `version` is the compare-and-set version (bumped by every write); the job state
--               machine's fields (state, attempt, budget_spent) are plain columns so the file
--               can be queried; spec, last failure and metrics are JSON text; `usage_json` is
--               the compute accounting (stilts_common::usage::Usage; added in version 4, NULL
--               for jobs stored before).
--   sweep_jobs  membership: which sweeps contain which jobs (many to many).
--   cells       grid points of a sweep in submission order (`ord`), each naming the evaluate job
--               that produces its result.
--   workers     registered workers and their lease expiry.
--   events      append-only log of job state changes; `seq` is monotonic and never reused.
--   results     one row per (evaluate job, language, metric), written in the same transaction
--               as the job write that first sets the job's metrics.
--   cell_results (view) cells joined to results: `sqlite3 state.db 'select * from cell_results'`.

CREATE TABLE sweeps (
    name            TEXT PRIMARY KEY NOT NULL,
    file_name       TEXT NOT NULL,
    grid_toml       TEXT NOT NULL,
    grid_digest     TEXT NOT NULL,
    submitted_at_ms INTEGER NOT NULL,
    cancelled       INTEGER NOT NULL DEFAULT 0,
    -- trainer backend family the sweep's burn jobs need ('' = any); added in version 2
    backend         TEXT NOT NULL DEFAULT '',
    complete        INTEGER NOT NULL DEFAULT 1
) STRICT;

CREATE TABLE jobs (
    key               TEXT PRIMARY KEY NOT NULL,
    kind              TEXT NOT NULL,
    spec_json         TEXT NOT NULL,
    state             TEXT NOT NULL,
    attempt           INTEGER NOT NULL,
    budget_spent      INTEGER NOT NULL,
    max_attempts      INTEGER NOT NULL,
    dependents        INTEGER NOT NULL,
    worker_id         TEXT,
    not_before_ms     INTEGER NOT NULL,
    last_failure_json TEXT,
    metrics_json      TEXT,
    artifact          TEXT,
    version           INTEGER NOT NULL,
    updated_at_ms     INTEGER NOT NULL,
    usage_json        TEXT
) STRICT;

CREATE TABLE sweep_jobs (
    job_key TEXT NOT NULL REFERENCES jobs(key),
    sweep   TEXT NOT NULL REFERENCES sweeps(name),
    PRIMARY KEY (job_key, sweep)
) STRICT, WITHOUT ROWID;
CREATE INDEX sweep_jobs_by_sweep ON sweep_jobs(sweep);

CREATE TABLE cells (
    sweep        TEXT NOT NULL REFERENCES sweeps(name),
    ord          INTEGER NOT NULL,
    model        TEXT NOT NULL,
    intermediate TEXT NOT NULL,
    target       TEXT NOT NULL,
    language     TEXT NOT NULL,
    seed         INTEGER NOT NULL,
    evaluate_job TEXT NOT NULL REFERENCES jobs(key),
    PRIMARY KEY (sweep, ord)
) STRICT;

CREATE TABLE workers (
    id                     TEXT PRIMARY KEY NOT NULL,
    name                   TEXT NOT NULL,
    slots                  INTEGER NOT NULL,
    backend                TEXT NOT NULL,
    labels_json            TEXT NOT NULL,
    cached_artifacts_json  TEXT NOT NULL,
    lease_expires_at_ms    INTEGER NOT NULL
) STRICT;

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    job_key    TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    attempt    INTEGER NOT NULL,
    worker_id  TEXT NOT NULL,
    message    TEXT NOT NULL,
    at_ms      INTEGER NOT NULL
) STRICT;

CREATE TABLE results (
    job_key  TEXT NOT NULL REFERENCES jobs(key),
    language TEXT NOT NULL,
    metric   TEXT NOT NULL,
    value    REAL NOT NULL,
    PRIMARY KEY (job_key, language, metric)
) STRICT, WITHOUT ROWID;

CREATE VIEW cell_results AS
SELECT c.sweep, c.model, c.intermediate, c.target, c.language, c.seed,
       r.metric, r.value, c.evaluate_job
FROM cells AS c
JOIN results AS r ON r.job_key = c.evaluate_job AND r.language = c.language;

-- Training curves, one row per job attempt (version 3; the same DDL is the 2 -> 3 migration in
-- sqlite.rs). points_json: a JSON array of {step, loss?, lr?, grad_norm?, dev?}, NaN as "NaN".
CREATE TABLE curves (
    job_key     TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    points_json TEXT NOT NULL,
    PRIMARY KEY (job_key, attempt)
) STRICT, WITHOUT ROWID;
