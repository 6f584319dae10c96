//! Domain types shared by every stilts role. No tonic server, no burn, no SQL in here.

pub mod failure;
pub mod job;
