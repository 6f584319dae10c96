//! The stilts worker: the agent loop (register, acquire, heartbeat, report) and executors.
//!
//! Where to change what: the agent's shutdown and acquiring in `agent.rs`; the running-job table,
//! artifact layout and job threads in `jobs.rs`; report delivery and which rejections are final in
//! `reports.rs`; heartbeats in `heartbeat.rs`; addresses, failover and registration in `link.rs` (TLS and the token in `tls.rs`);
//! the `command` executor in `command.rs` (processes in `process.rs`, progress lines in
//! `progress_line.rs`, metrics files in `metrics.rs`); the attempt's trace context (OpenTelemetry) in
//! `trace_ctx.rs`.

pub mod agent;
pub mod backoff;
pub mod command;
pub mod config;
pub mod device;
pub mod error;
pub mod executor;
mod heartbeat;
mod job_table;
mod jobs;
mod link;
mod log_tail;
pub mod metrics;
pub mod model_fetch;
mod process;
pub mod progress_line;
mod report_queue;
mod reports;
mod shared;
pub mod tls;
pub mod trace_ctx;

pub use agent::{run, run_until};
pub use command::CommandExecutor;
pub use config::{ClientTls, Token, WorkerConfig};
pub use error::WorkerError;
