//! The etcd backend of [`Store`], for clusters: several coordinator replicas share one etcd
//! cluster (one leader writes, elected through etcd), and worker liveness can ride on etcd leases.
//!
//! # Key layout
//! Everything lives under the configured prefix (default `/stilts/`); values are compact JSON and
//! small (no checkpoint, no training curve). Names from users are escaped (`%` → `%25`,
//! `/` → `%2F`) so that one sweep's range never contains another's.
//!
//! | key | value |
//! |---|---|
//! | `meta/layout` | layout version (`1`); `connect` refuses a prefix holding another |
//! | `meta/event_seq` | sequence number of the last event (decimal) |
//! | `sweeps/<name>` | [`SweepRecord`] plus its cell count; written **last** by `submit` |
//! | `members/<sweep>/<job key>` | empty; the job belongs to the sweep |
//! | `jobs/<job key>` | [`JobRecord`] (its `version` is the key's etcd version, see below) |
//! | `cells/<sweep>/<chunk, 6 digits>` | up to 1,000 cells as `[model, intermediate, target, language, seed, evaluate_job]` |
//! | `workers/<id>` | [`WorkerRecord`], optionally attached to an etcd lease |
//! | `events/<seq, 20 digits>` | [`EventRecord`] |
//! | `curves/<job key>/<attempt, 10 digits>` | the attempt's training curve ([`CurveRecord`] points, JSON; bounded to about a thousand points, ~80 KB of JSON) |
//!
//! Membership keys live in their own range rather than under `sweeps/<name>/…` so that listing
//! sweeps does not stream every membership key. [`EtcdStore::footprint`] reports what a sweep
//! occupies; measured with `examples/etcd_bench.rs` (etcd 3.4.23, 2,000 jobs, 10,000 cells):
//! **10 cell keys and ~1.06 MB per 10,000 cells** (~106 bytes per cell), ~760 bytes per job
//! record, ~115 bytes per membership key.
//!
//! # Versions and fencing
//! A job's `version` is etcd's per-key **version** counter (1 on creation, +1 on every put, 0
//! when absent), not a field compared in the client. Every `update_jobs` write is a transaction
//! `if version(jobs/<key>) == expected then put job, put event, bump meta/event_seq`, so the new
//! version is exactly `expected + 1`, as the [`Store`] docs say, and a stale writer changes
//! nothing. The fencing token of an assignment is therefore that version; it is equivalent to
//! the key's `mod_revision` (any later write changes both), but stays small and dense, and is
//! what SQLite hands out too. Jobs are deleted only by `delete_sweep` with `purge`, and only when
//! no sweep contains them and no worker holds them; a purged job submitted again starts over at
//! version 1, which is harmless because a key names the same work (a late report of the old
//! job would be a result of that same spec).
//!
//! A leader's handle ([`EtcdStore::fenced`]) adds one compare to every write transaction: the
//! election key it won still has the create revision it won it with (see `fence.rs`), so a
//! deposed coordinator can no longer commit anything.
//!
//! # Batching and events
//! Event sequence numbers must be dense in commit order (a reader paging with `events_after`
//! must never see seq n+1 before n commits). So each transaction also compares and bumps
//! `meta/event_seq`, and the updates of one `update_jobs` call are packed into as few
//! transactions as etcd's limits allow (`max_txn_ops`, `max_txn_bytes`; two updates of the same
//! job go to successive transactions). When a transaction's compare fails, its `else` branch
//! reads back every version and the counter in the same round trip: updates whose version
//! differs are answered with [`Conflict`], the rest are retried at once. One lost race thus
//! never undoes the others, and each write is atomic with its event. Writers of one handle are
//! serialised; two processes writing at once (e.g. during a leader hand-over) only retry.
//! Measured (`examples/etcd_bench.rs`, local etcd, 2 shared cores): ~800 updates/s at one
//! update per call (one raft commit each), ~4,000–5,800 updates/s in calls of 10–500 updates.
//!
//! # Atomicity of `submit`
//! A submit that fits into one transaction (up to ~60 jobs with their cells, at the default
//! limits) is atomic. A larger
//! one is written in chunks: jobs (each put only if absent, compared in the same transaction)
//! with their membership keys, then cell chunks, and the sweep record last, in the final chunk.
//! Until that last transaction commits the sweep is invisible: `load` lists no sweep, hides jobs
//! whose only memberships are of unfinished sweeps, and `cells` answers `SweepNotFound`. A crash
//! halfway leaves only such hidden keys; re-submitting (same or another grid) first clears the
//! name's stale membership and cell keys, then writes everything again, so it completes the
//! sweep. Jobs inserted by an abandoned submit stay stored (they are shared by key, other sweeps
//! may use them); they become visible, without sweeps, only if their sweep is re-submitted with
//! a grid that no longer contains them.
//!
//! # Worker leases
//! See [`EtcdStore::grant_lease`]: the coordinator grants one lease per registered worker,
//! writes the worker with [`EtcdStore::put_worker_leased`], and refreshes the lease on each
//! heartbeat; a worker that stops heartbeating loses its key when the lease runs out.

