//! Failures of the etcd backend. They reach `Store` callers as the source of
//! [`StoreError::Backend`] (or [`StoreError::Corrupt`] for undecodable records).

use std::path::PathBuf;
use std::time::Duration;

use stilts_common::store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EtcdError {
    #[error(
        "cannot reach etcd at {endpoints} ({attempts} attempt(s) over {waited:.1?}): {source}; \
         hint: is etcd running and reachable from here? Check `[store.etcd] endpoints` or \
         STILTS_ETCD_ENDPOINTS (and TLS/auth settings if the cluster requires them)"
    )]
    Unreachable {
        endpoints: String,
        attempts: u32,
        waited: Duration,
        #[source]
        source: Box<EtcdError>,
    },
    /// etcd answered but refused us (TLS handshake, auth, permissions, layout): no retry.
    #[error(
        "etcd at {endpoints} refused the connection: {source}; hint: check the TLS settings \
         (CA, client certificate and key) and the user/password"
    )]
    Refused {
        endpoints: String,
        #[source]
        source: Box<EtcdError>,
    },
    #[error("no etcd endpoints configured (set `[store.etcd] endpoints` or STILTS_ETCD_ENDPOINTS)")]
    NoEndpoints,
    #[error("an etcd password is configured without a username")]
    PasswordWithoutUser,
    #[error("etcd TLS: cert_file and key_file must be given together")]
    HalfClientIdentity,
    #[error("etcd TLS is configured but endpoint {endpoint} is plain http://; use https://")]
    PlainEndpointWithTls { endpoint: String },
    #[error("etcd config: {what} = {value} is below the minimum {min}")]
    TxnLimitTooSmall {
        what: &'static str,
        value: usize,
        min: usize,
    },
    #[error("cannot read etcd {what} {path}: {source}")]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("etcd {op}: {source}")]
    Request {
        op: &'static str,
        #[source]
        source: etcd_client::Error,
    },
    #[error("etcd {op}: no answer within {timeout:?}")]
    Timeout { op: &'static str, timeout: Duration },
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "etcd {op}: gave up after {attempts} compare-and-set rounds lost to concurrent writers"
    )]
    Contention { op: &'static str, attempts: u32 },
    #[error("etcd {op}: unexpected response shape ({detail})")]
    Protocol { op: &'static str, detail: String },
    #[error(
        "key prefix {prefix:?} holds stilts data of layout {found:?}; this stilts writes layout \
         {supported:?} (upgrade stilts or use another prefix)"
    )]
    LayoutMismatch {
        prefix: String,
        found: String,
        supported: &'static str,
    },
    #[error(
        "one {what} needs {bytes} bytes, more than max_txn_bytes ({limit}); raise it (and etcd's \
         --max-request-bytes)"
    )]
    TooLarge {
        what: String,
        bytes: usize,
        limit: usize,
    },
    #[error(
        "etcd {op}: this coordinator is no longer the leader (election key {key} was created at \
         revision {revision}, now {found}; 0 = gone); the write was not committed"
    )]
    Deposed {
        op: &'static str,
        key: String,
        revision: i64,
        found: i64,
    },
    #[error("lease {lease:x} not found or expired")]
    LeaseGone { lease: i64 },
}

impl EtcdError {
    /// Wraps an etcd-client error with the operation it came from.
    pub(crate) fn request(op: &'static str) -> impl FnOnce(etcd_client::Error) -> Self {
        move |source| Self::Request { op, source }
    }
}

impl From<EtcdError> for StoreError {
    fn from(e: EtcdError) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// A stored value that does not decode.
pub(crate) fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        detail: detail.to_string(),
    }
}
