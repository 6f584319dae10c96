//! What an operation fails with on the SQLite thread (shared by `ops.rs`, `codec.rs` and
//! `lifecycle.rs`); it becomes a [`StoreError`] for the caller.

use stilts_common::store::StoreError;

use super::SqliteError;

/// What an operation fails with on the SQLite thread; becomes a [`StoreError`] for the caller.
#[derive(Debug)]
pub(crate) enum OpError {
    Store(StoreError),
    Db(SqliteError),
    Corrupt { what: String, detail: String },
}

impl From<rusqlite::Error> for OpError {
    fn from(e: rusqlite::Error) -> Self {
        OpError::Db(SqliteError::Sqlite(e))
    }
}

impl From<serde_json::Error> for OpError {
    fn from(e: serde_json::Error) -> Self {
        OpError::Db(SqliteError::Json(e))
    }
}

impl From<OpError> for StoreError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::Store(e) => e,
            OpError::Db(e) => e.into(),
            OpError::Corrupt { what, detail } => StoreError::Corrupt { what, detail },
        }
    }
}
