//! The standard gRPC services every coordinator port serves next to `stilts.v1`: health
//! (`grpc.health.v1`, for Kubernetes' `grpc` probes, `stilts health` and grpcurl) and server
//! reflection (v1 and v1alpha, so grpcurl lists and calls the API without the .proto files).
//! Neither asks for a token: probes cannot send one, and both only describe the server.
//!
//! | health service name | SERVING when |
//! |---|---|
//! | `""` (the server), `stilts.v1.WorkerService`, `stilts.v1.SweepService` | this process serves the API: a single coordinator once its state is loaded; a replica while it leads. A follower, and a replica that lost etcd, answer NOT_SERVING |
//! | [`LIVENESS`] | the process runs, whatever its role |

use std::sync::Arc;

use stilts_proto::v1::{sweep_service_server, worker_service_server};
use tokio::sync::Mutex;
use tonic::transport::server::Router;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::error::CoordinatorError;

/// Health service name that is SERVING while the process runs (liveness probes).
pub const LIVENESS: &str = "liveness";

/// Service names whose status follows "this process serves the API".
const API: [&str; 3] = [
    "",
    worker_service_server::SERVICE_NAME,
    sweep_service_server::SERVICE_NAME,
];

/// The health state of one coordinator process, shared by every server it runs on its port
/// (a replica's follower and leader servers alike). The API is SERVING while this process serves
/// it *and* its store answers.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    /// (serves the API, the store answers); the lock also orders the reporter's updates.
    state: Arc<Mutex<(bool, bool)>>,
}

impl Health {
    /// Live, not yet serving the API.
    pub async fn new() -> Self {
        let health = Self {
            reporter: HealthReporter::new(),
            state: Arc::new(Mutex::new((false, true))),
        };
        health
            .reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        health.update(|_| {}).await;
        health
    }

    /// Whether this process serves the worker and sweep APIs now (leader or single coordinator).
    pub async fn set_serving_api(&self, serving: bool) {
        self.update(|s| s.0 = serving).await;
    }

    /// Whether the store answered the last time it was asked (replicas ask etcd periodically).
    pub async fn set_store_reachable(&self, reachable: bool) {
        self.update(|s| s.1 = reachable).await;
    }

    async fn update(&self, change: impl FnOnce(&mut (bool, bool))) {
        let mut state = self.state.lock().await;
        change(&mut state);
        let status = if state.0 && state.1 {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in API {
            self.reporter.set_service_status(name, status).await;
        }
    }

    fn service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService::from_health_reporter(self.reporter.clone()))
    }
}

/// `router` plus health and reflection.
pub(crate) fn with_standard_services(
    router: Router,
    health: &Health,
) -> Result<Router, CoordinatorError> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(stilts_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_error =
        |e: tonic_reflection::server::Error| CoordinatorError::Internal(format!("reflection: {e}"));
    Ok(router
        .add_service(health.service())
        .add_service(reflection().build_v1().map_err(reflection_error)?)
        .add_service(reflection().build_v1alpha().map_err(reflection_error)?))
}
