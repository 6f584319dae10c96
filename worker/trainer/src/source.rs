//! Where a model comes from: a local HuggingFace directory, or a hub id downloaded once into a
//! cache directory (`https://huggingface.co/{id}/resolve/main/{file}`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Result, TrainerError};

/// The three files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Resolves `source` to a local directory holding [`MODEL_FILES`].
///
/// An existing directory is used as is. Otherwise `source` must look like a hub id
/// (`name` or `org/name`); its files are looked up in `cache_root()/org--name` and downloaded
/// there if missing.
pub fn resolve_model_source(source: &str) -> Result<PathBuf> {
    resolve_model_source_in(source, &cache_root())
}

/// [`resolve_model_source`] with an explicit hub cache directory.
pub fn resolve_model_source_in(source: &str, cache: &Path) -> Result<PathBuf> {
    let path = Path::new(source);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if !is_hub_id(source) {
        return Err(TrainerError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "model source is neither a directory nor a HuggingFace hub id",
            ),
        ));
    }
    let dir = cache.join(source.replace('/', "--"));
    for file in MODEL_FILES {
        let dest = dir.join(file);
        if !dest.is_file() {
            download(&hub_url(source, file), &dest)?;
        }
    }
    Ok(dir)
}

/// `org/name` or `name`: ASCII letters, digits, `-`, `_`, `.`; no `..`, no leading `.` or `/`.
pub fn is_hub_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && !p.contains("..")
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
}

/// The download URL of one file of a hub model.
pub fn hub_url(id: &str, file: &str) -> String {
    format!("https://huggingface.co/{id}/resolve/main/{file}")
}

/// Cache directory for hub downloads: `$STILTS_HF_CACHE`, else `$HF_HOME/stilts`, else
/// `$HOME/.cache/stilts/hub`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("STILTS_HF_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("HF_HOME") {
        return PathBuf::from(dir).join("stilts");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("stilts").join("hub")
}

/// Downloads `url` to `dest` through a `.part` file renamed on success, so an interrupted
/// download never leaves a truncated file under the final name. Sends `$HF_TOKEN` if set.
pub(crate) fn download(url: &str, dest: &Path) -> Result<()> {
    let hub_err = |message: String| TrainerError::Hub {
        url: url.to_string(),
        message,
        missing: false,
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| TrainerError::io(parent, e))?;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_body(Some(Duration::from_secs(600)))
        .build()
        .into();
    let mut request = agent.get(url);
    if let Ok(token) = std::env::var("HF_TOKEN") {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let response = request.call().map_err(|e| match e {
        ureq::Error::StatusCode(code @ (401 | 403 | 404)) => TrainerError::Hub {
            url: url.to_string(),
            message: format!(
                "HTTP {code}: no such file, or a gated/private model (set HF_TOKEN); the \
                 trainer needs config.json, tokenizer.json and model.safetensors"
            ),
            missing: true,
        },
        e => hub_err(format!(
            "{e} (is the network reachable? otherwise download the model directory with its \
             config.json, tokenizer.json and model.safetensors and pass its path)"
        )),
    })?;
    let part = dest.with_extension("part");
    let mut file = std::fs::File::create(&part).map_err(|e| TrainerError::io(&part, e))?;
    let mut body = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = body
            .read(&mut buf)
            .map_err(|e| hub_err(format!("reading body: {e}")))?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut file, &buf[..n]).map_err(|e| TrainerError::io(&part, e))?;
    }
    file.sync_all().map_err(|e| TrainerError::io(&part, e))?;
    std::fs::rename(&part, dest).map_err(|e| TrainerError::io(dest, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids() {
        assert!(is_hub_id("xlm-roberta-base"));
        assert!(is_hub_id("sentence-transformers/all-MiniLM-L6-v2"));
        assert!(!is_hub_id("../etc"));
        assert!(!is_hub_id("/abs/path"));
        assert!(!is_hub_id("a/b/c"));
        assert!(!is_hub_id("models/./x"));
        assert_eq!(
            hub_url("org/m", "config.json"),
            "https://huggingface.co/org/m/resolve/main/config.json"
        );
    }

    /// Serves one canned HTTP response on a local port; returns the base URL.
    fn serve_once(response: &'static str) -> String {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            stream.write_all(response.as_bytes()).unwrap();
        });
        format!("http://{addr}")
    }

    #[test]
    fn download_writes_the_body_and_classifies_404() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("m").join("config.json");
        let base =
            serve_once("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        download(&format!("{base}/org/m/resolve/main/config.json"), &dest).unwrap();
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello");
        assert!(!dest.with_extension("part").exists());

        let base =
            serve_once("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let err = download(
            &format!("{base}/org/m/resolve/main/x"),
            &dir.path().join("x"),
        )
        .unwrap_err();
        assert!(
            matches!(err, TrainerError::Hub { missing: true, .. }),
            "{err}"
        );
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn missing_local_path_is_a_clear_error() {
        let err = resolve_model_source("/no/such/model/dir").unwrap_err();
        assert!(
            err.to_string()
                .contains("neither a directory nor a HuggingFace hub id"),
            "{err}"
        );
    }
}
