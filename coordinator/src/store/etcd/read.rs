//! Reads (`load`, `cells`, `events_after`) and the small writes (sweep cancel flag, workers).

use std::collections::{HashMap, HashSet};

use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, TxnOp};
use stilts_common::store::{
    CellRecord, EventRecord, JobRecord, Snapshot, StoreError, WorkerRecord,
};

use super::codec::{StoredSweep, decode, decode_cells, decode_job, encode};
use super::error::{EtcdError, corrupt};
use super::keys::unescape;
use super::update::{kv_at, parse_seq};
use super::{EtcdStore, PAGE, Txn, header_revision};

/// Cell chunks per page (a chunk is ~100 KB).
const CELL_PAGE: i64 = 8;
/// Rounds of read-modify-write on a sweep record before giving up.
const MAX_ROUNDS: u32 = 16;

/// What one sweep occupies in etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    /// Number of cells.
    pub cells: u64,
    /// Keys holding them (`cells/<sweep>/<chunk>`).
    pub cell_keys: u64,
    /// Bytes of those keys and values.
    pub cell_bytes: u64,
    /// Membership keys (`members/<sweep>/<job>`), one per job of the sweep.
    pub member_keys: u64,
    /// Bytes of the membership keys (their values are empty).
    pub member_bytes: u64,
    /// Job records of the sweep's jobs (`jobs/<key>`), shared ones included.
    pub job_keys: u64,
    /// Bytes of those job keys and values.
    pub job_bytes: u64,
}

