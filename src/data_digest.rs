//! `data_version = "auto"` on the client side: the digest of every input the grid's jobs read
//! (see `stilts_common::plan::data`), computed where the data is readable and sent with the
//! grid. Files are hashed once: a cache keyed by path, size and modification time
//! (`$STILTS_CACHE_DIR`, else `$XDG_CACHE_HOME/stilts`, else `~/.cache/stilts`,
//! `data-digests.json`) answers for files that did not change, so a re-submit of a big sweep
//! reads no data again.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stilts_common::grid::Grid;
use stilts_common::job::StageKind;
use stilts_common::plan::data::{DATA_AUTO, inputs};
use stilts_tasks::{Catalog, Split, TaskDef, locate_all};

/// Bytes to hash before a progress bar is worth showing.
const BAR_BYTES: u64 = 64 << 20;

/// One read of a job: a split of a task in a language, under the data root its stage uses.
pub struct DataRead<'c> {
    pub task: &'c TaskDef,
    pub split: Split,
    pub lang: String,
    pub kind: StageKind,
}

/// What the input `key` (`intermediate/<task>`, `target/<task>`, `evaluate/<task>/<lang>`)
/// reads; empty for a task the catalog does not hold.
pub fn input_reads<'c>(key: &str, catalog: &'c Catalog) -> Vec<DataRead<'c>> {
    let parts: Vec<&str> = key.split('/').collect();
    let read = |task: &'c TaskDef, split: Split, lang: &str, kind: StageKind| DataRead {
        task,
        split,
        lang: lang.to_string(),
        kind,
    };
    match parts.as_slice() {
        ["intermediate", t] => catalog.get(t).map_or_else(Vec::new, |t| {
            if !t.mixture.is_empty() {
                return t
                    .mixture
                    .iter()
                    .filter_map(|c| catalog.get(&c.task))
                    .map(|c| read(c, Split::Train, "en", StageKind::Intermediate))
                    .collect();
            }
            vec![
                read(t, Split::Train, "en", StageKind::Intermediate),
                read(t, Split::Dev, "en", StageKind::Intermediate),
            ]
        }),
        ["target", t] => catalog.get(t).map_or_else(Vec::new, |t| {
            let phases: Vec<&TaskDef> = if t.english_train.is_empty() {
                vec![t]
            } else {
                t.english_train
                    .iter()
                    .filter_map(|n| catalog.get(n))
                    .collect()
            };
            let mut out: Vec<DataRead> = phases
                .into_iter()
                .map(|p| read(p, Split::Train, "en", StageKind::Target))
                .collect();
            out.push(read(t, Split::Dev, "en", StageKind::Target));
            out
        }),
        ["evaluate", t, lang] => catalog.get(t).map_or_else(Vec::new, |t| {
            vec![read(t, Split::Test, lang, StageKind::Evaluate)]
        }),
        _ => Vec::new(),
    }
}

/// Every read the grid's jobs make, input by input (see `plan::data::inputs`).
pub fn grid_reads<'c>(g: &Grid, catalog: &'c Catalog) -> Vec<DataRead<'c>> {
    inputs(g)
        .iter()
        .flat_map(|k| input_reads(k, catalog))
        .collect()
}