mod codec;
mod config;
mod endpoints;
mod error;
mod fence;
mod keys;
mod lease;
mod lifecycle;
mod read;
mod submit;
mod update;

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, GetOptions, KeyValue, KvClient, Txn, TxnOp, TxnResponse,
};
use stilts_common::backoff::{Backoff, BackoffConfig, Jitter};
use stilts_common::store::{
    CellRecord, Conflict, CurveRecord, DeleteOutcome, EventRecord, JobUpdate, Snapshot, Store,
    StoreError, SubmitOutcome, SweepRecord, WorkerRecord,
};

use self::codec::{decode, encode};
pub use self::config::{
    ENV_ENDPOINTS, ENV_PASSWORD, ENV_PREFIX, ENV_USERNAME, EtcdConfig, EtcdTlsConfig,
};
use self::endpoints::EndpointWatch;
pub use self::error::EtcdError;
use self::error::corrupt;
pub use self::fence::Fence;
use self::keys::{Keys, LAYOUT, prefix_end};
pub use self::lease::{LeaseGrant, LeaseKeepAlive};
pub use self::read::Footprint;
use self::update::SeqCursor;

/// Largest gRPC message the client accepts (a page of records).
const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// Records per page when reading whole ranges (jobs are ~1 KB each).
const PAGE: i64 = 1_000;
/// How often each etcd member's client port is probed (several endpoints only).
const MEMBER_PROBE_PERIOD: Duration = Duration::from_millis(500);

/// A handle to the stilts state in etcd; cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    kv: KvClient,
    keys: Keys,
    cfg: EtcdConfig,
    /// Serialises this handle's job writers and caches the event counter.
    events: tokio::sync::Mutex<Option<SeqCursor>>,
    /// Set on a leader's handle: every write also compares the leader key (`fence.rs`).
    fence: Option<Fence>,
    /// Keeps stopped members out of the client's rotation (several endpoints only).
    _members: Option<Arc<EndpointWatch>>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.inner.cfg.endpoints)
            .field("prefix", &self.inner.keys.prefix())
            .finish()
    }
}

