//! `submit`: jobs (put if absent) with membership keys, then cell chunks, sweep record last.
//! See the module doc of `etcd.rs` for the atomicity this gives.

use std::collections::HashSet;

use etcd_client::{Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, TxnOp};
use stilts_common::store::{CellRecord, JobRecord, StoreError, SubmitOutcome, SweepRecord};

use super::codec::{StoredSweep, decode, encode, encode_cells, encode_job};
use super::error::EtcdError;
use super::keys::CELLS_PER_KEY;
use super::update::kv_at;
use super::{EtcdStore, Txn};

/// Rounds of "a job appeared meanwhile, write it as member only" per transaction.
const MAX_ROUNDS: u32 = 16;

/// What one piece of a submit writes.
enum Unit {
    /// A job: put (if absent) its record, and its membership key.
    Job {
        /// The job's key (its content hash), as the caller names it.
        name: String,
        key: Vec<u8>,
        value: Vec<u8>,
        member: Vec<u8>,
    },
    /// A cell chunk.
    Cells { key: Vec<u8>, value: Vec<u8> },
}

impl Unit {
    fn bytes(&self) -> usize {
        match self {
            // The job key appears in the put, the compare and the else-branch get.
            Unit::Job {
                key, value, member, ..
            } => 3 * key.len() + value.len() + member.len(),
            Unit::Cells { key, value } => key.len() + value.len(),
        }
    }

    /// (success ops, compares) at most.
    fn ops(&self) -> usize {
        match self {
            Unit::Job { .. } => 2,
            Unit::Cells { .. } => 1,
        }
    }
}

/// How one transaction of a submit ended.
enum Written {
    /// How many jobs were inserted, and the keys of those found stored already.
    Inserted(u64, Vec<String>),
    /// Another submit of the same name finished first.
    SweepAppeared(KeyValue),
}

impl EtcdStore {
    pub(super) async fn submit_sweep(
        &self,
        sweep: SweepRecord,
        jobs: Vec<JobRecord>,
        cells: Vec<CellRecord>,
    ) -> Result<SubmitOutcome, StoreError> {
        let keys = self.keys();
        let sweep_key = keys.sweep(&sweep.name);
        let count = || Some(GetOptions::new().with_prefix().with_count_only());
        let probe = Txn::new().and_then([
            TxnOp::get(sweep_key.clone(), None),
            TxnOp::get(keys.members_of(&sweep.name), count()),
            TxnOp::get(keys.cells_of(&sweep.name), count()),
        ]);
        let resp = self.txn("submit", probe).await?;
        let responses = resp.op_responses();
        if let Some(kv) = kv_at(&responses, 0) {
            return existing_outcome(&sweep, kv);
        }
        let leftovers = responses.iter().skip(1).any(|r| match r {
            etcd_client::TxnOpResponse::Get(g) => g.count() > 0,
            _ => false,
        });
        if leftovers {
            // An earlier submit of this name stopped halfway: forget its memberships and cells.
            tracing::info!(sweep = %sweep.name, "clearing the leftovers of an unfinished submit");
            let prefix = || Some(DeleteOptions::new().with_prefix());
            let clear = Txn::new()
                .when(self.guarded(vec![Compare::version(
                    sweep_key.clone(),
                    CompareOp::Equal,
                    0,
                )]))
                .and_then([
                    TxnOp::delete(keys.members_of(&sweep.name), prefix()),
                    TxnOp::delete(keys.cells_of(&sweep.name), prefix()),
                ])
                .or_else([TxnOp::get(sweep_key.clone(), None)]);
            let resp = self.txn("submit", clear).await?;
            if let Some(kv) = (!resp.succeeded())
                .then(|| kv_at(&resp.op_responses(), 0).cloned())
                .flatten()
            {
                return existing_outcome(&sweep, &kv);
            }
        }

        let units = self.units(&sweep, &jobs, &cells)?;
        let stored = StoredSweep {
            record: sweep.clone(),
            cells: cells.len() as u64,
        };
        let sweep_value = encode(|| format!("sweep {}", sweep.name), &stored)?;
        let batches = self.pack(units, sweep_key.len() * 3 + sweep_value.len())?;
        let last = batches.len().saturating_sub(1);
        let (mut jobs_inserted, mut already_stored) = (0, Vec::new());
        for (n, batch) in batches.into_iter().enumerate() {
            let final_put = (n == last).then_some(sweep_value.as_slice());
            match self.write_batch(&sweep_key, batch, final_put).await? {
                Written::Inserted(count, already) => {
                    jobs_inserted += count;
                    already_stored.extend(already);
                }
                Written::SweepAppeared(kv) => return existing_outcome(&sweep, &kv),
            }
        }
        tracing::debug!(sweep = %sweep.name, jobs_inserted, cells = cells.len(), "sweep submitted");
        Ok(SubmitOutcome {
            sweep_created: true,
            jobs_inserted,
            already_stored,
        })
    }

