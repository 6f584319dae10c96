//! The stilts worker: the agent loop (register, acquire, heartbeat, report) and executors.

pub mod executor;
