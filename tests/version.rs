//! `stilts --version` of the real binary: version, the commit it was built from, the cargo
//! features and training backends compiled in, the target.

use std::process::Command;

fn stilts(arg: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_stilts"))
        .arg(arg)
        .output()
        .expect("run stilts");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

/// What `build.rs` should have found: the override, else git's short hash of HEAD.
fn expected_commit() -> Option<String> {
    if let Ok(c) = std::env::var("STILTS_GIT_COMMIT")
        && !c.trim().is_empty()
    {
        return Some(c.trim().to_owned());
    }
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{text}"))
        .trim()
}

#[test]
fn version_names_commit_features_and_backends() {
    let text = stilts("--version");
    assert_eq!(
        text.lines().next(),
        Some(format!("stilts {}", env!("CARGO_PKG_VERSION")).as_str()),
        "{text}"
    );

    let commit = field(&text, "commit:");
    match expected_commit() {
        Some(want) => assert_eq!(commit, want, "{text}"),
        None => assert_eq!(commit, "unknown", "{text}"),
    }

    let features: Vec<&str> = field(&text, "features:").split(", ").collect();
    assert_eq!(
        features.contains(&"trainer"),
        cfg!(feature = "trainer"),
        "{text}"
    );
    assert_eq!(
        features.contains(&"libtorch"),
        cfg!(feature = "libtorch"),
        "{text}"
    );

    let backends = field(&text, "backends:");
    assert_eq!(
        backends.contains("cpu (burn flex)"),
        cfg!(feature = "trainer"),
        "{text}"
    );
    assert_eq!(
        backends.contains("libtorch-cuda"),
        cfg!(feature = "libtorch"),
        "{text}"
    );

    let target = field(&text, "target:");
    assert!(target.contains(std::env::consts::ARCH), "{text}");
}

#[test]
fn short_version_is_one_line() {
    let text = stilts("-V");
    assert_eq!(
        text.trim_end(),
        format!("stilts {}", env!("CARGO_PKG_VERSION"))
    );
}
