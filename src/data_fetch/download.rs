//! One file over HTTP(S): `.part` file, resume with a `Range` request (also within one run after
//! a dropped connection), sha256 of the completed file, redirects followed by hand so the hub's
//! `X-Linked-Etag` (the sha256 of an LFS file) is seen before the CDN hop.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};

/// Attempts per file within one run (the first plus resumes after a dropped connection).
const ATTEMPTS: u32 = 4;
const MAX_REDIRECTS: u32 = 10;

/// How to talk to the hub or a mirror.
pub struct Client {
    agent: ureq::Agent,
    /// Sent as `Authorization: Bearer` to the base URL's host only (never to a CDN a redirect
    /// points at).
    token: Option<String>,
    base_host: String,
}

/// What landed on disk.
pub struct Fetched {
    pub sha256: String,
    pub bytes: u64,
    /// Bytes the server sent this run (less than `bytes` when an earlier run's `.part` was
    /// continued).
    pub transferred: u64,
    /// The byte a `Range` request first continued from, if one did.
    pub resumed_from: Option<u64>,
}

impl Client {
    pub fn new(base: &str, token: Option<String>) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            agent,
            token,
            base_host: host_of(base).to_string(),
        }
    }

    /// Downloads `url` to `dest` through `dest.part`, continuing a `.part` left by an earlier
    /// run. `expected` (the table's pin) or else the server's sha256 etag is checked before the
    /// rename; a mismatch removes the `.part` and names the file and both digests.
    pub fn fetch(
        &self,
        url: &str,
        dest: &Path,
        expected: Option<&str>,
        bar: &ProgressBar,
    ) -> Result<Fetched> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let part = part_path(dest);
        let mut transferred = 0u64;
        let mut resumed_from = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(url, &part, bar, &mut transferred, &mut resumed_from)? {
                Attempt::Complete { server_sha256 } => {
                    let (sha256, bytes) = hash_file(&part)?;
                    if let Some(want) = expected.or(server_sha256.as_deref())
                        && !want.eq_ignore_ascii_case(&sha256)
                    {
                        let _ = std::fs::remove_file(&part);
                        bail!(
                            "checksum mismatch for {} (from {url}): expected sha256 {want}, got \
                             {sha256}; the partial download was removed, run again to refetch",
                            dest.display()
                        );
                    }
                    std::fs::rename(&part, dest).with_context(|| {
                        format!("renaming {} to {}", part.display(), dest.display())
                    })?;
                    return Ok(Fetched {
                        sha256,
                        bytes,
                        transferred,
                        resumed_from,
                    });
                }
                Attempt::Interrupted(e) if attempt < ATTEMPTS => {
                    let line = format!(
                        "connection lost while fetching {url} ({e}); resuming from byte {}",
                        len_of(&part)
                    );
                    if bar.is_hidden() {
                        eprintln!("{line}");
                    } else {
                        bar.println(line);
                    }
                }
                Attempt::Interrupted(e) => bail!(
                    "fetching {url} was interrupted {ATTEMPTS} times (last: {e}); {} bytes are \
                     kept in {}: run the same command again to resume",
                    len_of(&part),
                    part.display()
                ),
            }
        }
    }

    fn attempt(
        &self,
        url: &str,
        part: &Path,
        bar: &ProgressBar,
        transferred: &mut u64,
        resumed_from: &mut Option<u64>,
    ) -> Result<Attempt> {
        let offset = len_of(part);
        let (response, server_sha256, final_url) = self.get(url, offset)?;
        let status = response.status().as_u16();
        let total = header(&response, "content-length").and_then(|v| v.parse::<u64>().ok());
        let mut file = match status {
            206 => {
                let start = header(&response, "content-range").and_then(|v| {
                    v.strip_prefix("bytes ")?
                        .split('-')
                        .next()?
                        .parse::<u64>()
                        .ok()
                });
                if start != Some(offset) {
                    bail!(
                        "{final_url} answered a range request for byte {offset} with \
                         Content-Range {:?}; delete {} and run again",
                        header(&response, "content-range"),
                        part.display()
                    );
                }
                OpenOptions::new()
                    .append(true)
                    .open(part)
                    .with_context(|| format!("opening {}", part.display()))?
            }
            200 => File::create(part).with_context(|| format!("creating {}", part.display()))?,
            416 if offset > 0 => {
                // The `.part` is as long as (or longer than) the file: start over.
                std::fs::remove_file(part)
                    .with_context(|| format!("removing {}", part.display()))?;
                return Ok(Attempt::Interrupted("range not satisfiable".into()));
            }
            _ => bail!(status_problem(status, &final_url)),
        };
        let already = if status == 206 { offset } else { 0 };
        if status == 206 {
            resumed_from.get_or_insert(offset);
        }
        bar.set_length(already + total.unwrap_or(0));
        bar.set_position(already);
        let mut body = response.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Ok(Attempt::Interrupted(e.to_string())),
            };
            file.write_all(&buf[..n])
                .with_context(|| format!("writing {}", part.display()))?;
            got += n as u64;
            *transferred += n as u64;
            bar.inc(n as u64);
        }
        file.sync_all()
            .with_context(|| format!("writing {}", part.display()))?;
        if let Some(total) = total
            && got < total
        {
            return Ok(Attempt::Interrupted(format!(
                "body ended after {got} of {total} bytes"
            )));
        }
        Ok(Attempt::Complete { server_sha256 })
    }

    /// GET with redirects followed by hand; returns the final response, the sha256 etag seen
    /// on the way, and the final URL.
    fn get(
        &self,
        url: &str,
        offset: u64,
    ) -> Result<(ureq::http::Response<ureq::Body>, Option<String>, String)> {
        let mut url = url.to_string();
        let mut sha = None;
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.agent.get(&url);
            if offset > 0 {
                request = request.header("Range", &format!("bytes={offset}-"));
            }
            if let Some(token) = &self.token
                && host_of(&url) == self.base_host
            {
                request = request.header("Authorization", &format!("Bearer {token}"));
            }
            let response = request.call().map_err(|e| unreachable_problem(&url, e))?;
            for name in ["x-linked-etag", "etag"] {
                if sha.is_none() {
                    sha = header(&response, name).and_then(sha256_etag);
                }
            }
            if response.status().is_redirection() {
                let location = header(&response, "location").with_context(|| {
                    format!("{url} answered {} without a Location", response.status())
                })?;
                url = join_location(&url, location);
                continue;
            }
            return Ok((response, sha, url));
        }
        bail!("more than {MAX_REDIRECTS} redirects fetching {url}")
    }
}