impl EtcdStore {
    /// Connects, checks that etcd answers (retrying for up to `startup_wait`, with a warning
    /// per attempt) and that the prefix holds this layout (writing the marker on first use).
    /// An unreachable etcd is [`EtcdError::Unreachable`], naming the endpoints, with a hint.
    pub async fn connect(cfg: EtcdConfig) -> Result<Self, StoreError> {
        cfg.validate()?;
        let opts = cfg.connect_options()?;
        let keys = Keys::new(cfg.normalized_prefix());
        let start = Instant::now();
        // 100 ms doubling to 2 s, equal jitter: replicas started together spread their retries.
        let mut backoff = Backoff::new(BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        })
        .with_jitter(Jitter::Equal);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match try_connect(&cfg, opts.clone(), &keys).await {
                Ok(client) => {
                    let kv = client
                        .kv_client()
                        .max_decoding_message_size(MAX_RESPONSE_BYTES);
                    tracing::info!(endpoints = %cfg.endpoints_display(), prefix = keys.prefix(), "connected to etcd");
                    let members = EndpointWatch::spawn(
                        client.clone(),
                        &cfg.endpoints,
                        cfg.tls.is_some(),
                        MEMBER_PROBE_PERIOD,
                    )
                    .map(Arc::new);
                    return Ok(Self {
                        inner: Arc::new(Inner {
                            client,
                            kv,
                            keys,
                            cfg,
                            events: tokio::sync::Mutex::new(None),
                            fence: None,
                            _members: members,
                        }),
                    });
                }
                Err(e) if !is_transient(&e) => {
                    return Err(EtcdError::Refused {
                        endpoints: cfg.endpoints_display(),
                        source: Box::new(e),
                    }
                    .into());
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    let waited = start.elapsed();
                    if waited + delay > cfg.startup_wait {
                        return Err(EtcdError::Unreachable {
                            endpoints: cfg.endpoints_display(),
                            attempts,
                            waited,
                            source: Box::new(e),
                        }
                        .into());
                    }
                    tracing::warn!(
                        endpoints = %cfg.endpoints_display(),
                        attempt = attempts,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %e,
                        "etcd not reachable yet"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// The configuration this handle was opened with.
    pub fn config(&self) -> &EtcdConfig {
        &self.inner.cfg
    }

    /// The underlying client, for the coordinator's leader election (`campaign`/`observe`).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    fn kv(&self) -> KvClient {
        self.inner.kv.clone()
    }

    fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// Runs a transaction. On a fenced handle whose write lost its compare, checks the fence
    /// first: a deposed leader gets [`EtcdError::Deposed`] rather than a retry.
    async fn txn(&self, op: &'static str, txn: Txn) -> Result<TxnResponse, EtcdError> {
        let resp = self.kv().txn(txn).await.map_err(EtcdError::request(op))?;
        if !resp.succeeded() {
            self.check_fence(op).await?;
        }
        Ok(resp)
    }

    /// Every key-value under `prefix`, paging at `page` records, all read at one revision
    /// (`revision` 0: the current one, which is returned for the next reads).
    async fn range_all(
        &self,
        op: &'static str,
        prefix: &[u8],
        revision: i64,
        page: i64,
        keys_only: bool,
    ) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let end = prefix_end(prefix);
        let mut start = prefix.to_vec();
        let mut revision = revision;
        let mut out = Vec::new();
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(page);
            if revision > 0 {
                opts = opts.with_revision(revision);
            }
            if keys_only {
                opts = opts.with_keys_only();
            }
            let mut resp = self
                .kv()
                .get(start.clone(), Some(opts))
                .await
                .map_err(EtcdError::request(op))?;
            if revision == 0 {
                revision = header_revision(op, resp.header())?;
            }
            let more = resp.more();
            let kvs = resp.take_kvs();
            if let Some(last) = kvs.last() {
                start = last.key().to_vec();
                start.push(0);
            }
            out.extend(kvs);
            if !more {
                return Ok((out, revision));
            }
        }
    }
}

fn header_revision(
    op: &'static str,
    header: Option<&etcd_client::ResponseHeader>,
) -> Result<i64, EtcdError> {
    header.map(|h| h.revision()).ok_or(EtcdError::Protocol {
        op,
        detail: "response without header".into(),
    })
}

