//! Worker configuration: data, with a default for every field but the coordinator addresses.
//! Durations use the one syntax of [`stilts_common::duration`]: `"250ms"`, `"10s"`, `"1.5m"`,
//! `"1h30m"`; a bare number in a string (`"5"`) counts seconds, an integer (`5000`) milliseconds,
//! as in every stilts config file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::BackoffConfig;

/// How a worker finds its coordinator, what it offers and how patient it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Coordinator URLs (`http://host:7700`), tried in turn when one is unreachable. Required.
    pub coordinators: Vec<String>,
    /// Name shown by the coordinator. Default: the host name.
    #[serde(default = "default_name")]
    pub name: String,
    /// Jobs run at once on a worker without `gpus`. Default 1.
    #[serde(default = "default_slots")]
    pub slots: u32,
    /// CUDA indices of the GPUs this worker packs jobs onto (`gpus = [0, 1]`). Empty (the
    /// default): no packing, `slots` jobs at once. With GPUs, every job reserves its estimated
    /// memory on one of them (`gpu_estimate.rs`, `packing.rs`) and runs there (burn jobs on
    /// `libtorch-cuda:K`, command jobs with `CUDA_VISIBLE_DEVICES=K`); `slots` is not used and
    /// the number of jobs at once is what fits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<u32>,
    /// Memory jobs may reserve on each GPU (`"80GiB"`, `"40G"`, or bytes). Default: each GPU's
    /// total memory from nvidia-smi (the worker refuses to start when that cannot be read).
    #[serde(
        default,
        with = "crate::byte_size::serde_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub gpu_memory: Option<u64>,
    /// At most this many jobs on one GPU, whatever fits. Default: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs_per_gpu: Option<u32>,
    /// Root of the local artifact store: job `K` writes into `<artifacts>/K/`, its metrics to
    /// `<artifacts>/K/metrics.json`, its logs to `<artifacts>/K/logs/attempt-<n>/`.
    /// Default `artifacts`.
    #[serde(default = "default_artifacts")]
    pub artifacts: PathBuf,
    /// Free-form labels announced at registration (node, rack, GPU model). Default none.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Free device memory in bytes announced at registration (0 = unknown). Default 0.
    #[serde(default)]
    pub device_memory: u64,
    /// Heartbeat period. Default: a third of the lease TTL the coordinator hands out.
    #[serde(
        default,
        with = "stilts_common::duration::serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub heartbeat_period: Option<Duration>,
    /// How long one AcquireJob call may wait at the coordinator for a ready job. Default 5s.
    #[serde(
        default = "default_acquire_wait",
        with = "stilts_common::duration::serde"
    )]
    pub acquire_wait: Duration,
    /// Client-side limit of every other call (and added to `acquire_wait`). Default 10s.
    #[serde(
        default = "default_rpc_timeout",
        with = "stilts_common::duration::serde"
    )]
    pub rpc_timeout: Duration,
    /// On shutdown, how long running jobs may go on before they are cancelled. Default 30s.
    #[serde(
        default = "default_shutdown_grace",
        with = "stilts_common::duration::serde"
    )]
    pub shutdown_grace: Duration,
    /// How long a cancelled job may take to stop before the worker gives up waiting for it.
    /// Default 30s.
    #[serde(
        default = "default_cancel_wait",
        with = "stilts_common::duration::serde"
    )]
    pub cancel_wait: Duration,
    /// On shutdown, how long to keep trying to deliver queued reports. Default 30s.
    #[serde(
        default = "default_report_flush",
        with = "stilts_common::duration::serde"
    )]
    pub report_flush: Duration,
    /// Reconnect backoff. Default 100ms doubling to 10s, full jitter.
    #[serde(default)]
    pub backoff: BackoffConfig,
    /// TLS towards `https://` coordinators. Default none (then only `http://` URLs work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    /// Bearer token sent on every call (`authorization: Bearer …`), for coordinators that ask
    /// workers for it on top of mutual TLS. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
}

/// TLS of a worker or client towards the coordinator. Files are PEM, read when connecting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// CA certificate(s) that signed the coordinator's certificate. Required.
    pub ca: PathBuf,
    /// This worker's certificate, for coordinators that require mutual TLS. Default none.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Private key of `cert`; required with `cert`. Default none.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// A secret bearer token; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

