//! Build facts for `stilts --version` (`src/version.rs`): the git commit the binary was built
//! from, its cargo features and the training backends they compile in, and the target.
//!
//! `STILTS_GIT_COMMIT` (e.g. set by a container build that has no `.git`) wins; otherwise
//! `git rev-parse` in the source tree; without git or outside a checkout: "unknown".
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=STILTS_GIT_COMMIT");
    let commit = match std::env::var("STILTS_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => git_commit().unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=STILTS_GIT_COMMIT={commit}");

    let trainer = std::env::var_os("CARGO_FEATURE_TRAINER").is_some();
    let libtorch = std::env::var_os("CARGO_FEATURE_LIBTORCH").is_some();
    let features: Vec<&str> = [("trainer", trainer), ("libtorch", libtorch)]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(", ")
    };
    // `--backend` values of `stilts run` / `stilts worker` this build can train with.
    let backends = match (trainer, libtorch) {
        (true, true) => "cpu (burn flex), libtorch-cpu, libtorch-cuda",
        (true, false) => "cpu (burn flex)",
        (false, _) => "none (no built-in trainer: command executor only)",
    };
    println!("cargo:rustc-env=STILTS_FEATURES={features}");
    println!("cargo:rustc-env=STILTS_BACKENDS={backends}");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=STILTS_TARGET={target}");
}

/// The checked-out commit (short hash), and reruns of this script whenever HEAD moves.
fn git_commit() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let hash = git(&dir, &["rev-parse", "--short=12", "HEAD"])?;
    // HEAD names the branch; the branch's ref file (or packed-refs) moves on commit. In a worktree
    // these live in different git directories.
    let head = PathBuf::from(git(
        &dir,
        &["rev-parse", "--path-format=absolute", "--git-path", "HEAD"],
    )?);
    rerun_if_exists(&head);
    if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(
            &dir,
            &["rev-parse", "--path-format=absolute", "--git-path", &branch],
        )
    {
        rerun_if_exists(Path::new(&path));
    }
    if let Some(packed) = git(
        &dir,
        &[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "packed-refs",
        ],
    ) {
        rerun_if_exists(Path::new(&packed));
    }
    Some(hash)
}

fn rerun_if_exists(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
