//! The coordinator through real loopback gRPC, once per store backend ("the conformance suite
//! through gRPC"). Add a backend: one more `suite!` line with its factory.

mod grpc;
mod support;

macro_rules! suite {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            use super::support::*;

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
        }
    };
}

suite!(memory, MemFactory::default());
suite!(sqlite, SqliteFactory::default());