fn default_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".to_string())
}
fn default_slots() -> u32 {
    1
}
fn default_artifacts() -> PathBuf {
    PathBuf::from("artifacts")
}
fn default_acquire_wait() -> Duration {
    Duration::from_secs(5)
}
fn default_rpc_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(30)
}
fn default_cancel_wait() -> Duration {
    Duration::from_secs(30)
}
fn default_report_flush() -> Duration {
    Duration::from_secs(30)
}

impl WorkerConfig {
    /// A config with every default and the given coordinator addresses and artifact root.
    pub fn new(coordinators: Vec<String>, artifacts: impl Into<PathBuf>) -> Self {
        Self {
            coordinators,
            name: default_name(),
            slots: default_slots(),
            gpus: Vec::new(),
            gpu_memory: None,
            jobs_per_gpu: None,
            artifacts: artifacts.into(),
            labels: BTreeMap::new(),
            device_memory: 0,
            heartbeat_period: None,
            acquire_wait: default_acquire_wait(),
            rpc_timeout: default_rpc_timeout(),
            shutdown_grace: default_shutdown_grace(),
            cancel_wait: default_cancel_wait(),
            report_flush: default_report_flush(),
            backoff: BackoffConfig::default(),
            tls: None,
            token: None,
        }
    }
}

/// [`stilts_common::duration::parse_or_seconds`] with the error as text: the one duration syntax
/// (`"250ms"`, `"10s"`, `"1.5m"`, `"1h30m"`, `"1d"`), a bare number counting seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    stilts_common::duration::parse_or_seconds(text).map_err(|e| e.to_string())
}

pub use stilts_common::duration::format as format_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(6 * 3600));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(
            parse_duration("3 weeks")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("s").is_err());
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn a_minimal_config_gets_every_default_and_round_trips() {
        let cfg: WorkerConfig =
            serde_json::from_str(r#"{"coordinators": ["http://c:7700"], "slots": 2}"#).unwrap();
        assert_eq!(cfg.slots, 2);
        assert_eq!(cfg.acquire_wait, Duration::from_secs(5));
        assert_eq!(cfg.heartbeat_period, None);
        assert_eq!(cfg.backoff, BackoffConfig::default());
        let back: WorkerConfig =
            serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        let with_period: WorkerConfig = serde_json::from_str(
            r#"{"coordinators": [], "heartbeat_period": "2s", "backoff": {"max": "1m"}}"#,
        )
        .unwrap();
        assert_eq!(with_period.heartbeat_period, Some(Duration::from_secs(2)));
        assert_eq!(with_period.backoff.max, Duration::from_secs(60));
        assert_eq!(with_period.backoff.initial, Duration::from_millis(100));
    }

    #[test]
    fn gpu_packing_fields() {
        let cfg: WorkerConfig = serde_json::from_str(
            r#"{"coordinators": [], "gpus": [0, 1], "gpu_memory": "80GiB", "jobs_per_gpu": 4}"#,
        )
        .unwrap();
        assert_eq!(cfg.gpus, vec![0, 1]);
        assert_eq!(cfg.gpu_memory, Some(80 << 30));
        assert_eq!(cfg.jobs_per_gpu, Some(4));
        let text = serde_json::to_string(&cfg).unwrap();
        assert!(text.contains(r#""gpu_memory":"80GiB""#), "{text}");
        assert_eq!(serde_json::from_str::<WorkerConfig>(&text).unwrap(), cfg);
        let bytes: WorkerConfig =
            serde_json::from_str(r#"{"coordinators": [], "gpu_memory": 1000}"#).unwrap();
        assert_eq!(bytes.gpu_memory, Some(1000));
        let bad =
            serde_json::from_str::<WorkerConfig>(r#"{"coordinators": [], "gpu_memory": "lots"}"#);
        assert!(bad.unwrap_err().to_string().contains("not a memory size"));
        let none: WorkerConfig = serde_json::from_str(r#"{"coordinators": []}"#).unwrap();
        assert!(none.gpus.is_empty() && none.gpu_memory.is_none() && none.jobs_per_gpu.is_none());
        assert!(!serde_json::to_string(&none).unwrap().contains("gpu"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = serde_json::from_str::<WorkerConfig>(r#"{"coordinators": [], "slot": 2}"#);
        assert!(e.unwrap_err().to_string().contains("unknown field `slot`"));
    }
}
