//! Coordinator configuration: plain data, with every default stated (what the process hands over
//! at run time besides it is in `setup.rs`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stilts_common::backoff::{Backoff, BackoffConfig, Jitter};

/// How the coordinator runs. In TOML, durations use the one syntax of
/// [`stilts_common::duration`] (`"30s"`, `"250ms"`, `"1.5m"`, `"1h30m"`); an integer, the older
/// form, still counts milliseconds.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoordinatorConfig {
    /// Worker lease time-to-live: a worker that neither heartbeats nor calls for this long loses
    /// its lease and its jobs. Default 30 s.
    #[serde(with = "stilts_common::duration::serde")]
    pub lease_ttl: Duration,
    /// How often the reaper expires leases and releases jobs whose backoff has passed.
    /// Default 500 ms.
    #[serde(with = "stilts_common::duration::serde")]
    pub reaper_period: Duration,
    /// Attempt budget of newly planned jobs. Default 3.
    pub max_attempts: u32,
    /// Largest sweep accepted, in cells (a grid over it is refused before it is expanded).
    /// Default 5,000,000.
    pub max_cells: u64,
    /// Backoff before the second attempt; doubles per spent attempt up to `backoff_cap`, with
    /// equal jitter (at least half of each wait passes). Default 5 s.
    #[serde(with = "stilts_common::duration::serde")]
    pub backoff_base: Duration,
    /// Longest backoff. Default 5 min.
    #[serde(with = "stilts_common::duration::serde")]
    pub backoff_cap: Duration,
    /// Longest `AcquireJob` long-poll, whatever the worker asks for. Default 30 s.
    #[serde(with = "stilts_common::duration::serde")]
    pub acquire_max_wait: Duration,
    /// Most job writes in one group commit. Default 1024.
    pub max_batch: usize,
    /// Expire every lease found in the store on start, instead of giving its worker one TTL of
    /// grace (for `stilts run`, whose local workers died with the previous process). Default false.
    pub expire_leases_on_start: bool,
    /// Address of the HTTP listener (dashboard at `/`, Prometheus metrics at `/metrics`, JSON
    /// under `/api/`). Default none: no HTTP listener. Its data needs a token once the
    /// coordinator has one (see [`AuthConfig`]); without one, bind it to loopback.
    pub http_listen: Option<std::net::SocketAddr>,
    /// An HTTP connection that has not sent its request headers within this long is closed.
    /// Default 10 s.
    #[serde(with = "stilts_common::duration::serde")]
    pub http_header_timeout: Duration,
    /// The artifact directory the workers write to, when the coordinator can read it (a shared
    /// file system): the dashboard then shows the tail of each job's logs. Default none: the
    /// dashboard says the logs are on the worker.
    pub artifacts_root: Option<std::path::PathBuf>,
    /// TLS on the gRPC port. Default none: plaintext.
    pub tls: Option<ServerTls>,
    /// Who may call which service. Default: no token.
    pub auth: AuthConfig,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(30),
            reaper_period: Duration::from_millis(500),
            max_attempts: 3,
            max_cells: 5_000_000,
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(300),
            acquire_max_wait: Duration::from_secs(30),
            max_batch: 1024,
            expire_leases_on_start: false,
            http_listen: None,
            http_header_timeout: Duration::from_secs(10),
            artifacts_root: None,
            tls: None,
            auth: AuthConfig::default(),
        }
    }
}

impl fmt::Debug for CoordinatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoordinatorConfig")
            .field("lease_ttl", &self.lease_ttl)
            .field("reaper_period", &self.reaper_period)
            .field("max_attempts", &self.max_attempts)
            .field("max_cells", &self.max_cells)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_cap", &self.backoff_cap)
            .field("acquire_max_wait", &self.acquire_max_wait)
            .field("max_batch", &self.max_batch)
            .field("expire_leases_on_start", &self.expire_leases_on_start)
            .field("http_listen", &self.http_listen)
            .field("http_header_timeout", &self.http_header_timeout)
            .field("artifacts_root", &self.artifacts_root)
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .finish()
    }
}

impl CoordinatorConfig {
    pub(crate) fn lease_ttl_ms(&self) -> u64 {
        self.lease_ttl.as_millis() as u64
    }

    /// The backoff of a failed job's retries: `backoff_base` doubling to `backoff_cap`, equal
    /// jitter.
    pub(crate) fn retry_backoff(&self) -> Backoff {
        Backoff::new(BackoffConfig {
            initial: self.backoff_base,
            max: self.backoff_cap,
        })
        .with_jitter(Jitter::Equal)
    }
}

/// TLS on the coordinator's gRPC port (rustls). Files are PEM, read once at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// Certificate chain the coordinator presents (leaf first). Required.
    pub cert: PathBuf,
    /// Private key of `cert` (PKCS#8, PKCS#1 or SEC1). Required.
    pub key: PathBuf,
    /// CA certificates that sign worker certificates. Set: mutual TLS, the worker API refuses
    /// callers without a certificate signed by one of them, and a certificate signed by any
    /// other CA fails the handshake. Clients of the sweep API need no certificate (they use the
    /// token). Default none: no client certificates asked for.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// Bearer-token authentication (`authorization: Bearer TOKEN`).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Token every SweepService call must carry. Default none: the sweep API is open. Never
    /// serialised back out.
    #[serde(skip_serializing)]
    pub client_token: Option<String>,
    /// Require the same token on WorkerService calls too (on top of mutual TLS). Default false.
    pub workers_need_token: bool,
    /// A read-only token for the dashboard's data (`/api/…`) and `/metrics`, accepted beside
    /// the client token. Once either is set, those need one. Never serialised back out.
    #[serde(skip_serializing)]
    pub http_token: Option<String>,
    /// Serve the dashboard's data and `/metrics` without a token although one is set.
    pub http_open: bool,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "client_token",
                &self.client_token.as_ref().map(|_| "<redacted>"),
            )
            .field("workers_need_token", &self.workers_need_token)
            .field(
                "http_token",
                &self.http_token.as_ref().map(|_| "<redacted>"),
            )
            .field("http_open", &self.http_open)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_rejects_unknown_fields() {
        let cfg: CoordinatorConfig = serde_json::from_str(
            r#"{"lease_ttl": "1m", "reaper_period": 250, "backoff_base": "20ms"}"#,
        )
        .unwrap();
        assert_eq!(cfg.lease_ttl, Duration::from_secs(60));
        assert_eq!(cfg.reaper_period, Duration::from_millis(250));
        assert_eq!(cfg.backoff_base, Duration::from_millis(20));
        assert_eq!(cfg.max_attempts, 3);
        assert!(serde_json::from_str::<CoordinatorConfig>(r#"{"lease": 1}"#).is_err());
    }
}
