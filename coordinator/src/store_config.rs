//! Which store the coordinator runs on: `[store] kind = "sqlite" | "etcd"`, as data.
//!
//! ```toml
//! [store]
//! kind = "etcd"
//! endpoints = ["http://etcd-0:2379", "http://etcd-1:2379"]
//! prefix = "/stilts/"
//! ```
//! The etcd fields are those of [`EtcdConfig`] (TLS, auth, timeouts), each with its default;
//! `STILTS_ETCD_*` variables override them ([`StoreConfig::apply_env`]). The binary builds the
//! same value from `--store`, `--etcd-endpoints`, `--etcd-prefix`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::store::etcd::EtcdConfig;

/// The store backend and its settings. Default: SQLite under the state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreConfig {
    /// One SQLite file: a single coordinator.
    Sqlite(SqliteStoreConfig),
    /// etcd: several coordinator replicas, one elected leader (see `leader.rs`).
    Etcd(Box<EtcdConfig>),
}

/// The SQLite backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteStoreConfig {
    /// Database file. Default: `stilts.db` in the state directory.
    pub path: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::Sqlite(SqliteStoreConfig::default())
    }
}

impl StoreConfig {
    /// The backend's name as `--store` spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreConfig::Sqlite(_) => "sqlite",
            StoreConfig::Etcd(_) => "etcd",
        }
    }

    /// Applies the `STILTS_ETCD_*` environment overrides (etcd only).
    pub fn apply_env(&mut self) {
        if let StoreConfig::Etcd(etcd) = self {
            etcd.apply_env();
        }
    }

    /// Builds the config from command-line values: `kind` is `sqlite` or `etcd`; endpoints and
    /// prefix apply to etcd only (an error for SQLite, so a mistyped flag is not ignored).
    pub fn from_flags(
        kind: &str,
        endpoints: &[String],
        prefix: Option<&str>,
    ) -> Result<Self, String> {
        match kind {
            "sqlite" => {
                if !endpoints.is_empty() || prefix.is_some() {
                    return Err(
                        "--etcd-endpoints and --etcd-prefix need --store etcd (the store is sqlite)"
                            .into(),
                    );
                }
                Ok(StoreConfig::default())
            }
            "etcd" => {
                let mut cfg = EtcdConfig::default();
                let endpoints: Vec<String> = endpoints
                    .iter()
                    .flat_map(|e| e.split(','))
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect();
                if !endpoints.is_empty() {
                    cfg.endpoints = endpoints;
                }
                if let Some(prefix) = prefix {
                    cfg.prefix = prefix.to_owned();
                }
                Ok(StoreConfig::Etcd(Box::new(cfg)))
            }
            other => Err(format!(
                "unknown store {other:?}: use \"sqlite\" (default) or \"etcd\""
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_enum_parses_both_kinds() {
        let sqlite: StoreConfig = serde_json::from_str(r#"{"kind": "sqlite"}"#).unwrap();
        assert_eq!(sqlite, StoreConfig::default());
        let etcd: StoreConfig = serde_json::from_str(
            r#"{"kind": "etcd", "endpoints": ["http://a:2379"], "prefix": "/x/",
                "tls": {"ca_file": "/ca.pem"}, "username": "u", "password": "p"}"#,
        )
        .unwrap();
        let StoreConfig::Etcd(cfg) = etcd else {
            panic!("not etcd")
        };
        assert_eq!(cfg.endpoints, vec!["http://a:2379"]);
        assert_eq!(cfg.prefix, "/x/");
        assert_eq!(cfg.username.as_deref(), Some("u"));
        assert!(cfg.tls.is_some());
        assert!(serde_json::from_str::<StoreConfig>(r#"{"kind": "redis"}"#).is_err());
        assert!(
            serde_json::from_str::<StoreConfig>(r#"{"kind": "etcd", "endpoint": "x"}"#).is_err()
        );
    }

    #[test]
    fn flags_build_the_same_values() {
        let cfg =
            StoreConfig::from_flags("etcd", &["http://a:1,http://b:2".into()], Some("/p")).unwrap();
        let StoreConfig::Etcd(etcd) = &cfg else {
            panic!("not etcd")
        };
        assert_eq!(etcd.endpoints, vec!["http://a:1", "http://b:2"]);
        assert_eq!(etcd.normalized_prefix(), "/p/");
        assert_eq!(cfg.kind(), "etcd");
        assert_eq!(
            StoreConfig::from_flags("sqlite", &[], None).unwrap(),
            StoreConfig::default()
        );
        assert!(StoreConfig::from_flags("sqlite", &["http://a:1".into()], None).is_err());
        assert!(StoreConfig::from_flags("mongo", &[], None).is_err());
    }
}
