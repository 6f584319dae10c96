//! Which store the coordinator runs on: `[store] kind = "sqlite" | "etcd"`, as data.
//!
//! ```toml
//! [store]
//! kind = "etcd"
//! endpoints = ["http://etcd-0:2379", "http://etcd-1:2379"]
//! prefix = "/stilts/"
//! ```
//! The etcd fields are those of [`EtcdConfig`] (TLS, auth, timeouts), each with its default.
//! `stilts coordinator --config FILE` reads this table ([`StoreConfig::from_file`]); the flags
//! `--store`, `--etcd-endpoints`, `--etcd-prefix` override it ([`StoreConfig::resolve`]), and
//! `STILTS_ETCD_*` variables override both ([`StoreConfig::apply_env`]).

use std::path::{Path, PathBuf};

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

/// A coordinator config file. Only `[store]` so far; unknown tables are errors, not ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    store: StoreConfig,
}

impl StoreConfig {
    /// Reads the `[store]` table of a TOML config file; errors name the file (and the line and
    /// column of a syntax or field error).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        Ok(file.store)
    }

    /// The store from a config file's value (or the default) and the command-line flags: a
    /// `kind` flag of another backend replaces the file's store; endpoints and prefix override
    /// the file's (an error when the resulting store is SQLite).
    pub fn resolve(
        file: Option<StoreConfig>,
        kind: Option<&str>,
        endpoints: &[String],
        prefix: Option<&str>,
    ) -> Result<Self, String> {
        let base = file.unwrap_or_default();
        let kind = kind.unwrap_or(base.kind());
        if kind != base.kind() {
            return Self::from_flags(kind, endpoints, prefix);
        }
        match base {
            StoreConfig::Sqlite(_) => {
                Self::from_flags("sqlite", endpoints, prefix)?;
                Ok(base)
            }
            StoreConfig::Etcd(mut etcd) => {
                if let StoreConfig::Etcd(flags) = Self::from_flags("etcd", endpoints, prefix)? {
                    if !endpoints.is_empty() {
                        etcd.endpoints = flags.endpoints;
                    }
                    if prefix.is_some() {
                        etcd.prefix = flags.prefix;
                    }
                }
                Ok(StoreConfig::Etcd(etcd))
            }
        }
    }

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
    fn config_file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coordinator.toml");
        std::fs::write(
            &path,
            "[store]\nkind = \"etcd\"\nendpoints = [\"http://e0:2379\", \"http://e1:2379\"]\n\
             prefix = \"/lab/\"\n[store.tls]\nca_file = \"/ca.pem\"\n",
        )
        .unwrap();
        let file = StoreConfig::from_file(&path).unwrap();
        let StoreConfig::Etcd(etcd) = &file else {
            panic!("{file:?}")
        };
        assert_eq!(etcd.endpoints, ["http://e0:2379", "http://e1:2379"]);
        assert!(etcd.tls.is_some());
        // Flags override endpoints and keep the rest of the file.
        let flags = ["http://x:2379".to_string()];
        let merged = StoreConfig::resolve(Some(file.clone()), None, &flags, None).unwrap();
        let StoreConfig::Etcd(m) = &merged else {
            panic!("{merged:?}")
        };
        assert_eq!(
            (m.endpoints.as_slice(), m.prefix.as_str()),
            (&flags[..], "/lab/")
        );
        assert!(m.tls.is_some());
        // --store sqlite replaces it; etcd flags on SQLite are refused.
        assert_eq!(
            StoreConfig::resolve(Some(file), Some("sqlite"), &[], None).unwrap(),
            StoreConfig::default()
        );
        assert!(StoreConfig::resolve(None, None, &flags, None).is_err());

        std::fs::write(&path, "[store]\nkind = \"etcd\"\nendpoint = \"x\"\n").unwrap();
        let e = StoreConfig::from_file(&path).unwrap_err();
        assert!(
            e.contains("coordinator.toml") && e.contains("unknown field `endpoint`"),
            "{e}"
        );
        std::fs::write(&path, "[stor]\n").unwrap();
        assert!(StoreConfig::from_file(&path).unwrap_err().contains("stor"));
    }

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
