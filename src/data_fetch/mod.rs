//! `stilts data fetch TASK… --to DIR`: downloads tasks' original files from HuggingFace hub
//! dataset repositories (or a mirror of them) into the layout the catalog's readers read, with a
//! sha256 manifest (`DIR/.stilts-fetch.json`), resume and a progress bar. `stilts data sources`
//! prints the table.

mod download;
mod manifest;
pub mod sources;

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stilts_tasks::Catalog;

use crate::cli::DataFetchArgs;
use download::Client;
use manifest::{Entry, Manifest};
use sources::{Remote, Source};

/// The public hub; `--mirror` or `HF_ENDPOINT` replace it.
pub const HUB: &str = "https://huggingface.co";

/// What one run did (printed as the last line).
#[derive(Debug, Default)]
pub struct Summary {
    pub downloaded: usize,
    pub present: usize,
    pub bytes: u64,
}

pub fn fetch(args: &DataFetchArgs) -> Result<Summary> {
    let catalog = crate::catalog::load(args.catalog.as_deref())?;
    let mut plan: Vec<Remote> = Vec::new();
    let mut problems = Vec::new();
    for name in &args.tasks {
        let Some(task) = catalog.get(name) else {
            bail!(
                "unknown task {name:?}; known tasks: {}",
                catalog
                    .tasks()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        match sources::remotes(task) {
            Ok(remotes) if remotes.is_empty() => {
                eprintln!("{name}: embedded in the binary, nothing to fetch");
            }
            Ok(remotes) => {
                for r in remotes {
                    if !plan.iter().any(|p| p.dest == r.dest) {
                        plan.push(r);
                    }
                }
            }
            Err(why) => problems.push(format!("{name}: {why}")),
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    let base = args
        .mirror
        .clone()
        .or_else(|| std::env::var("HF_ENDPOINT").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| HUB.to_string());
    let token = std::env::var("HF_TOKEN").ok().filter(|s| !s.is_empty());
    let client = Client::new(&base, token);
    let to = &args.to;
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut manifest = Manifest::load(to)?;
    let tty = std::io::stderr().is_terminal();
    let style = ProgressStyle::with_template(
        "{prefix:.bold} [{bar:32.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )?
    .progress_chars("=> ");
    let mut summary = Summary::default();
    for (i, remote) in plan.iter().enumerate() {
        let dest = to.join(&remote.dest);
        let url = remote.url(&base);
        if present(to, &manifest, remote)? {
            summary.present += 1;
            continue;
        }
        let bar = ProgressBar::with_draw_target(
            None,
            if tty {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        )
        .with_style(style.clone())
        .with_prefix(format!("[{}/{}] {}", i + 1, plan.len(), remote.dest));
        let fetched = client.fetch(&url, &dest, remote.sha256, &bar)?;
        bar.finish_and_clear();
        eprintln!(
            "fetched {} ({} bytes{})",
            remote.dest,
            fetched.bytes,
            match fetched.resumed_from {
                Some(at) => format!(", resumed at byte {at}"),
                None => String::new(),
            }
        );
        summary.downloaded += 1;
        summary.bytes += fetched.transferred;
        manifest.insert(
            &remote.dest,
            Entry {
                url,
                sha256: fetched.sha256,
                bytes: fetched.bytes,
            },
        );
        manifest.save(to)?;
    }
    Ok(summary)
}

/// Whether the file is already there: its sha256 matches the manifest (and the table's pin). A
/// file that changed since it was fetched is an error, never silently replaced; a file stilts
/// did not fetch is kept.
fn present(root: &Path, manifest: &Manifest, remote: &Remote) -> Result<bool> {
    let dest = root.join(&remote.dest);
    if !dest.is_file() {
        return Ok(false);
    }
    let (sha, _) = download::hash_file(&dest)?;
    if let Some(pin) = remote.sha256
        && !pin.eq_ignore_ascii_case(&sha)
    {
        bail!(
            "{} does not match the pinned checksum: expected sha256 {pin}, found {sha}; remove \
             it to fetch it again",
            dest.display()
        );
    }
    match manifest.get(&remote.dest) {
        Some(entry) if entry.sha256 != sha => bail!(
            "{} changed since it was fetched: the manifest {} records sha256 {}, the file has \
             {sha}; remove it to fetch it again",
            dest.display(),
            manifest::path(root).display(),
            entry.sha256
        ),
        Some(_) => Ok(true),
        // There, but not fetched by stilts (an earlier manual download): kept, never replaced
        // (stilts deletes nothing it did not create). Interrupted downloads never reach the
        // final name, they stay `.part`.
        None => {
            eprintln!(
                "{}: kept the file already there (not fetched by stilts, so not verified{})",
                remote.dest,
                if remote.sha256.is_some() {
                    " against a manifest; it matches the pinned sha256"
                } else {
                    ""
                }
            );
            Ok(true)
        }
    }
}

/// `stilts data sources`: the table, one line per catalog task.
pub fn list(catalog: &Catalog) -> String {
    let mut out = String::from(
        "task           source (hub dataset repository@revision, files)  — URL: \
         <base>/datasets/<repo>/resolve/<rev>/<path>\n",
    );
    for task in catalog.tasks() {
        let line = match (sources::source(&task.name), sources::remotes(task)) {
            (Some(Source::Files { repo, rev, dir, .. }), Ok(files)) => {
                format!("{repo}@{rev}, {} files → {dir}/", files.len())
            }
            (Some(Source::Embedded), _) => {
                "embedded in the binary (synthetic demo corpus): nothing to fetch".to_string()
            }
            (_, Err(why)) => why,
            (_, Ok(_)) => unreachable!("remotes are Ok only for Files rows"),
        };
        out.push_str(&format!("{:<14} {line}\n", task.name));
    }
    out.push_str(
        "\nThe repository paths are the original distributions' file names; the table was \
         written without access to the hub,\nand some repositories (google/xquad, facebook/xnli) \
         hold parquet conversions instead: fetch those from a mirror.\n",
    );
    out
}
