//! The coordinator through real loopback gRPC, once per store backend ("the conformance suite
//! through gRPC"). Add a backend: one more `suite!` line with its factory.
//!
//! The etcd instance runs against a real etcd server (one shared by the tests running at the same
//! time, a fresh key prefix per test); without `etcd` on PATH each etcd test prints a skip line
//! and passes.

mod grpc;
mod support;
mod support_etcd;

use std::sync::Arc;

use stilts_coordinator::store::etcd::{EtcdConfig, EtcdStore};
use support::{MemFactory, SqliteFactory, StoreFactory};
use support_etcd::{EtcdServer, unique_prefix};

/// The real etcd store under a key prefix of its own; every open (a restart too) connects to
/// the same server and prefix, so it sees the same durable state.
pub struct EtcdFactory {
    server: Arc<EtcdServer>,
    prefix: String,
}

impl EtcdFactory {
    /// `None` (after the skip line) when etcd is not installed.
    pub fn shared() -> Option<Self> {
        Some(Self {
            server: EtcdServer::shared()?,
            prefix: unique_prefix("grpc"),
        })
    }
}

impl StoreFactory for EtcdFactory {
    type S = EtcdStore;
    async fn open(&self) -> EtcdStore {
        EtcdStore::connect(EtcdConfig {
            prefix: self.prefix.clone(),
            startup_wait: std::time::Duration::ZERO,
            ..EtcdConfig::new([self.server.endpoint()])
        })
        .await
        .expect("connect to the test etcd")
    }
}

macro_rules! suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn critical_path_and_parents_first() {
                super::grpc::critical_path_and_parents_first($factory).await
            }
            #[tokio::test]
            async fn prefers_the_worker_holding_the_parent() {
                super::grpc::prefers_the_worker_holding_the_parent($factory).await
            }
            #[tokio::test]
            async fn lease_expiry_fences_the_old_worker() {
                super::grpc::lease_expiry_fences_the_old_worker($factory).await
            }
            #[tokio::test]
            async fn budget_exhaustion_and_retry() {
                super::grpc::budget_exhaustion_and_retry($factory).await
            }
            #[tokio::test]
            async fn backoff_is_respected() {
                super::grpc::backoff_is_respected($factory).await
            }
            #[tokio::test]
            async fn restart_adopts_leases_and_repeats_nothing() {
                super::grpc::restart_adopts_leases_and_repeats_nothing($factory).await
            }
            #[tokio::test]
            async fn unlisted_assignment_is_taken_back() {
                super::grpc::unlisted_assignment_is_taken_back($factory).await
            }
            #[tokio::test]
            async fn duplicate_submit_is_idempotent() {
                super::grpc::duplicate_submit_is_idempotent($factory).await
            }
            #[tokio::test]
            async fn bad_grid_stores_nothing() {
                super::grpc::bad_grid_stores_nothing($factory).await
            }
            #[tokio::test]
            async fn cancel_and_events() {
                super::grpc::cancel_and_events($factory).await
            }
            #[tokio::test]
            async fn old_registration_never_cancels_the_new_assignment() {
                super::grpc::old_registration_never_cancels_the_new_assignment($factory).await
            }
            #[tokio::test]
            async fn burn_jobs_wait_for_their_backend() {
                super::grpc::burn_jobs_wait_for_their_backend($factory).await
            }
            #[tokio::test]
            async fn compute_is_accounted_and_survives_restart() {
                super::grpc::compute_is_accounted_and_survives_restart($factory).await
            }
        }
    };
}

suite!(memory, MemFactory::default());
suite!(sqlite, SqliteFactory::default());
suite!(
    etcd,
    match EtcdFactory::shared() {
        Some(factory) => factory,
        None => return,
    }
);

/// Sweep size is the point here, not the store: run once, on SQLite.
#[tokio::test]
async fn big_sweeps_read_back_in_pages() {
    grpc::big_sweeps_read_back_in_pages(SqliteFactory::default()).await
}
