//! `stilts data fetch` of the real binary against a real HTTP server on a loopback port that
//! serves a small mirror in the hub's URL layout (`/datasets/<repo>/resolve/<rev>/<path>`,
//! answered like the hub answers LFS files: a 302 carrying `X-Linked-Etag` = sha256, then the
//! bytes, with `Range` support). Checks: files land where the catalog's readers find them, a
//! re-run downloads nothing, a dropped connection resumes with a Range request, a wrong checksum
//! is refused naming the file, unknown/unfetchable tasks and 404s are clear errors.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use stilts_tasks::{Catalog, Split, load};

mod support;

/// One request the mirror saw: path, Range header, Authorization header.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    range: Option<String>,
    auth: Option<String>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// Paths whose first body is cut after half its bytes (connection closed).
    drop_once: Vec<String>,
    /// Paths whose `X-Linked-Etag` is a wrong digest.
    wrong_sha: Vec<String>,
    /// Repositories answered 401 (gated).
    gated: Vec<String>,
}

/// A mirror serving `root/<repo>/<path>`.
struct Mirror {
    base: String,
    state: Arc<Mutex<State>>,
}

impl Mirror {
    fn start(root: PathBuf) -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (root, st) = (root.clone(), st.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &root, &st);
                });
            }
        });
        Mirror { base, state }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn serve(mut stream: TcpStream, root: &Path, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let range = headers.get("range").cloned();
    state.lock().unwrap().seen.push(Seen {
        path: path.clone(),
        range: range.clone(),
        auth: headers.get("authorization").cloned(),
    });
    let respond = |stream: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            body.len()
        )?;
        stream.write_all(body)
    };
    // The hub: /datasets/<org>/<name>/resolve/<rev>/<path> → 302 to the CDN with the sha256.
    if let Some(rest) = path.strip_prefix("/datasets/") {
        let parts: Vec<&str> = rest.splitn(5, '/').collect();
        if parts.len() < 5 || parts[2] != "resolve" {
            return respond(&mut stream, "400 Bad Request", "", b"");
        }
        let (repo, file) = (format!("{}/{}", parts[0], parts[1]), parts[4]);
        if state.lock().unwrap().gated.contains(&repo) {
            return respond(&mut stream, "401 Unauthorized", "", b"");
        }
        let Ok(bytes) = std::fs::read(root.join(&repo).join(file)) else {
            return respond(&mut stream, "404 Not Found", "", b"Entry not found");
        };
        let mut sha = hex::encode(Sha256::digest(&bytes));
        if state
            .lock()
            .unwrap()
            .wrong_sha
            .iter()
            .any(|p| path.ends_with(p))
        {
            sha = "0".repeat(64);
        }
        let extra = format!("Location: /cdn/{repo}/{file}\r\nX-Linked-Etag: \"{sha}\"\r\n");
        return respond(&mut stream, "302 Found", &extra, b"");
    }
    // The CDN: bytes, with Range.
    let Some(rel) = path.strip_prefix("/cdn/") else {
        return respond(&mut stream, "404 Not Found", "", b"");
    };
    let Ok(bytes) = std::fs::read(root.join(rel)) else {
        return respond(&mut stream, "404 Not Found", "", b"");
    };
    let start: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .unwrap_or(0);
    let cut = {
        let mut st = state.lock().unwrap();
        let hit = st.drop_once.iter().position(|p| path.ends_with(p.as_str()));
        hit.map(|i| st.drop_once.remove(i)).is_some()
    };
    let body = &bytes[start..];
    if range.is_some() {
        write!(
            stream,
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
            body.len(),
            bytes.len() - 1,
            bytes.len()
        )?;
    } else {
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
    }
    if cut {
        // Half the body, then the connection goes away.
        stream.write_all(&body[..body.len() / 2])?;
        stream.flush()?;
        return stream.shutdown(std::net::Shutdown::Both);
    }
    stream.write_all(body)
}

