//! An in-memory `Store` for tests: the same contract as the real backends (compare-and-set on
//! `version`, idempotent submit at version 1, events), with the versions of updates drawn from
//! one global counter like etcd revisions, so a coordinator that guessed them would fail here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use stilts_common::store::{
    CellRecord, Conflict, CurveRecord, DeleteOutcome, EventRecord, JobRecord, JobUpdate, Snapshot,
    Store, StoreError, SubmitOutcome, SweepRecord, WorkerRecord,
};

#[derive(Debug, Default)]
struct State {
    sweeps: Vec<SweepRecord>,
    jobs: HashMap<String, (JobRecord, Vec<String>)>,
    job_order: Vec<String>,
    cells: HashMap<String, Vec<CellRecord>>,
    workers: HashMap<String, WorkerRecord>,
    events: Vec<EventRecord>,
    revision: u64,
    /// Curves by (job key, attempt).
    curves: std::collections::BTreeMap<(String, u32), CurveRecord>,
}

/// Clones share one state: "reopening" a clone is a restart with the data kept.
#[derive(Debug, Clone, Default)]
pub struct MemStore(Arc<Mutex<State>>);

impl MemStore {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    pub fn sweep_count(&self) -> usize {
        self.state().sweeps.len()
    }

    pub fn job_count(&self) -> usize {
        self.state().jobs.len()
    }
}

impl Store for MemStore {
    async fn load(&self) -> Result<Snapshot, StoreError> {
        let s = self.state();
        Ok(Snapshot {
            sweeps: s.sweeps.clone(),
            jobs: s.job_order.iter().map(|k| s.jobs[k].clone()).collect(),
            workers: s.workers.values().cloned().collect(),
            last_event_seq: s.events.len() as u64,
        })
    }

    async fn submit(
        &self,
        sweep: SweepRecord,
        jobs: Vec<JobRecord>,
        cells: Vec<CellRecord>,
    ) -> Result<SubmitOutcome, StoreError> {
        let mut s = self.state();
        if let Some(existing) = s.sweeps.iter().find(|x| x.name == sweep.name) {
            if existing.grid_digest == sweep.grid_digest {
                return Ok(SubmitOutcome::default());
            }
            return Err(StoreError::SweepExists {
                name: sweep.name,
                existing: existing.grid_digest.clone(),
            });
        }
        let (mut inserted, mut already_stored) = (0, Vec::new());
        for mut job in jobs {
            match s.jobs.get_mut(&job.key) {
                Some((_, sweeps)) => {
                    sweeps.push(sweep.name.clone());
                    already_stored.push(job.key.clone());
                }
                None => {
                    job.version = 1;
                    s.job_order.push(job.key.clone());
                    s.jobs
                        .insert(job.key.clone(), (job, vec![sweep.name.clone()]));
                    inserted += 1;
                }
            }
        }
        s.cells.insert(sweep.name.clone(), cells);
        s.sweeps.push(sweep);
        Ok(SubmitOutcome {
            sweep_created: true,
            jobs_inserted: inserted,
            already_stored,
        })
    }

    async fn update_jobs(
        &self,
        updates: Vec<JobUpdate>,
    ) -> Result<Vec<Result<u64, Conflict>>, StoreError> {
        let mut s = self.state();
        let mut out = Vec::with_capacity(updates.len());
        for u in updates {
            let actual = s.jobs.get(&u.record.key).map_or(0, |(r, _)| r.version);
            if actual != u.expected_version || actual == 0 {
                out.push(Err(Conflict {
                    key: u.record.key,
                    expected: u.expected_version,
                    actual,
                }));
                continue;
            }
            s.revision = s.revision.max(actual) + 1;
            let revision = s.revision;
            let mut record = u.record;
            record.version = revision;
            if let Some(mut e) = u.event {
                e.seq = s.events.len() as u64 + 1;
                s.events.push(e);
            }
            let key = record.key.clone();
            s.jobs.get_mut(&key).unwrap().0 = record;
            out.push(Ok(revision));
        }
        Ok(out)
    }

    async fn cells(&self, sweep: &str) -> Result<Vec<CellRecord>, StoreError> {
        self.state()
            .cells
            .get(sweep)
            .cloned()
            .ok_or_else(|| StoreError::SweepNotFound(sweep.to_string()))
    }

    async fn set_sweep_cancelled(&self, sweep: &str, cancelled: bool) -> Result<(), StoreError> {
        let mut s = self.state();
        let record = s
            .sweeps
            .iter_mut()
            .find(|x| x.name == sweep)
            .ok_or_else(|| StoreError::SweepNotFound(sweep.to_string()))?;
        record.cancelled = cancelled;
        Ok(())
    }

    async fn put_worker(&self, worker: WorkerRecord) -> Result<(), StoreError> {
        self.state().workers.insert(worker.id.clone(), worker);
        Ok(())
    }

    async fn remove_worker(&self, id: &str) -> Result<(), StoreError> {
        self.state().workers.remove(id);
        Ok(())
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        Ok(self
            .state()
            .events
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn delete_sweep(&self, sweep: &str, purge: bool) -> Result<DeleteOutcome, StoreError> {
        let mut s = self.state();
        let Some(at) = s.sweeps.iter().position(|x| x.name == sweep) else {
            return Err(StoreError::SweepNotFound(sweep.to_owned()));
        };
        s.sweeps.remove(at);
        let cells = s.cells.remove(sweep).map_or(0, |c| c.len() as u64);
        let mut jobs = 0;
        for (_, sweeps) in s.jobs.values_mut() {
            let before = sweeps.len();
            sweeps.retain(|x| x != sweep);
            jobs += (before - sweeps.len()) as u64;
        }
        let mut purged = Vec::new();
        if purge {
            purged = s
                .jobs
                .iter()
                .filter(|(_, (j, sweeps))| {
                    sweeps.is_empty() && j.status.state != stilts_common::state::JobState::Leased
                })
                .map(|(k, _)| k.clone())
                .collect();
            purged.sort();
            for k in &purged {
                s.jobs.remove(k);
                s.curves.retain(|(job, _), _| job != k);
            }
            let gone: std::collections::HashSet<&String> = purged.iter().collect();
            s.job_order.retain(|k| !gone.contains(k));
        }
        Ok(DeleteOutcome {
            cells,
            jobs,
            purged,
        })
    }

    async fn compact(&self) -> Result<String, StoreError> {
        Ok("memory: nothing to compact".into())
    }

    async fn put_curve(&self, curve: CurveRecord) -> Result<(), StoreError> {
        let key = (curve.job_key.clone(), curve.attempt);
        self.state().curves.insert(key, curve);
        Ok(())
    }

    async fn curves(&self, job_key: &str) -> Result<Vec<CurveRecord>, StoreError> {
        Ok(self
            .state()
            .curves
            .values()
            .filter(|c| c.job_key == job_key)
            .cloned()
            .collect())
    }
}
