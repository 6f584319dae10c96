//! The dependency rules of ARCHITECTURE.md, checked on the tree so that they cannot quietly
//! break: which crate may depend on which (from `cargo metadata`), and no import circle of more
//! than two files inside any crate (from the `use crate::…`, `super::…` and `self::…` paths of
//! every source file; a module's uses of its own submodules do not count).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Dependencies each workspace crate must not have (direct, not counting dev-dependencies).
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "stilts-common",
        &[
            "burn",
            "rusqlite",
            "etcd-client",
            "axum",
            "tonic-health",
            "stilts-coordinator",
            "stilts-worker",
            "stilts-trainer",
        ],
    ),
    (
        "stilts-tasks",
        &["burn", "tonic", "rusqlite", "etcd-client", "stilts-proto"],
    ),
    (
        "stilts-coordinator",
        &["burn", "stilts-worker", "stilts-trainer"],
    ),
    ("stilts-worker", &["burn", "stilts-coordinator", "rusqlite"]),
    (
        "stilts-trainer",
        &["stilts-coordinator", "rusqlite", "etcd-client"],
    ),
];

/// The largest import circle allowed inside a crate, in files (two files that need each other's
/// types are tolerated; three or more are a knot).
const MAX_CIRCLE: usize = 2;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (package name, manifest dir, direct dependency names) of every workspace member.
fn packages() -> Vec<(String, PathBuf, Vec<String>)> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                // Normal dependencies: tests may use other crates (a real worker in the
                // coordinator's tests).
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect();
            (
                p["name"].as_str().unwrap().to_string(),
                manifest.parent().unwrap().to_path_buf(),
                deps,
            )
        })
        .collect()
}

#[test]
fn crates_depend_only_where_the_rules_allow() {
    let packages = packages();
    let mut broken = Vec::new();
    for (name, _, deps) in &packages {
        let forbidden = FORBIDDEN
            .iter()
            .find(|(p, _)| p == name)
            .map_or(&[][..], |(_, f)| *f);
        for d in deps {
            let is_burn = d == "burn" || d.starts_with("burn-");
            if forbidden
                .iter()
                .any(|f| d == f || (*f == "burn" && is_burn))
            {
                broken.push(format!("{name} depends on {d}"));
            }
            if is_burn && name != "stilts-trainer" {
                broken.push(format!(
                    "{name} depends on {d}: burn lives in stilts-trainer only"
                ));
            }
        }
    }
    for (name, _) in FORBIDDEN {
        assert!(
            packages.iter().any(|(p, ..)| p == name),
            "rule for unknown crate {name}"
        );
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// A crate's source files by module path (`""` is the crate root, `http::api` …).
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.insert(parts.join("::"), path);
        }
    }
    out
}

/// The code of a file without comments, string contents and its trailing `#[cfg(test)]` module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| {
            let l = l.trim_start();
            if l.starts_with("//") {
                ""
            } else {
                l.split(" //").next().unwrap_or("")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a file names from `base` (`crate`, `super`, `self` or a child module declared in
/// the file): `crate::a::b`, `use crate::{a::X, b}` and nested groups, flattened to segments.
fn paths_from(code: &str, base: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let pat = format!("{base}::");
    let mut rest = code;
    while let Some(i) = rest.find(&pat) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + pat.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        expand(rest, &mut Vec::new(), &mut out);
    }
    out
}

/// `super::…` paths with the position where each starts.
fn super_paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find("super::") {
        let at = from + i;
        from = at + "super::".len();
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut paths = Vec::new();
        expand(&code[from..], &mut Vec::new(), &mut paths);
        out.extend(paths.into_iter().map(|p| (at, p)));
    }
    out
}

/// How many inline `mod x { … }` blocks are open at the end of `code`.
fn inline_depth(code: &str) -> usize {
    let mut depth = 0usize;
    let mut open: Vec<usize> = Vec::new();
    let mut pending_mod = false;
    let mut word = String::new();
    for c in code.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if word == "mod" {
            pending_mod = true;
        } else if !word.is_empty() && pending_mod && c != ' ' && c != '{' {
            pending_mod = false;
        }
        word.clear();
        match c {
            '{' => {
                depth += 1;
                if pending_mod {
                    open.push(depth);
                }
                pending_mod = false;
            }
            '}' => {
                if open.last() == Some(&depth) {
                    open.pop();
                }
                depth = depth.saturating_sub(1);
            }
            ';' => pending_mod = false,
            _ => {}
        }
    }
    open.len()
}

/// Reads one path (or brace group) at the start of `s` with `prefix` before it.
fn expand(s: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    expand(&group[start..i], &mut prefix.clone(), out);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&group[start..i], &mut prefix.clone(), out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let ident: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        out.push(prefix.clone());
        return;
    }
    prefix.push(ident.clone());
    match s[ident.len()..].strip_prefix("::") {
        Some(more) => expand(more, prefix, out),
        None => out.push(prefix.clone()),
    }
}