impl EtcdStore {
    pub(super) async fn load_snapshot(&self) -> Result<Snapshot, StoreError> {
        let keys = self.keys();
        let (sweep_kvs, rev) = self
            .range_all("load", &keys.sweeps(), 0, PAGE, false)
            .await?;
        let mut sweeps = Vec::with_capacity(sweep_kvs.len());
        for kv in &sweep_kvs {
            let s: StoredSweep = decode(
                || format!("sweep at {}", String::from_utf8_lossy(kv.key())),
                kv.value(),
            )?;
            sweeps.push(s.record);
        }
        sweeps.sort_by(|a, b| (a.submitted_at_ms, &a.name).cmp(&(b.submitted_at_ms, &b.name)));
        let committed: HashSet<&str> = sweeps.iter().map(|s| s.name.as_str()).collect();

        let (member_kvs, _) = self
            .range_all("load", &keys.members(), rev, PAGE * 10, true)
            .await?;
        // Per job: its committed sweeps, and whether it has any membership at all.
        let mut members: HashMap<String, (Vec<String>, bool)> = HashMap::new();
        for kv in &member_kvs {
            let (sweep, job) = keys
                .parse_member(kv.key())
                .ok_or_else(|| corrupt("membership key", String::from_utf8_lossy(kv.key())))?;
            let entry = members.entry(job).or_default();
            entry.1 = true;
            if committed.contains(sweep.as_str()) {
                entry.0.push(sweep);
            }
        }

        let jobs_prefix = keys.jobs();
        let (job_kvs, _) = self
            .range_all("load", &jobs_prefix, rev, PAGE, false)
            .await?;
        let mut jobs = Vec::with_capacity(job_kvs.len());
        for kv in &job_kvs {
            let name = std::str::from_utf8(&kv.key()[jobs_prefix.len()..])
                .ok()
                .and_then(unescape)
                .ok_or_else(|| corrupt("job key", String::from_utf8_lossy(kv.key())))?;
            let job = decode_job(&name, kv.value(), kv.version())?;
            let (mut of, any) = members.remove(&name).unwrap_or_default();
            if any && of.is_empty() {
                continue; // only in sweeps whose submit has not finished
            }
            of.sort();
            jobs.push((job, of));
        }
        jobs.sort_by(|a: &(JobRecord, _), b| a.0.key.cmp(&b.0.key));

        let (worker_kvs, _) = self
            .range_all("load", &keys.workers(), rev, PAGE, false)
            .await?;
        let mut workers = worker_kvs
            .iter()
            .map(|kv| {
                decode::<WorkerRecord>(
                    || format!("worker at {}", String::from_utf8_lossy(kv.key())),
                    kv.value(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        workers.sort_by(|a, b| a.id.cmp(&b.id));

        let counter = self
            .kv()
            .get(keys.event_seq(), Some(GetOptions::new().with_revision(rev)))
            .await
            .map_err(EtcdError::request("load"))?;
        let last_event_seq = match counter.kvs().first() {
            Some(kv) => parse_seq(kv.value())?,
            None => 0,
        };
        Ok(Snapshot {
            sweeps,
            jobs,
            workers,
            last_event_seq,
        })
    }

    pub(super) async fn read_cells(&self, sweep: &str) -> Result<Vec<CellRecord>, StoreError> {
        let (stored, rev) = self.sweep_at(sweep, 0).await?;
        let (chunks, _) = self
            .range_all(
                "read cells",
                &self.keys().cells_of(sweep),
                rev,
                CELL_PAGE,
                false,
            )
            .await?;
        let mut cells = Vec::with_capacity(usize::try_from(stored.cells).unwrap_or(0));
        for kv in &chunks {
            decode_cells(sweep, kv.value(), &mut cells)?;
        }
        if cells.len() as u64 != stored.cells {
            return Err(corrupt(
                format!("cells of sweep {sweep}"),
                format!(
                    "{} stored, the sweep record says {}",
                    cells.len(),
                    stored.cells
                ),
            ));
        }
        Ok(cells)
    }

    /// The sweep record (at `revision`, 0 = now) and the revision it was read at.
    async fn sweep_at(&self, sweep: &str, revision: i64) -> Result<(StoredSweep, i64), StoreError> {
        let opts = (revision > 0).then(|| GetOptions::new().with_revision(revision));
        let resp = self
            .kv()
            .get(self.keys().sweep(sweep), opts)
            .await
            .map_err(EtcdError::request("read sweep"))?;
        let rev = header_revision("read sweep", resp.header())?;
        let kv = resp
            .kvs()
            .first()
            .ok_or_else(|| StoreError::SweepNotFound(sweep.to_owned()))?;
        Ok((decode(|| format!("sweep {sweep}"), kv.value())?, rev))
    }

    pub(super) async fn read_events(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let keys = self.keys();
        let end = super::keys::prefix_end(&keys.events());
        let mut start = keys.event(after.saturating_add(1));
        let mut out: Vec<EventRecord> = Vec::with_capacity(limit.min(PAGE as usize));
        let mut revision = 0;
        while out.len() < limit {
            let want = (limit - out.len()).min(PAGE as usize) as i64;
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(want);
            if revision > 0 {
                opts = opts.with_revision(revision);
            }
            let resp = self
                .kv()
                .get(start.clone(), Some(opts))
                .await
                .map_err(EtcdError::request("read events"))?;
            revision = header_revision("read events", resp.header())?;
            for kv in resp.kvs() {
                out.push(decode(
                    || format!("event at {}", String::from_utf8_lossy(kv.key())),
                    kv.value(),
                )?);
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    pub(super) async fn write_sweep_cancelled(
        &self,
        sweep: &str,
        cancelled: bool,
    ) -> Result<(), StoreError> {
        let key = self.keys().sweep(sweep);
        for _ in 0..MAX_ROUNDS {
            let resp = self
                .kv()
                .get(key.clone(), None)
                .await
                .map_err(EtcdError::request("cancel sweep"))?;
            let kv = resp
                .kvs()
                .first()
                .ok_or_else(|| StoreError::SweepNotFound(sweep.to_owned()))?;
            let mut stored: StoredSweep = decode(|| format!("sweep {sweep}"), kv.value())?;
            if stored.record.cancelled == cancelled {
                return Ok(());
            }
            stored.record.cancelled = cancelled;
            let value = encode(|| format!("sweep {sweep}"), &stored)?;
            let txn = Txn::new()
                .when(self.guarded(vec![Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    kv.mod_revision(),
                )]))
                .and_then([TxnOp::put(key.clone(), value, None)]);
            if self.txn("cancel sweep", txn).await?.succeeded() {
                return Ok(());
            }
        }
        Err(EtcdError::Contention {
            op: "cancel sweep",
            attempts: MAX_ROUNDS,
        }
        .into())
    }

    /// Creates or replaces a worker; a worker already attached to a lease keeps it.
    pub(super) async fn write_worker(&self, worker: WorkerRecord) -> Result<(), StoreError> {
        let key = self.keys().worker(&worker.id);
        let value = encode(|| format!("worker {}", worker.id), &worker)?;
        // Replace an existing key keeping its lease, or create it without one; with a fence
        // both are guarded, so the two cases are two transactions (an `or_else` put would
        // bypass the fence).
        for _ in 0..MAX_ROUNDS {
            let replace = Txn::new()
                .when(self.guarded(vec![Compare::version(key.clone(), CompareOp::Greater, 0)]))
                .and_then([TxnOp::put(
                    key.clone(),
                    value.clone(),
                    Some(PutOptions::new().with_ignore_lease()),
                )]);
            if self.txn("put worker", replace).await?.succeeded() {
                return Ok(());
            }
            let create = Txn::new()
                .when(self.guarded(vec![Compare::version(key.clone(), CompareOp::Equal, 0)]))
                .and_then([TxnOp::put(key.clone(), value.clone(), None)]);
            if self.txn("put worker", create).await?.succeeded() {
                return Ok(());
            }
        }
        Err(EtcdError::Contention {
            op: "put worker",
            attempts: MAX_ROUNDS,
        }
        .into())
    }

    /// Keys and bytes a sweep occupies (cells, memberships, its jobs' records).
    pub async fn footprint(&self, sweep: &str) -> Result<Footprint, StoreError> {
        let keys = self.keys();
        let (stored, rev) = self.sweep_at(sweep, 0).await?;
        let (chunks, _) = self
            .range_all("footprint", &keys.cells_of(sweep), rev, CELL_PAGE, false)
            .await?;
        let (members, _) = self
            .range_all("footprint", &keys.members_of(sweep), rev, PAGE * 10, true)
            .await?;
        let mut fp = Footprint {
            cells: stored.cells,
            cell_keys: chunks.len() as u64,
            cell_bytes: chunks
                .iter()
                .map(|kv| (kv.key().len() + kv.value().len()) as u64)
                .sum(),
            member_keys: members.len() as u64,
            member_bytes: members.iter().map(|kv| kv.key().len() as u64).sum(),
            ..Footprint::default()
        };
        for group in members.chunks(self.inner.cfg.max_txn_ops) {
            let gets: Vec<TxnOp> = group
                .iter()
                .filter_map(|kv| keys.parse_member(kv.key()))
                .map(|(_, job)| TxnOp::get(keys.job(&job), None))
                .collect();
            let n = gets.len();
            let resp = self.txn("footprint", Txn::new().and_then(gets)).await?;
            let responses = resp.op_responses();
            for i in 0..n {
                if let Some(kv) = kv_at(&responses, i) {
                    fp.job_keys += 1;
                    fp.job_bytes += (kv.key().len() + kv.value().len()) as u64;
                }
            }
        }
        Ok(fp)
    }
}
