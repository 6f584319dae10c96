//! `DIR/.stilts-fetch.json`: what `stilts data fetch` put under a data root, with the sha256 of
//! every file, so a re-run verifies instead of downloading and notices a changed file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = ".stilts-fetch.json";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Relative path under the data root (`/`-separated) → entry.
    files: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Where the file was fetched from.
    pub url: String,
    /// Lower-case hex.
    pub sha256: String,
    pub bytes: u64,
}

pub fn path(root: &Path) -> PathBuf {
    root.join(FILE_NAME)
}

impl Manifest {
    /// The manifest under `root`, or an empty one when there is none yet.
    pub fn load(root: &Path) -> Result<Manifest> {
        let path = path(root);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("reading the fetch manifest {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn get(&self, rel: &str) -> Option<&Entry> {
        self.files.get(rel)
    }

    pub fn insert(&mut self, rel: &str, entry: Entry) {
        self.files.insert(rel.to_string(), entry);
    }

    /// Written to a temporary file and renamed, so a crash never leaves half a manifest.
    pub fn save(&self, root: &Path) -> Result<()> {
        let path = path(root);
        let tmp = root.join(format!("{FILE_NAME}.tmp"));
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text + "\n").with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }
}
