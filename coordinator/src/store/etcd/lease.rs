//! Worker leases as etcd leases.
//!
//! How the coordinator uses them:
//! 1. `RegisterWorker`: [`EtcdStore::grant_lease`] with the worker lease TTL, then
//!    [`EtcdStore::put_worker_leased`]. Keep the lease id next to the worker in memory.
//! 2. Each `Heartbeat`: [`LeaseKeepAlive::refresh`] on that worker's keeper (open it once with
//!    [`EtcdStore::keep_alive`]); `Ok(remaining)` extends the worker, [`EtcdError::LeaseGone`]
//!    means the lease already expired: treat the worker as lost and make it register again.
//!    Later `Store::put_worker` calls (cached artifacts, expiry time) keep the key's lease.
//! 3. A worker that stops heartbeating: etcd deletes `workers/<id>` when the lease runs out,
//!    whichever coordinator replica is leader, even while none is. The leader's reaper (or a watch
//!    on `workers/`) then expires that worker's jobs through `update_jobs` as usual; the job
//!    versions fence off anything the lost worker reports later.
//! 4. Clean shutdown of a worker: [`EtcdStore::revoke_lease`] (its key goes at once).
//!
//! The coordinator's own liveness (leader election) uses the same calls: a lease kept alive by
//! [`EtcdStore::spawn_keep_alive`] and `client().campaign(…)` with it.

use std::time::Duration;

use etcd_client::{LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp};
use stilts_common::store::{StoreError, WorkerRecord};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::EtcdStore;
use super::codec::encode;
use super::error::EtcdError;

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseGrant {
    pub id: i64,
    /// The TTL etcd chose (at least the requested one, rounded up to whole seconds and to
    /// etcd's minimum).
    pub ttl: Duration,
}

/// An open keep-alive stream for one lease.
pub struct LeaseKeepAlive {
    keeper: LeaseKeeper,
    stream: LeaseKeepAliveStream,
}

impl std::fmt::Debug for LeaseKeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseKeepAlive")
            .field("lease", &self.keeper.id())
            .finish()
    }
}

impl LeaseKeepAlive {
    pub fn lease(&self) -> i64 {
        self.keeper.id()
    }

    /// Renews the lease; returns its fresh TTL, or [`EtcdError::LeaseGone`] once it expired.
    pub async fn refresh(&mut self) -> Result<Duration, EtcdError> {
        let lease = self.keeper.id();
        self.keeper
            .keep_alive()
            .await
            .map_err(EtcdError::request("lease keep-alive"))?;
        let resp = self
            .stream
            .message()
            .await
            .map_err(EtcdError::request("lease keep-alive"))?
            .ok_or(EtcdError::Protocol {
                op: "lease keep-alive",
                detail: "stream closed".into(),
            })?;
        if resp.ttl() <= 0 {
            return Err(EtcdError::LeaseGone { lease });
        }
        Ok(Duration::from_secs(resp.ttl().unsigned_abs()))
    }
}

impl EtcdStore {
    /// Grants a lease of `ttl` (rounded up to whole seconds).
    pub async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant, StoreError> {
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let resp = self
            .inner
            .client
            .lease_client()
            .grant(i64::try_from(secs.max(1)).unwrap_or(i64::MAX), None)
            .await
            .map_err(EtcdError::request("lease grant"))?;
        Ok(LeaseGrant {
            id: resp.id(),
            ttl: Duration::from_secs(resp.ttl().unsigned_abs()),
        })
    }

    /// Opens a keep-alive stream for `lease` (renewing it once).
    pub async fn keep_alive(&self, lease: i64) -> Result<LeaseKeepAlive, StoreError> {
        let (keeper, stream) = self
            .inner
            .client
            .lease_client()
            .keep_alive(lease)
            .await
            .map_err(|source| match source {
                etcd_client::Error::LeaseKeepAliveError(_) => EtcdError::LeaseGone { lease },
                source => EtcdError::Request {
                    op: "lease keep-alive",
                    source,
                },
            })?;
        Ok(LeaseKeepAlive { keeper, stream })
    }

    /// Renews `lease` every `interval` (a third of its TTL is usual) until `cancel` fires or
    /// the lease is gone; the task's result says which. Reopens the stream after an error.
    pub fn spawn_keep_alive(
        &self,
        lease: i64,
        interval: Duration,
        cancel: CancellationToken,
    ) -> JoinHandle<Result<(), StoreError>> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut keeper: Option<LeaseKeepAlive> = None;
            loop {
                let renewed = match keeper.as_mut() {
                    Some(k) => k.refresh().await.map_err(StoreError::from),
                    None => match store.keep_alive(lease).await {
                        Ok(k) => {
                            keeper = Some(k);
                            Ok(Duration::ZERO)
                        }
                        Err(e) => Err(e),
                    },
                };
                match renewed {
                    Ok(_) => {}
                    Err(StoreError::Backend(e)) if is_gone(e.as_ref()) => {
                        return Err(StoreError::Backend(e));
                    }
                    Err(e) => {
                        tracing::warn!(lease = format_args!("{lease:x}"), error = %e, "lease keep-alive failed; retrying");
                        keeper = None;
                    }
                }
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(interval) => {}
                }
            }
        })
    }

    /// Revokes `lease`: every key attached to it is deleted now.
    pub async fn revoke_lease(&self, lease: i64) -> Result<(), StoreError> {
        self.inner
            .client
            .lease_client()
            .revoke(lease)
            .await
            .map_err(EtcdError::request("lease revoke"))?;
        Ok(())
    }

    /// Creates or replaces a worker record attached to `lease`: the key disappears when the
    /// lease expires or is revoked.
    pub async fn put_worker_leased(
        &self,
        worker: WorkerRecord,
        lease: i64,
    ) -> Result<(), StoreError> {
        let value = encode(|| format!("worker {}", worker.id), &worker)?;
        let txn = Txn::new()
            .when(self.guarded(Vec::new()))
            .and_then([TxnOp::put(
                self.keys().worker(&worker.id),
                value,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        self.txn("put worker", txn).await?;
        Ok(())
    }
}

fn is_gone(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    matches!(
        e.downcast_ref::<EtcdError>(),
        Some(EtcdError::LeaseGone { .. })
    )
}
