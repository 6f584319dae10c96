//! Domain types shared by every stilts role. No tonic server, no burn, no SQL in here.

pub mod backend;
pub mod backoff;
pub mod cell_state;
pub mod clock;
pub mod convert;
pub mod csv;
pub mod duration;
pub mod failure;
pub mod grid;
pub mod heartbeat;
pub mod job;
pub mod key;
pub mod metrics;
pub mod plan;
pub mod progress;
pub mod rng;
pub mod series;
pub mod state;
pub mod store;
pub mod sweep_status;
pub mod template;
pub mod usage;
