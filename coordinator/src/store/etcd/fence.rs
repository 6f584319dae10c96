//! Leader fencing: a store handle that can only write while its coordinator holds the election.
//!
//! A replica that wins the election (`<prefix>election`, see `coordinator/src/leader.rs`) gets a
//! leader key `<prefix>election/<lease id>` created at revision `rev`. [`EtcdStore::fenced`]
//! returns a handle whose every write transaction also compares
//! `create_revision(leader key) == rev`. The key disappears when the election lease expires or
//! the leader resigns, and a later leader's key has a later create revision, so once a replica
//! is deposed none of its writes can commit, even if it has not noticed yet (a paused process, a
//! partition). When a fenced write fails, the handle reads the leader key: if it no longer
//! holds `rev`, the write fails with [`EtcdError::Deposed`] and the handle's [`Fence::deposed`]
//! token is cancelled, which ends the leader's term. Reads are never fenced.

use etcd_client::{Compare, CompareOp};
use tokio_util::sync::CancellationToken;

use super::error::EtcdError;
use super::{EtcdStore, Inner};

/// The election key a leader holds and the revision that created it.
#[derive(Debug, Clone)]
pub struct Fence {
    pub key: Vec<u8>,
    pub revision: i64,
    /// Cancelled when a write finds the key gone or re-created.
    pub deposed: CancellationToken,
}

impl Fence {
    pub fn new(key: Vec<u8>, revision: i64) -> Self {
        Self {
            key,
            revision,
            deposed: CancellationToken::new(),
        }
    }

    fn compare(&self) -> Compare {
        Compare::create_revision(self.key.clone(), CompareOp::Equal, self.revision)
    }
}

impl EtcdStore {
    /// A handle on the same connection whose writes all require `fence` to be current.
    pub fn fenced(&self, fence: Fence) -> EtcdStore {
        let inner = &self.inner;
        EtcdStore {
            inner: std::sync::Arc::new(Inner {
                client: inner.client.clone(),
                kv: inner.kv.clone(),
                keys: inner.keys.clone(),
                cfg: inner.cfg.clone(),
                events: tokio::sync::Mutex::new(None),
                fence: Some(fence),
                _members: inner._members.clone(),
            }),
        }
    }

    /// The fence of this handle, if any.
    pub fn fence(&self) -> Option<&Fence> {
        self.inner.fence.as_ref()
    }

    /// `compares` plus the fence compare of a fenced handle.
    pub(super) fn guarded(&self, mut compares: Vec<Compare>) -> Vec<Compare> {
        if let Some(f) = &self.inner.fence {
            compares.push(f.compare());
        }
        compares
    }

    /// After a failed transaction: [`EtcdError::Deposed`] when the fence no longer holds.
    /// (A key, once deleted, never comes back with the same create revision, so a fence that
    /// holds now held when the transaction ran.)
    pub(super) async fn check_fence(&self, op: &'static str) -> Result<(), EtcdError> {
        let Some(f) = &self.inner.fence else {
            return Ok(());
        };
        let resp = self
            .kv()
            .get(f.key.clone(), None)
            .await
            .map_err(EtcdError::request(op))?;
        let found = resp.kvs().first().map_or(0, |kv| kv.create_revision());
        if found == f.revision {
            return Ok(());
        }
        f.deposed.cancel();
        Err(EtcdError::Deposed {
            op,
            key: String::from_utf8_lossy(&f.key).into_owned(),
            revision: f.revision,
            found,
        })
    }
}
