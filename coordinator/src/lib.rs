//! The stilts coordinator: gRPC services for workers and clients, the scheduler, the lease
//! reaper and the group-commit writer, over a `Store` backend. See ARCHITECTURE.md.
//!
//! | file | holds |
//! |---|---|
//! | `server.rs` | [`run`]: load, spawn writer and reaper, serve |
//! | `setup.rs` | what `run` starts from: configuration plus run-time handles (HTTP listener, catalog) |
//! | `shared.rs` | what the services, writer, reaper and HTTP handlers share (`Shared`) |
//! | `metrics/` | Prometheus metrics: hooks, histogram, job history, worker rates, exposition |
//! | `cache.rs` | the in-memory cache of the store and its indexes |
//! | `scheduler.rs` | the ready queue: critical path first, locality among equals |
//! | `intents.rs` | requests to the writer; fencing checks; one request → one CAS write |
//! | `writer.rs` | the single writer: group commit, apply, cascade, reload on conflict |
//! | `lease.rs` | worker leases, heartbeats, the reaper |
//! | `worker_api.rs`, `sweep_api.rs` | the two gRPC services; `worker_api.rs` opens each job attempt's trace |
//! | `status.rs` | derived cell states, counts, results |
//! | `http/` | HTTP listener: dashboard, Prometheus `/metrics`, JSON API |
//! | `tls.rs`, `auth.rs` | TLS accept (rustls), bearer token and client-certificate checks |
//! | `health.rs` | `grpc.health.v1` (SERVING per role) and server reflection on the gRPC port |
//! | `leader.rs` | cluster mode: etcd election, follower redirects, fenced leader terms |
//! | `store_config.rs` | `[store] kind = "sqlite" \| "etcd"` |

mod auth;
mod cache;
mod compute;
pub mod config;
pub mod error;
mod events;
pub mod health;
pub mod http;
mod intents;
pub mod leader;
mod lease;
mod metrics;
pub mod report;
mod scan;
mod scheduler;
mod server;
pub mod setup;
mod shared;
mod status;
pub mod store;
pub mod store_config;
mod sweep_api;
pub mod tls;
mod worker_api;
mod writer;

pub use config::{AuthConfig, CoordinatorConfig, ServerTls};
pub use error::CoordinatorError;
pub use health::LIVENESS;
pub use http::HttpListener;
pub use leader::{ClusterConfig, LEADER_METADATA, run_replica};
pub use server::run;
pub use setup::Setup;
pub use store_config::StoreConfig;