/// Where the trainer will look: the recipe's `data_dir`, else `$STILTS_DATA_DIR`, else `data`
/// (as `BurnExecutor::data_root`).
pub fn data_root(g: &Grid, kind: StageKind, task: &str) -> PathBuf {
    g.recipe
        .resolve(kind, task)
        .get("data_dir")
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("STILTS_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// The digests of every input of a grid with `data_version = "auto"`; empty for any other.
/// `catalog` must hold every task the grid names (the grid's own included).
pub fn for_grid(g: &Grid, catalog: &Catalog) -> Result<BTreeMap<String, String>> {
    if g.data_version != DATA_AUTO {
        return Ok(BTreeMap::new());
    }
    let mut cache = Cache::open();
    let mut files_of = BTreeMap::new();
    for key in inputs(g) {
        let reads = input_reads(&key, catalog);
        if reads.is_empty() {
            bail!(
                "data_version = \"auto\": task of input {key} is not in the catalog, so its files \
                 are unknown; define it with [tasks.NAME] or set a fixed data_version"
            );
        }
        let mut files = Vec::new();
        for r in &reads {
            let root = data_root(g, r.kind, &r.task.name);
            let found = locate_all(r.task, r.split, &r.lang, &root).unwrap_or_default();
            if found.is_empty() && r.split != Split::Dev {
                bail!(
                    "data_version = \"auto\": no {} {} data of task {} in language {} under {} \
                     (the recipe's data_dir, else $STILTS_DATA_DIR, else ./data). Digests are \
                     computed where the grid is submitted: fetch the data there (`stilts data \
                     fetch`), or set a fixed data_version if only the workers can read it",
                    r.task.name,
                    r.split,
                    r.task.name,
                    r.lang,
                    root.display()
                );
            }
            for located in found {
                for f in &located.files {
                    let label = format!(
                        "{} {} {} {}",
                        r.task.name,
                        r.split,
                        r.lang,
                        f.strip_prefix(&root).unwrap_or(f).display()
                    );
                    let what = if located.embedded {
                        Source::Embedded
                    } else {
                        Source::File(f.clone())
                    };
                    files.push((label, what));
                }
            }
        }
        files_of.insert(key, files);
    }
    cache.hash_all(files_of.values().flatten().map(|(_, s)| s))?;
    let mut out = BTreeMap::new();
    for (key, files) in files_of {
        let mut h = Sha256::new();
        for (label, source) in &files {
            let digest = match source {
                Source::Embedded => "embedded".to_string(),
                Source::File(p) => cache.digest(p).context("hashed above")?,
            };
            h.update(format!("{label}\t{digest}\n"));
        }
        out.insert(key, format!("sha256:{}", hex::encode(h.finalize())));
    }
    cache.save();
    Ok(out)
}

enum Source {
    /// The demo corpus compiled into stilts: covered by its code version.
    Embedded,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    files: HashMap<PathBuf, Entry>,
}

/// File digests by canonical path, valid while size and modification time are unchanged.
struct Cache {
    path: Option<PathBuf>,
    data: CacheFile,
    changed: bool,
}

impl Cache {
    fn open() -> Self {
        let path = cache_dir().map(|d| d.join("data-digests.json"));
        let data = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            path,
            data,
            changed: false,
        }
    }

    /// `path`'s digest when the cache holds it for its current size and modification time.
    fn digest(&self, path: &Path) -> Option<String> {
        let (key, size, mtime_ns) = stat(path).ok()?;
        self.data
            .files
            .get(&key)
            .filter(|e| e.size == size && e.mtime_ns == mtime_ns)
            .map(|e| e.sha256.clone())
    }

    /// Hashes every file the cache cannot answer for, with a progress bar over their bytes when
    /// there is much to read.
    fn hash_all<'a>(&mut self, sources: impl Iterator<Item = &'a Source>) -> Result<()> {
        let mut todo: Vec<(PathBuf, u64, u128)> = Vec::new();
        for s in sources {
            let Source::File(p) = s else { continue };
            if self.digest(p).is_some() {
                continue;
            }
            let (key, size, mtime) = stat(p).with_context(|| format!("reading {}", p.display()))?;
            if !todo.iter().any(|(k, ..)| *k == key) {
                todo.push((key, size, mtime));
            }
        }
        let total: u64 = todo.iter().map(|t| t.1).sum();
        let bar = if total >= BAR_BYTES {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "hashing data {bar:30} {binary_bytes}/{binary_total_bytes} ({eta})",
                )
                .expect("a valid template"),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        for (path, size, mtime_ns) in todo {
            let sha256 = hash_file(&path, &bar)?;
            self.data.files.insert(
                path,
                Entry {
                    size,
                    mtime_ns,
                    sha256,
                },
            );
            self.changed = true;
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// Writes the cache back (atomically); a cache that cannot be written is only a warning.
    fn save(&self) {
        let (true, Some(path)) = (self.changed, &self.path) else {
            return;
        };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension(format!("json.{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec(&self.data)?)?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            eprintln!(
                "warning: cannot write the data digest cache {}: {e} (files will be hashed again next time)",
                path.display()
            );
        }
    }
}

fn cache_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("STILTS_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("stilts")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("stilts")))
}

/// Canonical path, size and modification time (ns since the epoch).
fn stat(path: &Path) -> std::io::Result<(PathBuf, u64, u128)> {
    let key = std::fs::canonicalize(path)?;
    let meta = std::fs::metadata(&key)?;
    let mtime = meta
        .modified()?
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Ok((key, meta.len(), mtime))
}

fn hash_file(path: &Path, bar: &indicatif::ProgressBar) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bar.inc(n as u64);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache answers for a file whose size and modification time did not change (so a
    /// re-submit reads nothing), and hashes it again when either changed.
    #[test]
    fn cache_is_keyed_by_size_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("train.csv");
        std::fs::write(&file, "a,b\n1,2\n").unwrap();
        let mut cache = Cache {
            path: Some(dir.path().join("cache.json")),
            data: CacheFile::default(),
            changed: false,
        };
        let src = [Source::File(file.clone())];
        cache.hash_all(src.iter()).unwrap();
        let first = cache.digest(&file).unwrap();
        assert_eq!(first, hex::encode(Sha256::digest(b"a,b\n1,2\n")));
        cache.save();
        let reopened = Cache {
            path: cache.path.clone(),
            data: serde_json::from_slice(&std::fs::read(dir.path().join("cache.json")).unwrap())
                .unwrap(),
            changed: false,
        };
        assert_eq!(reopened.digest(&file), Some(first.clone()));

        // Same size, same mtime, other bytes: the cache's answer stands (this is the trade-off).
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, "a,b\n1,3\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(cache.digest(&file), Some(first.clone()));
        // A new modification time: not answered, hashed again.
        let later = mtime + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(cache.digest(&file), None);
        cache.hash_all(src.iter()).unwrap();
        assert_eq!(
            cache.digest(&file).unwrap(),
            hex::encode(Sha256::digest(b"a,b\n1,3\n"))
        );
    }
}
