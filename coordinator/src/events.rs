//! The live feed of job transitions behind `StreamEvents`.

use std::sync::Arc;

use stilts_proto::v1 as pb;
use tokio::sync::broadcast;

/// One applied transition, with the sweeps its job belongs to (for filtering).
#[derive(Debug)]
pub struct JobEvent {
    pub event: pb::Event,
    pub sweeps: Vec<String>,
}

pub type EventTx = broadcast::Sender<Arc<JobEvent>>;

/// Events a slow subscriber may fall behind by before its stream ends.
pub const EVENT_BUFFER: usize = 16_384;

pub fn channel() -> EventTx {
    broadcast::channel(EVENT_BUFFER).0
}
