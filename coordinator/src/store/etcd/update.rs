//! `update_jobs`: compare-and-set job writes with their events, packed into transactions.

use std::collections::HashSet;

use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, TxnOp, TxnOpResponse};
use stilts_common::store::{Conflict, EventRecord, JobUpdate, StoreError};

use super::codec::{encode, encode_job};
use super::error::EtcdError;
use super::{EtcdStore, Txn, header_revision};

/// Rounds of "a compare failed, drop the conflicts, retry the rest" before giving up; only
/// another process writing the same jobs or the event counter makes a round fail without a
/// conflict.
const MAX_ROUNDS: u32 = 64;

/// The event counter as last seen: its value and the `mod_revision` that proves it current
/// (0: the counter key does not exist yet).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeqCursor {
    seq: u64,
    mod_revision: i64,
}

/// One update, encoded once.
struct Prepared {
    key: Vec<u8>,
    value: Vec<u8>,
    expected: u64,
}

impl EtcdStore {
    pub(super) async fn apply_updates(
        &self,
        updates: Vec<JobUpdate>,
    ) -> Result<Vec<Result<u64, Conflict>>, StoreError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = updates
            .iter()
            .map(|u| {
                Ok(Prepared {
                    key: self.keys().job(&u.record.key),
                    value: encode_job(&u.record, u.expected_version + 1)?,
                    expected: u.expected_version,
                })
            })
            .collect::<Result<Vec<_>, EtcdError>>()?;
        let groups = self.plan_groups(&updates, &prepared)?;
        let mut cursor = self.inner.events.lock().await;
        let mut out: Vec<Option<Result<u64, Conflict>>> = vec![None; updates.len()];
        for group in groups {
            self.apply_group(&updates, &prepared, group, &mut cursor, &mut out)
                .await?;
        }
        out.into_iter()
            .map(|r| {
                r.ok_or_else(|| {
                    StoreError::from(EtcdError::Protocol {
                        op: "update jobs",
                        detail: "an update was left unanswered".into(),
                    })
                })
            })
            .collect()
    }

    /// Splits the updates, in order, into transactions within etcd's limits; a job written twice
    /// in one call goes to two successive transactions (etcd refuses one key twice in a txn).
    fn plan_groups(
        &self,
        updates: &[JobUpdate],
        prepared: &[Prepared],
    ) -> Result<Vec<Vec<usize>>, EtcdError> {
        let cfg = &self.inner.cfg;
        let counter = self.keys().event_seq().len() + 24;
        let mut groups = Vec::new();
        let (mut group, mut keys, mut ops, mut bytes) =
            (Vec::new(), HashSet::new(), 1, counter * 3);
        for (i, (u, p)) in updates.iter().zip(prepared).enumerate() {
            let event_bytes = u.event.as_ref().map_or(0, event_size) + self.keys().event(0).len();
            let (need_ops, need_bytes) = (
                1 + usize::from(u.event.is_some()),
                3 * p.key.len() + p.value.len() + event_bytes,
            );
            if need_bytes + counter * 3 > cfg.max_txn_bytes {
                return Err(EtcdError::TooLarge {
                    what: format!("update of job {}", u.record.key),
                    bytes: need_bytes,
                    limit: cfg.max_txn_bytes,
                });
            }
            if keys.contains(&p.key)
                || ops + need_ops > cfg.max_txn_ops
                || bytes + need_bytes > cfg.max_txn_bytes
            {
                groups.push(std::mem::take(&mut group));
                keys.clear();
                (ops, bytes) = (1, counter * 3);
            }
            keys.insert(p.key.clone());
            group.push(i);
            ops += need_ops;
            bytes += need_bytes;
        }
        if !group.is_empty() {
            groups.push(group);
        }
        Ok(groups)
    }

    async fn apply_group(
        &self,
        updates: &[JobUpdate],
        prepared: &[Prepared],
        mut live: Vec<usize>,
        cursor: &mut Option<SeqCursor>,
        out: &mut [Option<Result<u64, Conflict>>],
    ) -> Result<(), StoreError> {
        let seq_key = self.keys().event_seq();
        for _ in 0..MAX_ROUNDS {
            if live.is_empty() {
                return Ok(());
            }
            let with_events = live.iter().any(|&i| updates[i].event.is_some());
            let cur = match *cursor {
                Some(c) if with_events => c,
                _ if with_events => self.read_cursor().await?,
                _ => SeqCursor {
                    seq: 0,
                    mod_revision: 0,
                },
            };
            let mut compares = Vec::with_capacity(live.len() + 1);
            let mut puts = Vec::with_capacity(2 * live.len() + 1);
            let mut reads = Vec::with_capacity(live.len() + 1);
            let mut seq = cur.seq;
            for &i in &live {
                let p = &prepared[i];
                compares.push(Compare::version(
                    p.key.clone(),
                    CompareOp::Equal,
                    to_i64(p.expected),
                ));
                puts.push(TxnOp::put(p.key.clone(), p.value.clone(), None));
                reads.push(TxnOp::get(
                    p.key.clone(),
                    Some(GetOptions::new().with_keys_only()),
                ));
                if let Some(event) = &updates[i].event {
                    seq += 1;
                    let event = EventRecord {
                        seq,
                        ..event.clone()
                    };
                    let value = encode(|| format!("event of job {}", event.job_key), &event)?;
                    puts.push(TxnOp::put(self.keys().event(seq), value, None));
                }
            }
            if with_events {
                compares.push(Compare::mod_revision(
                    seq_key.clone(),
                    CompareOp::Equal,
                    cur.mod_revision,
                ));
                puts.push(TxnOp::put(seq_key.clone(), seq.to_string(), None));
                reads.push(TxnOp::get(seq_key.clone(), None));
            }
            let txn = Txn::new()
                .when(self.guarded(compares))
                .and_then(puts)
                .or_else(reads);
            let resp = self.txn("update jobs", txn).await?;
            if resp.succeeded() {
                for &i in &live {
                    out[i] = Some(Ok(prepared[i].expected + 1));
                }
                if with_events {
                    let mod_revision = header_revision("update jobs", resp.header())?;
                    *cursor = Some(SeqCursor { seq, mod_revision });
                }
                return Ok(());
            }
            // The else branch read every job's version (and the counter) at the same revision.
            let responses = resp.op_responses();
            let mut still = Vec::with_capacity(live.len());
            for (n, &i) in live.iter().enumerate() {
                let actual = kv_at(&responses, n).map_or(0, |kv| kv.version());
                let actual = u64::try_from(actual).unwrap_or(0);
                if actual == prepared[i].expected {
                    still.push(i);
                } else {
                    out[i] = Some(Err(Conflict {
                        key: updates[i].record.key.clone(),
                        expected: prepared[i].expected,
                        actual,
                    }));
                }
            }
            if with_events {
                *cursor = Some(cursor_from(kv_at(&responses, live.len()))?);
            }
            live = still;
        }
        Err(EtcdError::Contention {
            op: "update jobs",
            attempts: MAX_ROUNDS,
        }
        .into())
    }

    async fn read_cursor(&self) -> Result<SeqCursor, StoreError> {
        let resp = self
            .kv()
            .get(self.keys().event_seq(), None)
            .await
            .map_err(EtcdError::request("read event counter"))?;
        cursor_from(resp.kvs().first())
    }
}

fn cursor_from(kv: Option<&KeyValue>) -> Result<SeqCursor, StoreError> {
    let Some(kv) = kv else {
        return Ok(SeqCursor {
            seq: 0,
            mod_revision: 0,
        });
    };
    let seq = parse_seq(kv.value())?;
    Ok(SeqCursor {
        seq,
        mod_revision: kv.mod_revision(),
    })
}

pub(crate) fn parse_seq(value: &[u8]) -> Result<u64, StoreError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            super::error::corrupt(
                "event counter",
                format!("{:?} is not a number", String::from_utf8_lossy(value)),
            )
        })
}

/// The first key-value of the `n`-th response of a transaction, if it was a get that found one.
pub(crate) fn kv_at(responses: &[TxnOpResponse], n: usize) -> Option<&KeyValue> {
    match responses.get(n)? {
        TxnOpResponse::Get(get) => get.kvs().first(),
        _ => None,
    }
}

fn event_size(e: &EventRecord) -> usize {
    160 + e.job_key.len() + e.from.len() + e.to.len() + e.worker_id.len() + e.message.len()
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
