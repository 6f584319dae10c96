//! Configuration of the etcd backend: a serde struct (`[store.etcd]` in the coordinator's config)
//! with environment overrides for Kubernetes.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use serde::{Deserialize, Serialize};

use super::error::EtcdError;

/// Comma-separated client URLs; replaces [`EtcdConfig::endpoints`].
pub const ENV_ENDPOINTS: &str = "STILTS_ETCD_ENDPOINTS";
/// Replaces [`EtcdConfig::prefix`].
pub const ENV_PREFIX: &str = "STILTS_ETCD_PREFIX";
/// Replaces [`EtcdConfig::username`].
pub const ENV_USERNAME: &str = "STILTS_ETCD_USERNAME";
/// Replaces [`EtcdConfig::password`] (typically from a Kubernetes secret).
pub const ENV_PASSWORD: &str = "STILTS_ETCD_PASSWORD";

/// Where the etcd cluster is and how to talk to it. Every field has a default, so an empty
/// `[store.etcd]` table connects to a local etcd without TLS or auth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// Client URLs of the etcd members (`https://` when `tls` is set).
    /// Default: `["http://127.0.0.1:2379"]`. Env: `STILTS_ETCD_ENDPOINTS` (comma-separated).
    pub endpoints: Vec<String>,
    /// Every key stilts writes starts with this; several installations can share one etcd
    /// cluster under different prefixes. A missing trailing `/` is added.
    /// Default: `"/stilts/"`. Env: `STILTS_ETCD_PREFIX`.
    pub prefix: String,
    /// etcd user for `--auth` clusters. Default: none. Env: `STILTS_ETCD_USERNAME`.
    pub username: Option<String>,
    /// Password of `username`. Default: none. Env: `STILTS_ETCD_PASSWORD`.
    pub password: Option<String>,
    /// TLS towards etcd. Default: none (plain HTTP/2).
    pub tls: Option<EtcdTlsConfig>,
    /// Timeout of one TCP/TLS connection attempt (a duration: `"5s"`; an integer counts
    /// milliseconds). Default: 5s. Also read under its older name `connect_timeout_ms`.
    #[serde(alias = "connect_timeout_ms", with = "stilts_common::duration::serde")]
    pub connect_timeout: Duration,
    /// Timeout of one etcd request. Default: 10s. Older name: `request_timeout_ms`.
    #[serde(alias = "request_timeout_ms", with = "stilts_common::duration::serde")]
    pub request_timeout: Duration,
    /// How long `connect` keeps retrying an unreachable etcd (with visible warnings) before it
    /// gives up; 0 tries once. Default: 10s (a pod may start before etcd). Older name:
    /// `startup_wait_ms`.
    #[serde(alias = "startup_wait_ms", with = "stilts_common::duration::serde")]
    pub startup_wait: Duration,
    /// Most operations per transaction; must not exceed the server's `--max-txn-ops`.
    /// Default: 128 (etcd's default).
    pub max_txn_ops: usize,
    /// Most bytes of keys and values per transaction; keep it under the server's
    /// `--max-request-bytes` (default 1.5 MiB). Default: 1048576 (1 MiB).
    pub max_txn_bytes: usize,
}

/// TLS towards etcd. Paths are PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdTlsConfig {
    /// CA bundle that signed the etcd server certificates. Default: none (the webpki roots are
    /// not used; set this for a private CA, which is the usual etcd setup).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS (`--client-cert-auth`); needs `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Name to verify the server certificate against, when it differs from the endpoint host.
    #[serde(default)]
    pub domain: Option<String>,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/stilts/".into(),
            username: None,
            password: None,
            tls: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            startup_wait: Duration::from_secs(10),
            max_txn_ops: 128,
            max_txn_bytes: 1 << 20,
        }
    }
}

impl EtcdConfig {
    /// A default config pointing at `endpoints`.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Applies `STILTS_ETCD_*` variables from the process environment.
    pub fn apply_env(&mut self) {
        self.apply_env_from(|name| std::env::var(name).ok());
    }

    /// Applies overrides from `lookup` (the environment, or a map in tests). Empty values are
    /// ignored, so an unset Kubernetes secret key does not clear a configured password.
    pub fn apply_env_from(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = get(ENV_ENDPOINTS) {
            self.endpoints = v
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = get(ENV_PREFIX) {
            self.prefix = v;
        }
        if let Some(v) = get(ENV_USERNAME) {
            self.username = Some(v);
        }
        if let Some(v) = get(ENV_PASSWORD) {
            self.password = Some(v);
        }
    }

    /// The prefix with exactly one trailing `/`.
    pub fn normalized_prefix(&self) -> String {
        format!("{}/", self.prefix.trim_end_matches('/'))
    }

    /// The endpoints as one string for messages.
    pub fn endpoints_display(&self) -> String {
        self.endpoints.join(",")
    }

    /// The connect timeout, at least 1 ms (etcd-client refuses 0).
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout.max(Duration::from_millis(1))
    }

