//! Errors that end the worker agent. Everything transient (an unreachable coordinator, a failed
//! report) is retried inside the agent and never surfaces here.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum WorkerError {
    /// `--gpus` cannot be used as configured (no memory budget, a GPU listed twice, …).
    #[error("--gpus: {0}")]
    Gpus(String),
    #[error("no coordinator address configured")]
    NoCoordinator,
    #[error("a worker needs at least one slot")]
    NoSlots,
    #[error("invalid coordinator address {url:?}: {source}")]
    InvalidCoordinator {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("cannot create the artifact root {}: {source}", path.display())]
    ArtifactRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the {what} {}: {source}", path.display())]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("coordinator {url}: {message}")]
    TlsSetup { url: String, message: String },
    #[error("the token cannot be sent as an HTTP header (control or non-ASCII characters)")]
    InvalidToken,
    /// The TLS handshake failed over a certificate: retrying will not help.
    #[error("coordinator {url} refused the TLS connection: {reason} (error: {detail})")]
    TlsRefused {
        url: String,
        reason: String,
        detail: String,
    },
    /// The coordinator refused to register this worker for a reason retrying will not fix
    /// (bad request, authentication, permission).
    #[error("coordinator {url} refused registration: {status}")]
    RegistrationRefused {
        url: String,
        status: Box<tonic::Status>,
    },
}
