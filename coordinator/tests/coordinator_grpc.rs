//! The coordinator through real loopback gRPC, once per store backend ("the conformance suite
//! through gRPC"). Add a backend: one more `suite!` line with its factory.
//!
//! The etcd instance runs against a real etcd server (one shared by the tests running at the same
//! time, a fresh key prefix per test); without `etcd` on PATH each etcd test prints a skip line
//! and passes (with `STILTS_REQUIRE_ETCD=1` it fails instead).

mod grpc;
mod store_factory;
mod support;
mod support_etcd;

use store_factory::{MemFactory, SqliteFactory};
use support_etcd::EtcdFactory;

/// `suite!(backend, factory)`: a module `backend` with one `#[tokio::test]` per function of
/// `grpc/mod.rs` listed here, each given a fresh `factory`, and `every_suite_function_is_listed`,
/// which fails when a `pub async fn` there is neither listed here nor run once below.
macro_rules! suite {
    ($backend:ident, $factory:expr) => {
        suite!(@tests $backend, $factory;
            critical_path_and_parents_first,
            prefers_the_worker_holding_the_parent,
            lease_expiry_fences_the_old_worker,
            budget_exhaustion_and_retry,
            backoff_is_respected,
            restart_adopts_leases_and_repeats_nothing,
            unlisted_assignment_is_taken_back,
            duplicate_submit_is_idempotent,
            bad_grid_stores_nothing,
            cancel_and_events,
            old_registration_never_cancels_the_new_assignment,
            burn_jobs_wait_for_their_backend,
            compute_is_accounted_and_survives_restart,
        );
    };
    (@tests $backend:ident, $factory:expr; $($name:ident),* $(,)?) => {
        mod $backend {
            use super::*;

            $(
                #[tokio::test]
                async fn $name() {
                    super::grpc::$name($factory).await
                }
            )*

            #[test]
            fn every_suite_function_is_listed() {
                store_factory::assert_every_suite_function_is_listed(
                    "grpc/mod.rs",
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc/mod.rs")),
                    &[$(stringify!($name),)* RUN_ONCE],
                );
            }
        }
    };
}

suite!(memory, MemFactory::default());
suite!(sqlite, SqliteFactory::default());
suite!(
    etcd,
    match EtcdFactory::shared("grpc") {
        Some(factory) => factory,
        None => return,
    }
);

/// The suite function run once, not per backend.
const RUN_ONCE: &str = "big_sweeps_read_back_in_pages";

/// Sweep size is the point here, not the store: run once, on SQLite.
#[tokio::test]
async fn big_sweeps_read_back_in_pages() {
    grpc::big_sweeps_read_back_in_pages(SqliteFactory::default()).await
}