    /// Checks what can be checked without a network.
    pub fn validate(&self) -> Result<(), EtcdError> {
        if self.endpoints.is_empty() {
            return Err(EtcdError::NoEndpoints);
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(EtcdError::PasswordWithoutUser);
        }
        if self.max_txn_ops < 8 {
            return Err(EtcdError::TxnLimitTooSmall {
                what: "max_txn_ops",
                value: self.max_txn_ops,
                min: 8,
            });
        }
        if self.max_txn_bytes < 64 * 1024 {
            return Err(EtcdError::TxnLimitTooSmall {
                what: "max_txn_bytes",
                value: self.max_txn_bytes,
                min: 64 * 1024,
            });
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(EtcdError::HalfClientIdentity);
            }
            if let Some(plain) = self.endpoints.iter().find(|e| e.starts_with("http://")) {
                return Err(EtcdError::PlainEndpointWithTls {
                    endpoint: plain.clone(),
                });
            }
        }
        Ok(())
    }

    /// etcd-client options: timeouts, keep-alive, auth, TLS (reads the PEM files).
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions, EtcdError> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout())
            .with_timeout(self.request_timeout.max(Duration::from_millis(1)))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_require_leader(true);
        if let Some(user) = &self.username {
            opts = opts
                .with_user(user.clone(), self.password.clone().unwrap_or_default())
                .with_auto_token_refresh(true);
        }
        if let Some(tls) = &self.tls {
            let mut t = TlsOptions::new();
            if let Some(ca) = &tls.ca_file {
                t = t.ca_certificate(Certificate::from_pem(read_pem("CA bundle", ca)?));
            }
            if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
                t = t.identity(Identity::from_pem(
                    read_pem("client certificate", cert)?,
                    read_pem("client key", key)?,
                ));
            }
            if let Some(domain) = &tls.domain {
                t = t.domain_name(domain.clone());
            }
            opts = opts.with_tls(t);
        }
        Ok(opts)
    }
}

fn read_pem(what: &'static str, path: &PathBuf) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::ReadFile {
        what,
        path: path.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn defaults_parse_from_an_empty_table() {
        let cfg: EtcdConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, EtcdConfig::default());
        assert_eq!(cfg.prefix, "/stilts/");
        cfg.validate().unwrap();
    }

    #[test]
    fn timeouts_are_durations_and_the_older_ms_names_still_read() {
        let cfg: EtcdConfig = toml::from_str(
            "connect_timeout = \"1.5s\"\nrequest_timeout = \"1m\"\nstartup_wait = 0",
        )
        .unwrap();
        assert_eq!(cfg.connect_timeout, Duration::from_millis(1_500));
        assert_eq!(cfg.request_timeout, Duration::from_secs(60));
        assert_eq!(cfg.startup_wait, Duration::ZERO);
        let old: EtcdConfig = toml::from_str(
            "connect_timeout_ms = 300\nrequest_timeout_ms = 2000\nstartup_wait_ms = 600",
        )
        .unwrap();
        assert_eq!(old.connect_timeout, Duration::from_millis(300));
        assert_eq!(old.request_timeout, Duration::from_secs(2));
        assert_eq!(old.startup_wait, Duration::from_millis(600));
        let e = toml::from_str::<EtcdConfig>("startup_wait = \"10 sec\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("startup_wait") && e.contains("\"10 sec\""),
            "{e}"
        );
        assert!(e.contains("\"30s\""), "{e}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<EtcdConfig>(r#"{"endpoint": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn env_overrides_replace_fields_and_skip_empty_values() {
        let env = HashMap::from([
            (ENV_ENDPOINTS, " http://a:2379, http://b:2379 ,"),
            (ENV_PREFIX, "/team-a"),
            (ENV_USERNAME, "stilts"),
            (ENV_PASSWORD, ""),
        ]);
        let mut cfg = EtcdConfig {
            password: Some("from-file".into()),
            ..EtcdConfig::default()
        };
        cfg.apply_env_from(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(cfg.endpoints, vec!["http://a:2379", "http://b:2379"]);
        assert_eq!(cfg.normalized_prefix(), "/team-a/");
        assert_eq!(cfg.username.as_deref(), Some("stilts"));
        assert_eq!(cfg.password.as_deref(), Some("from-file"));
    }

    #[test]
    fn validation_names_the_problem() {
        let tls = EtcdConfig {
            tls: Some(EtcdTlsConfig {
                ca_file: None,
                cert_file: None,
                key_file: None,
                domain: None,
            }),
            ..EtcdConfig::default()
        };
        assert!(matches!(
            tls.validate(),
            Err(EtcdError::PlainEndpointWithTls { .. })
        ));
        let no_user = EtcdConfig {
            password: Some("p".into()),
            ..EtcdConfig::default()
        };
        assert!(matches!(
            no_user.validate(),
            Err(EtcdError::PasswordWithoutUser)
        ));
        assert!(matches!(
            EtcdConfig::new(Vec::<String>::new()).validate(),
            Err(EtcdError::NoEndpoints)
        ));
    }
}