fn squad_json(lang: &str, pad: usize) -> String {
    // `pad` makes the file big enough that half of it is a real partial download.
    let context = format!(
        "Paris is the capital of France. {}",
        "More text. ".repeat(pad)
    );
    serde_json::json!({
        "version": "1.1",
        "data": [{"title": format!("t-{lang}"), "paragraphs": [{
            "context": context,
            "qas": [{"id": format!("q-{lang}"), "question": "What is the capital of France?",
                     "answers": [{"text": "Paris", "answer_start": 0}]}]
        }]}]
    })
    .to_string()
}

/// The mirror tree: SQuAD v1.1 and XQuAD (12 languages) under their repositories.
fn mirror_tree(root: &Path) {
    let squad = root.join("rajpurkar/squad");
    std::fs::create_dir_all(&squad).unwrap();
    std::fs::write(squad.join("train-v1.1.json"), squad_json("en", 2000)).unwrap();
    std::fs::write(squad.join("dev-v1.1.json"), squad_json("en", 1)).unwrap();
    let xquad = root.join("google/xquad");
    std::fs::create_dir_all(&xquad).unwrap();
    for lang in &Catalog::builtin().get("xquad").unwrap().languages {
        std::fs::write(
            xquad.join(format!("xquad.{lang}.json")),
            squad_json(lang, 1),
        )
        .unwrap();
    }
}

