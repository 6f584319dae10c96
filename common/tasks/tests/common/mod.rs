//! Shared test helpers: the real data comes from `STILTS_SHARED_DATA` (never copied here).
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared data dir, or `None` (after a visible message) when unset or missing.
pub fn data_root() -> Option<PathBuf> {
    match std::env::var_os("STILTS_SHARED_DATA").map(PathBuf::from) {
        Some(p) if p.is_dir() => Some(p),
        _ => {
            eprintln!("skipping: STILTS_SHARED_DATA not set");
            None
        }
    }
}

/// `python3` with `module` importable, or `None` (after a visible message).
pub fn python_with(module: &str) -> Option<&'static str> {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some("python3")
    } else {
        eprintln!(
            "skipping: python3 with `{module}` not available (pip install -r tests/oracle/requirements.txt)"
        );
        None
    }
}

/// Runs a python script with `input` on stdin; returns stdout.
pub fn run_python(script: &str, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{script} failed");
    String::from_utf8(out.stdout).unwrap()
}

pub fn oracle(name: &str) -> String {
    format!("{}/tests/oracle/{name}", env!("CARGO_MANIFEST_DIR"))
}