    /// Encodes the jobs (first of each key) and cell chunks.
    fn units(
        &self,
        sweep: &SweepRecord,
        jobs: &[JobRecord],
        cells: &[CellRecord],
    ) -> Result<Vec<Unit>, EtcdError> {
        let keys = self.keys();
        let mut seen = HashSet::with_capacity(jobs.len());
        let mut units = Vec::with_capacity(jobs.len() + cells.len() / CELLS_PER_KEY + 1);
        for job in jobs {
            if seen.insert(job.key.as_str()) {
                units.push(Unit::Job {
                    name: job.key.clone(),
                    key: keys.job(&job.key),
                    value: encode_job(job, 1)?,
                    member: keys.member(&sweep.name, &job.key),
                });
            }
        }
        for (n, chunk) in cells.chunks(CELLS_PER_KEY).enumerate() {
            units.push(Unit::Cells {
                key: keys.cell_chunk(&sweep.name, n),
                value: encode_cells(&sweep.name, chunk)?,
            });
        }
        Ok(units)
    }

    /// Packs units into transactions, each leaving room for the sweep compare and put.
    fn pack(&self, units: Vec<Unit>, reserve_bytes: usize) -> Result<Vec<Vec<Unit>>, EtcdError> {
        let cfg = &self.inner.cfg;
        let (max_ops, max_bytes) = (
            cfg.max_txn_ops - 1,
            cfg.max_txn_bytes.saturating_sub(reserve_bytes),
        );
        let mut batches = vec![Vec::new()];
        let (mut ops, mut bytes) = (0, 0);
        for unit in units {
            let (o, b) = (unit.ops(), unit.bytes());
            if b > max_bytes {
                return Err(EtcdError::TooLarge {
                    what: match unit {
                        Unit::Job { .. } => "job record".into(),
                        Unit::Cells { .. } => format!("chunk of {CELLS_PER_KEY} cells"),
                    },
                    bytes: b,
                    limit: max_bytes,
                });
            }
            if ops + o > max_ops || bytes + b > max_bytes {
                batches.push(Vec::new());
                (ops, bytes) = (0, 0);
            }
            ops += o;
            bytes += b;
            if let Some(batch) = batches.last_mut() {
                batch.push(unit);
            }
        }
        Ok(batches)
    }

    /// Writes one transaction of a submit, guarded by "the sweep does not exist yet"; jobs are
    /// put only where absent (a job that appears meanwhile is retried as membership only).
    async fn write_batch(
        &self,
        sweep_key: &[u8],
        batch: Vec<Unit>,
        sweep_value: Option<&[u8]>,
    ) -> Result<Written, StoreError> {
        let mut absent: Vec<bool> = batch
            .iter()
            .map(|u| matches!(u, Unit::Job { .. }))
            .collect();
        for _ in 0..MAX_ROUNDS {
            let mut compares = vec![Compare::version(sweep_key.to_vec(), CompareOp::Equal, 0)];
            let mut puts = Vec::with_capacity(batch.len() * 2 + 1);
            let mut reads = vec![TxnOp::get(
                sweep_key.to_vec(),
                Some(GetOptions::new().with_keys_only()),
            )];
            let mut checked = Vec::new();
            for (n, unit) in batch.iter().enumerate() {
                match unit {
                    Unit::Job {
                        key, value, member, ..
                    } => {
                        if absent[n] {
                            compares.push(Compare::version(key.clone(), CompareOp::Equal, 0));
                            puts.push(TxnOp::put(key.clone(), value.clone(), None));
                            reads.push(TxnOp::get(
                                key.clone(),
                                Some(GetOptions::new().with_keys_only()),
                            ));
                            checked.push(n);
                        }
                        puts.push(TxnOp::put(member.clone(), Vec::new(), None));
                    }
                    Unit::Cells { key, value } => {
                        puts.push(TxnOp::put(key.clone(), value.clone(), None))
                    }
                }
            }
            if let Some(value) = sweep_value {
                puts.push(TxnOp::put(sweep_key.to_vec(), value.to_vec(), None));
            }
            let txn = Txn::new()
                .when(self.guarded(compares))
                .and_then(puts)
                .or_else(reads);
            let resp = self.txn("submit", txn).await?;
            if resp.succeeded() {
                let already = batch
                    .iter()
                    .zip(&absent)
                    .filter_map(|(u, &absent)| match u {
                        Unit::Job { name, .. } if !absent => Some(name.clone()),
                        _ => None,
                    })
                    .collect();
                return Ok(Written::Inserted(checked.len() as u64, already));
            }
            let responses = resp.op_responses();
            if kv_at(&responses, 0).is_some() {
                let current = self
                    .kv()
                    .get(sweep_key.to_vec(), None)
                    .await
                    .map_err(EtcdError::request("submit"))?;
                if let Some(kv) = current.kvs().first() {
                    return Ok(Written::SweepAppeared(kv.clone()));
                }
            }
            for (r, &n) in checked.iter().enumerate() {
                if kv_at(&responses, r + 1).is_some() {
                    absent[n] = false;
                }
            }
        }
        Err(EtcdError::Contention {
            op: "submit",
            attempts: MAX_ROUNDS,
        }
        .into())
    }
}

/// The sweep exists: an identical re-submission is a no-op, another grid is refused.
fn existing_outcome(sweep: &SweepRecord, kv: &KeyValue) -> Result<SubmitOutcome, StoreError> {
    let stored: StoredSweep = decode(|| format!("sweep {}", sweep.name), kv.value())?;
    if stored.record.grid_digest == sweep.grid_digest {
        Ok(SubmitOutcome::default())
    } else {
        Err(StoreError::SweepExists {
            name: sweep.name.clone(),
            existing: stored.record.grid_digest,
        })
    }
}