fn fetch(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = support::stilts();
    cmd.args(["data", "fetch"])
        .args(args)
        .env_remove("HF_ENDPOINT")
        .env_remove("HF_TOKEN");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run stilts data fetch")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn fetch_lands_in_the_reader_layout_resumes_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("mirror");
    mirror_tree(&tree);
    let mirror = Mirror::start(tree);
    let data = tmp.path().join("data");
    let to = data.to_str().unwrap();

    // The big file's first body is cut half-way: the run must resume it with a Range request.
    mirror
        .state
        .lock()
        .unwrap()
        .drop_once
        .push("rajpurkar/squad/train-v1.1.json".into());
    let out = fetch(
        &["squad", "xquad", "--to", to, "--mirror", &mirror.base],
        &[("HF_TOKEN", "hf_test_token")],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("14 downloaded"), "{}", text(&out));
    let seen = mirror.seen();
    // The resumed attempt sends Range on both hops (hub, then CDN); the CDN answers it.
    let ranged: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.range.is_some() && s.path.starts_with("/cdn/"))
        .collect();
    assert_eq!(ranged.len(), 1, "one resumed request: {seen:#?}");
    assert!(ranged[0].path.ends_with("train-v1.1.json"), "{seen:#?}");
    let half = squad_json("en", 2000).len() / 2;
    assert_eq!(
        ranged[0].range.as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("resumed at byte {half}")),
        "{}",
        text(&out)
    );
    // The token goes to the mirror's host (hub and CDN hops alike here: same host).
    assert!(
        seen.iter()
            .all(|s| s.auth.as_deref() == Some("Bearer hf_test_token")),
        "{seen:#?}"
    );

    // The files are where the catalog's readers look, byte for byte.
    assert_eq!(
        std::fs::read_to_string(data.join("squad/train-v1.1.json")).unwrap(),
        squad_json("en", 2000)
    );
    assert!(!data.join("squad/train-v1.1.json.part").exists());
    let catalog = Catalog::builtin();
    let squad = catalog.get("squad").unwrap();
    assert_eq!(load(squad, Split::Train, "en", &data).unwrap().len(), 1);
    assert_eq!(load(squad, Split::Dev, "en", &data).unwrap().len(), 1);
    let xquad = catalog.get("xquad").unwrap();
    for lang in ["de", "ro", "zh"] {
        assert_eq!(
            load(xquad, Split::Test, lang, &data).unwrap().len(),
            1,
            "{lang}"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join(".stilts-fetch.json")).unwrap())
            .unwrap();
    let entry = &manifest["files"]["squad/train-v1.1.json"];
    assert_eq!(
        entry["sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(squad_json("en", 2000).as_bytes()))
    );

    // Again, through HF_ENDPOINT instead of --mirror: nothing is downloaded.
    let before = mirror.seen().len();
    let out = fetch(
        &["squad", "xquad", "--to", to],
        &[("HF_ENDPOINT", mirror.base.as_str())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 downloaded (0 bytes), 14 already present"),
        "{}",
        text(&out)
    );
    assert_eq!(
        mirror.seen().len(),
        before,
        "a re-run must not touch the network"
    );

    // A file changed on disk since the fetch is refused, not silently replaced.
    std::fs::write(data.join("xquad/xquad.de.json"), "{}").unwrap();
    let out = fetch(&["xquad", "--to", to, "--mirror", &mirror.base], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("xquad.de.json changed since it was fetched"),
        "{}",
        text(&out)
    );

    // A file stilts did not fetch is kept as it is.
    std::fs::remove_file(data.join(".stilts-fetch.json")).unwrap();
    let out = fetch(&["squad", "--to", to, "--mirror", &mirror.base], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("squad/dev-v1.1.json: kept the file"),
        "{}",
        text(&out)
    );
    assert_eq!(mirror.seen().len(), before);
}

#[test]
fn checksum_mismatch_404_and_unknown_tasks_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("mirror");
    mirror_tree(&tree);
    let mirror = Mirror::start(tree);
    let data = tmp.path().join("data");
    let to = data.to_str().unwrap();

    mirror
        .state
        .lock()
        .unwrap()
        .wrong_sha
        .push("squad/resolve/main/dev-v1.1.json".into());
    let out = fetch(&["squad", "--to", to, "--mirror", &mirror.base], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let got = hex::encode(Sha256::digest(squad_json("en", 1).as_bytes()));
    assert!(err.contains("checksum mismatch"), "{}", text(&out));
    assert!(err.contains("squad/dev-v1.1.json"), "{}", text(&out));
    assert!(
        err.contains(&"0".repeat(64)) && err.contains(&got),
        "{}",
        text(&out)
    );
    assert!(!data.join("squad/dev-v1.1.json").exists());
    assert!(!data.join("squad/dev-v1.1.json.part").exists());

    // Not in the mirror: 404 names the URL and says what to do.
    let out = fetch(&["copa", "--to", to, "--mirror", &mirror.base], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}/datasets/aps/super_glue/resolve/main/COPA/train.jsonl: HTTP 404",
            mirror.base
        )) && err.contains("--mirror"),
        "{}",
        text(&out)
    );

    // A gated repository: 401 names the URL and asks for HF_TOKEN.
    mirror
        .state
        .lock()
        .unwrap()
        .gated
        .push("google/xquad".into());
    let out = fetch(&["xquad", "--to", to, "--mirror", &mirror.base], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/datasets/google/xquad/resolve/main/xquad.en.json: HTTP 401")
            && err.contains("HF_TOKEN"),
        "{}",
        text(&out)
    );

    let out = fetch(&["nosuchtask", "--to", to, "--mirror", &mirror.base], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown task \"nosuchtask\"")
            && err.contains("xnli")
            && err.contains("squad"),
        "{}",
        text(&out)
    );

    let out = fetch(&["udpos", "--to", to, "--mirror", &mirror.base], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("udpos: not fetchable yet"),
        "{}",
        text(&out)
    );

    // Nothing listens: the error suggests a mirror.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = fetch(&["squad", "--to", to, "--mirror", &dead], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach") && err.contains("--mirror"),
        "{}",
        text(&out)
    );
}

#[test]
fn sources_lists_every_catalog_task() {
    let out = support::stilts()
        .args(["data", "sources"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for task in Catalog::builtin().tasks() {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{} ", task.name))),
            "{} missing:\n{stdout}",
            task.name
        );
    }
    assert!(stdout.contains("google/xquad@main, 12 files"), "{stdout}");
}