enum Attempt {
    Complete { server_sha256: Option<String> },
    Interrupted(String),
}

fn header<'a>(r: &'a ureq::http::Response<ureq::Body>, name: &str) -> Option<&'a str> {
    r.headers().get(name)?.to_str().ok()
}

/// An etag that is a sha256 (the hub's `X-Linked-Etag` of LFS files); git blob etags (40 hex)
/// and others are not.
fn sha256_etag(v: &str) -> Option<String> {
    let v = v.trim().trim_start_matches("W/").trim_matches('"');
    (v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())
}

fn status_problem(status: u16, url: &str) -> String {
    match status {
        401 | 403 => format!(
            "{url}: HTTP {status}: the repository is gated or private; accept its terms on the \
             hub and set HF_TOKEN to a token that may read it"
        ),
        404 => format!(
            "{url}: HTTP 404: no such file at that revision (the hub repository may hold only a \
             parquet conversion, see `stilts data sources`); serve the original files from a \
             mirror and pass --mirror URL"
        ),
        _ => format!("{url}: HTTP {status}"),
    }
}

fn unreachable_problem(url: &str, e: ureq::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot reach {url}: {e}; without network access, serve a mirror of the files \
         (datasets/<repo>/resolve/<rev>/<path>) and pass --mirror URL or set HF_ENDPOINT"
    )
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or("")
}

fn join_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        format!("{}{location}", &base[..origin_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= origin_end)
            .unwrap_or(origin_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

fn len_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// sha256 (lower-case hex) and length of a file.
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_locations_hosts() {
        let sha = "a".repeat(64);
        assert_eq!(sha256_etag(&format!("\"{sha}\"")), Some(sha.clone()));
        assert_eq!(sha256_etag(&format!("W/\"{}\"", "b".repeat(40))), None);
        assert_eq!(
            join_location("http://h:1/datasets/a/b/resolve/main/x.json", "/cdn/x"),
            "http://h:1/cdn/x"
        );
        assert_eq!(join_location("http://h/a/b", "c"), "http://h/a/c");
        assert_eq!(
            join_location("http://h/a", "https://cdn/z"),
            "https://cdn/z"
        );
        assert_eq!(
            host_of("https://huggingface.co/datasets/x"),
            "huggingface.co"
        );
        assert_eq!(
            part_path(Path::new("/d/xquad.de.json")),
            Path::new("/d/xquad.de.json.part")
        );
    }
}
