//! The stilts worker: the agent loop (register, acquire, heartbeat, report) and executors.
//!
//! Where to change what: the agent's shutdown and acquiring in `agent.rs`; the running-job table,
//! artifact layout and job threads in `jobs.rs`; report delivery and which rejections are final in
//! `reports.rs`; heartbeats in `heartbeat.rs`; addresses, failover and registration in `link.rs` (TLS and the token in `tls.rs`);
//! the `command` executor in `command.rs` (processes in `process.rs`, progress lines in
//! `progress_line.rs`, metrics files in `metrics.rs`); the attempt's trace context (OpenTelemetry) in
//! `trace_ctx.rs`; packing jobs onto GPUs by memory (`--gpus`) in `gpu_pool.rs` (state, waiting),
//! with the pure parts in `gpu_estimate.rs` (a job's memory), `packing.rs` (which GPU) and
//! `oom_memo.rs` (raised reservations after out-of-memory failures).

pub mod agent;
pub mod backoff;
pub mod byte_size;
pub mod command;
pub mod config;
pub mod device;
pub mod error;
pub mod executor;
pub mod gpu_estimate;
mod gpu_pool;
mod heartbeat;
mod job_table;
mod jobs;
mod link;
mod log_tail;
pub mod metrics;
pub mod model_fetch;
pub mod oom_memo;
pub mod packing;
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
