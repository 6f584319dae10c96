//! The one way tests get a store: a [`StoreFactory`] opens a backend's durable state, the same
//! state on every call, so a test (or a restarted coordinator) that reopens it sees what was
//! written before. The conformance suite (`conformance/mod.rs`), the gRPC suite (`grpc/mod.rs`)
//! and the HTTP and TLS tests all take one. Factories: [`MemFactory`] (the in-memory
//! [`MemStore`]), [`SqliteFactory`] (a temporary file) and `support_etcd::EtcdFactory` (a key
//! prefix on a test etcd server).
//!
//! Also [`assert_every_suite_function_is_listed`], which keeps the hand-written lists of the
//! suite macros complete.
#![allow(dead_code)] // each test binary uses a different part

pub mod mem_store;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;

use stilts_common::store::Store;
use stilts_coordinator::store::sqlite::SqliteStore;

pub use mem_store::MemStore;

/// Opens a backend's durable state. Every factory starts empty; each `open` opens the same state
/// again (another handle, a restart), never a new one. Opening is async because some stores
/// connect to a server (etcd).
pub trait StoreFactory: Send + Sync + 'static {
    type Store: Store;

    /// A handle on the factory's state (empty until something is written).
    fn open(&self) -> impl Future<Output = Self::Store> + Send;

    /// Closes `store` (dropping the handle) and opens the same state again, as a restarted
    /// coordinator would.
    fn reopen(&self, store: Self::Store) -> impl Future<Output = Self::Store> + Send {
        drop(store);
        self.open()
    }
}

/// The in-memory test store; every open shares one state.
#[derive(Default)]
pub struct MemFactory(MemStore);

impl StoreFactory for MemFactory {
    type Store = MemStore;

    async fn open(&self) -> MemStore {
        self.0.clone()
    }
}

/// The real SQLite store on a file in a temporary directory (removed with the factory); the
/// file's directory does not exist until the first open creates it.
pub struct SqliteFactory {
    dir: tempfile::TempDir,
}

impl Default for SqliteFactory {
    fn default() -> Self {
        Self {
            dir: tempfile::TempDir::new().expect("tempdir"),
        }
    }
}

impl SqliteFactory {
    /// The database file.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("state").join("stilts.db")
    }
}

impl StoreFactory for SqliteFactory {
    type Store = SqliteStore;

    async fn open(&self) -> SqliteStore {
        SqliteStore::open(self.path()).expect("open the SQLite store")
    }
}

/// Fails, naming them, when `source` (the text of a suite module, by `include_str!`) has a
/// `pub async fn` that is not in `listed`: the suite macros name their tests by hand, and a
/// suite function nobody listed would never run.
pub fn assert_every_suite_function_is_listed(suite: &str, source: &str, listed: &[&str]) {
    let listed: BTreeSet<&str> = listed.iter().copied().collect();
    let missing: Vec<&str> = source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("pub async fn "))
        .map(|rest| {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !listed.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "{suite}: `pub async fn` not listed in its suite macro, so never run: {}",
        missing.join(", ")
    );
}