/// One connection attempt: connect, then write (or check) the layout marker, which proves that
/// etcd answers, that a leader exists and that the user may write under the prefix.
async fn try_connect(
    cfg: &EtcdConfig,
    opts: etcd_client::ConnectOptions,
    keys: &Keys,
) -> Result<Client, EtcdError> {
    let timeout = cfg.connect_timeout();
    let attempt = async {
        let client = Client::connect(&cfg.endpoints, Some(opts))
            .await
            .map_err(EtcdError::request("connect"))?;
        let layout = keys.layout();
        let txn = Txn::new()
            .when([Compare::version(layout.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(layout.clone(), LAYOUT, None)])
            .or_else([TxnOp::get(layout, None)]);
        let resp = client
            .kv_client()
            .txn(txn)
            .await
            .map_err(EtcdError::request("connect"))?;
        if !resp.succeeded() {
            let found = update::kv_at(&resp.op_responses(), 0)
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
                .unwrap_or_default();
            if found != LAYOUT {
                return Err(EtcdError::LayoutMismatch {
                    prefix: keys.prefix().to_owned(),
                    found,
                    supported: LAYOUT,
                });
            }
        }
        Ok(client)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| EtcdError::Timeout {
            op: "connect",
            timeout,
        })?
}

/// Whether retrying `connect` can help (network, no leader yet) or not (auth, permissions, layout).
fn is_transient(e: &EtcdError) -> bool {
    match e {
        EtcdError::Timeout { .. } => true,
        EtcdError::Request { source, .. } => match source {
            etcd_client::Error::GRpcStatus(status) => matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
            ),
            etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
            _ => false,
        },
        _ => false,
    }
}

impl Store for EtcdStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.load_snapshot().await
    }

    async fn submit(
        &self,
        sweep: SweepRecord,
        jobs: Vec<stilts_common::store::JobRecord>,
        cells: Vec<CellRecord>,
    ) -> Result<SubmitOutcome, StoreError> {
        self.submit_sweep(sweep, jobs, cells).await
    }

    async fn update_jobs(
        &self,
        updates: Vec<JobUpdate>,
    ) -> Result<Vec<Result<u64, Conflict>>, StoreError> {
        self.apply_updates(updates).await
    }

    async fn cells(&self, sweep: &str) -> Result<Vec<CellRecord>, StoreError> {
        self.read_cells(sweep).await
    }

    async fn set_sweep_cancelled(&self, sweep: &str, cancelled: bool) -> Result<(), StoreError> {
        self.write_sweep_cancelled(sweep, cancelled).await
    }

    async fn put_worker(&self, worker: WorkerRecord) -> Result<(), StoreError> {
        self.write_worker(worker).await
    }

    async fn remove_worker(&self, id: &str) -> Result<(), StoreError> {
        let txn = Txn::new()
            .when(self.guarded(Vec::new()))
            .and_then([TxnOp::delete(self.keys().worker(id), None)]);
        self.txn("remove worker", txn).await?;
        Ok(())
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.read_events(after, limit).await
    }

    async fn delete_sweep(&self, sweep: &str, purge: bool) -> Result<DeleteOutcome, StoreError> {
        self.remove_sweep(sweep, purge).await
    }

    async fn compact(&self) -> Result<String, StoreError> {
        self.compact_history().await
    }

    async fn put_curve(&self, curve: CurveRecord) -> Result<(), StoreError> {
        let key = self.keys().curve(&curve.job_key, curve.attempt);
        let value = encode(
            || format!("curve of job {} attempt {}", curve.job_key, curve.attempt),
            &curve.points,
        )?;
        let txn = Txn::new()
            .when(self.guarded(Vec::new()))
            .and_then([TxnOp::put(key, value, None)]);
        self.txn("put curve", txn).await?;
        Ok(())
    }

    async fn curves(&self, job_key: &str) -> Result<Vec<CurveRecord>, StoreError> {
        let prefix = self.keys().curves_of(job_key);
        let (kvs, _) = self
            .range_all("read curves", &prefix, 0, PAGE, false)
            .await?;
        kvs.iter()
            .map(|kv| -> Result<CurveRecord, StoreError> {
                let what = || format!("curve at {}", String::from_utf8_lossy(kv.key()));
                let attempt = kv.key()[prefix.len()..]
                    .iter()
                    .map(|&b| b as char)
                    .collect::<String>()
                    .parse::<u32>()
                    .map_err(|e| corrupt(what(), e))?;
                Ok(CurveRecord {
                    job_key: job_key.to_owned(),
                    attempt,
                    points: decode(what, kv.value())?,
                })
            })
            .collect()
    }
}
