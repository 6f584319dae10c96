//! Store backends. The trait is `stilts_common::store::Store`.

pub mod etcd;
pub mod sqlite;

pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
