//! Deleting a sweep and giving the space back (`Store::delete_sweep`, `Store::compact`).

use std::collections::HashSet;

use etcd_client::{CompactionOptions, Compare, CompareOp, DeleteOptions, TxnOp};
use stilts_common::state::JobState;
use stilts_common::store::{DeleteOutcome, StoreError};

use super::codec::{StoredSweep, decode, decode_job};
use super::error::{EtcdError, corrupt};
use super::keys::unescape;
use super::{EtcdStore, PAGE, Txn, header_revision};

impl EtcdStore {
    /// One transaction removes the sweep record, its membership range and its cell range, if
    /// the record is still the one read. With `purge`, job records of no sweep that are not
    /// leased go next, with their curves, a few per transaction, each only if unchanged since
    /// it was read.
    pub(super) async fn remove_sweep(
        &self,
        sweep: &str,
        purge: bool,
    ) -> Result<DeleteOutcome, StoreError> {
        let keys = self.keys();
        let sweep_key = keys.sweep(sweep);
        let found = self
            .kv()
            .get(sweep_key.clone(), None)
            .await
            .map_err(EtcdError::request("delete sweep"))?;
        let Some(kv) = found.kvs().first() else {
            return Err(StoreError::SweepNotFound(sweep.to_owned()));
        };
        let stored: StoredSweep = decode(|| format!("sweep {sweep}"), kv.value())?;
        let (members, _) = self
            .range_all("delete sweep", &keys.members_of(sweep), 0, PAGE * 10, true)
            .await?;
        let compares = vec![Compare::mod_revision(
            sweep_key.clone(),
            CompareOp::Equal,
            kv.mod_revision(),
        )];
        let txn = Txn::new().when(self.guarded(compares)).and_then([
            TxnOp::delete(sweep_key, None),
            TxnOp::delete(
                keys.members_of(sweep),
                Some(DeleteOptions::new().with_prefix()),
            ),
            TxnOp::delete(
                keys.cells_of(sweep),
                Some(DeleteOptions::new().with_prefix()),
            ),
        ]);
        if !self.txn("delete sweep", txn).await?.succeeded() {
            // Changed meanwhile (cancelled, or deleted and submitted again): nothing was removed.
            return Err(EtcdError::Protocol {
                op: "delete sweep",
                detail: format!("sweep {sweep:?} changed while it was being deleted; try again"),
            }
            .into());
        }
        let purged = if purge {
            self.purge_orphans().await?
        } else {
            Vec::new()
        };
        Ok(DeleteOutcome {
            cells: stored.cells,
            jobs: members.len() as u64,
            purged,
        })
    }

    /// Removes job records that no sweep contains and no worker holds, with their curves.
    async fn purge_orphans(&self) -> Result<Vec<String>, StoreError> {
        let keys = self.keys();
        let (member_kvs, rev) = self
            .range_all("purge jobs", &keys.members(), 0, PAGE * 10, true)
            .await?;
        let mut contained = HashSet::new();
        for kv in &member_kvs {
            let (_, job) = keys
                .parse_member(kv.key())
                .ok_or_else(|| corrupt("membership key", String::from_utf8_lossy(kv.key())))?;
            contained.insert(job);
        }
        let jobs_prefix = keys.jobs();
        let (job_kvs, _) = self
            .range_all("purge jobs", &jobs_prefix, rev, PAGE, false)
            .await?;
        let mut orphans = Vec::new();
        for kv in &job_kvs {
            let name = std::str::from_utf8(&kv.key()[jobs_prefix.len()..])
                .ok()
                .and_then(unescape)
                .ok_or_else(|| corrupt("job key", String::from_utf8_lossy(kv.key())))?;
            if contained.contains(&name) {
                continue;
            }
            let job = decode_job(&name, kv.value(), kv.version())?;
            if job.status.state != JobState::Leased {
                orphans.push((name, kv.mod_revision()));
            }
        }
        // Two deletes and one compare per job; etcd's limit counts operations of both kinds.
        let per_txn = (self.config().max_txn_ops / 3).max(1);
        let mut purged = Vec::with_capacity(orphans.len());
        for chunk in orphans.chunks(per_txn) {
            let compares = chunk
                .iter()
                .map(|(k, rev)| Compare::mod_revision(keys.job(k), CompareOp::Equal, *rev))
                .collect();
            let ops: Vec<TxnOp> = chunk
                .iter()
                .flat_map(|(k, _)| {
                    [
                        TxnOp::delete(keys.job(k), None),
                        TxnOp::delete(keys.curves_of(k), Some(DeleteOptions::new().with_prefix())),
                    ]
                })
                .collect();
            let txn = Txn::new().when(self.guarded(compares)).and_then(ops);
            // A job written meanwhile (retried, reused by a submit) is kept: the chunk is skipped.
            if self.txn("purge jobs", txn).await?.succeeded() {
                purged.extend(chunk.iter().map(|(k, _)| k.clone()));
            }
        }
        purged.sort();
        Ok(purged)
    }

    /// Compacts the history up to the current revision (physically), then defragments the
    /// member this client talks to.
    pub(super) async fn compact_history(&self) -> Result<String, StoreError> {
        let mut client = self.client().clone();
        let resp = self
            .kv()
            .get(self.keys().layout(), None)
            .await
            .map_err(EtcdError::request("compact"))?;
        let rev = header_revision("compact", resp.header())?;
        let before = client
            .status()
            .await
            .map_err(EtcdError::request("compact"))?
            .db_size();
        client
            .compact(rev, Some(CompactionOptions::new().with_physical()))
            .await
            .map_err(EtcdError::request("compact"))?;
        client
            .defragment()
            .await
            .map_err(EtcdError::request("defragment"))?;
        let after = client
            .status()
            .await
            .map_err(EtcdError::request("compact"))?
            .db_size();
        Ok(format!(
            "etcd: history compacted at revision {rev}, defragmented; database {before} → {after} bytes"
        ))
    }
}
