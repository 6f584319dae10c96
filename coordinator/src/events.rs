//! The live feed of job transitions behind `StreamEvents`.

use std::sync::Arc;

use stilts_common::job::StageKind;
use stilts_common::store::EventRecord;
use tokio::sync::broadcast;

/// One applied transition, with the sweeps its job belongs to (for filtering).
#[derive(Debug)]
pub struct JobEvent {
    pub record: EventRecord,
    /// The stage of the job.
    pub kind: StageKind,
    pub sweeps: Vec<String>,
}

pub type EventTx = broadcast::Sender<Arc<JobEvent>>;

/// Events a slow subscriber may fall behind by before its stream ends.
pub const EVENT_BUFFER: usize = 16_384;

pub fn channel() -> EventTx {
    broadcast::channel(EVENT_BUFFER).0
}