/// The file a path names: the longest module prefix of `base :: segments` that is a file.
fn target(mods: &BTreeMap<String, PathBuf>, base: &[String], segs: &[String]) -> Option<String> {
    let mut full: Vec<String> = base.to_vec();
    full.extend(segs.iter().cloned());
    (base.len()..=full.len())
        .rev()
        .map(|n| full[..n].join("::"))
        .find(|m| mods.contains_key(m))
}

/// Strongly connected components of the file import graph with more than one file.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Kosaraju: order by finish time, then walk the reversed graph.
    let nodes: Vec<&String> = edges.keys().collect();
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for &n in &nodes {
        if seen.contains(n) {
            continue;
        }
        let mut stack = vec![(n.clone(), false)];
        while let Some((v, done)) = stack.pop() {
            if done {
                order.push(v);
                continue;
            }
            if !seen.insert(v.clone()) {
                continue;
            }
            stack.push((v.clone(), true));
            for w in edges.get(&v).into_iter().flatten() {
                if !seen.contains(w) {
                    stack.push((w.clone(), false));
                }
            }
        }
    }
    let mut reverse: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (a, bs) in edges {
        for b in bs {
            reverse.entry(b).or_default().push(a);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for v in order.iter().rev() {
        if assigned.contains(v) {
            continue;
        }
        let mut component = Vec::new();
        let mut stack = vec![v];
        assigned.insert(v.clone());
        while let Some(x) = stack.pop() {
            component.push(x.clone());
            for &w in reverse.get(x).into_iter().flatten() {
                if assigned.insert(w.clone()) {
                    stack.push(w);
                }
            }
        }
        if component.len() > 1 {
            component.sort();
            out.push(component);
        }
    }
    out
}

/// The file import graph of the crate whose sources are under `src`, by module path.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in &mods {
        let code = code_of(&std::fs::read_to_string(path).unwrap());
        let here: Vec<String> = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").map(String::from).collect()
        };
        let children: Vec<String> = code
            .lines()
            .filter_map(|l| {
                let l = l
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub ");
                l.strip_prefix("mod ")?.strip_suffix(';').map(String::from)
            })
            .collect();
        let mut found: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for segs in paths_from(&code, "crate") {
            found.push((Vec::new(), segs));
        }
        for (at, segs) in super_paths(&code) {
            // `super` inside an inline `mod x { … }` names this file's module first.
            let ups = segs.iter().take_while(|s| *s == "super").count() + 1;
            let inline = inline_depth(&code[..at]);
            if ups > inline && ups - inline <= here.len() {
                let base = here[..here.len() - (ups - inline)].to_vec();
                found.push((base, segs[ups - 1..].to_vec()));
            }
        }
        for segs in paths_from(&code, "self") {
            found.push((here.clone(), segs));
        }
        for child in &children {
            for line in code.lines().filter(|l| l.contains("use ")) {
                for segs in paths_from(line, child) {
                    let mut s = vec![child.clone()];
                    s.extend(segs);
                    found.push((here.clone(), s));
                }
            }
        }
        let entry = edges.entry(module.clone()).or_default();
        for (base, segs) in found {
            // A module's use of its own submodules (a facade re-exporting them, an impl split
            // over files) is structure, not a knot: only edges out of the subtree count.
            if let Some(t) = target(&mods, &base, &segs)
                && &t != module
                && !(module.is_empty() || t.starts_with(&format!("{module}::")))
            {
                entry.insert(t);
            }
        }
    }
    edges
}

#[test]
fn no_crate_has_an_import_circle_of_more_than_two_files() {
    let mut knots = Vec::new();
    let mut crates = 0;
    for (name, dir, _) in packages() {
        let src = dir.join("src");
        if !src.is_dir() || name == "stilts-proto" {
            continue;
        }
        crates += 1;
        for circle in circles(&import_graph(&src)) {
            if circle.len() > MAX_CIRCLE {
                knots.push(format!(
                    "{name}: {} files import each other: {}",
                    circle.len(),
                    circle.join(", ")
                ));
            }
        }
    }
    assert!(crates >= 6, "found {crates} crates");
    assert!(
        knots.is_empty(),
        "import circles (break them, e.g. by moving the shared type into a file of its own):\n{}",
        knots.join("\n")
    );
}

/// The checker itself finds a circle it is shown, through `crate::`, `super::` and groups.
#[test]
fn the_circle_finder_sees_groups_and_super() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("http")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod http;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::{http::api::{X, Y}, b};\n").unwrap();
    std::fs::write(
        src.join("http/mod.rs"),
        "mod api;\nuse crate::a::Z;\nuse api::W;\n",
    )
    .unwrap();
    std::fs::write(src.join("http/api.rs"), "use super::Q; // crate::b::no\n").unwrap();
    let found = circles(&import_graph(src));
    assert_eq!(found, vec![vec!["a", "http", "http::api"]]);
    std::fs::write(src.join("http/api.rs"), "// use super::Q;\n").unwrap();
    assert!(circles(&import_graph(src)).is_empty());
}

#[test]
#[ignore = "debugging aid"]
fn print_graph() {
    let src = std::env::var("SRC").unwrap();
    for (m, ts) in import_graph(Path::new(&src)) {
        println!("{m:?} -> {ts:?}");
    }
}
