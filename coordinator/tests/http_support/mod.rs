//! A coordinator with its HTTP listener for the `http_*` tests: the in-process harness of
//! `support` plus a pre-bound HTTP port, a minimal HTTP/1.1 GET, and a Prometheus text parser.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use stilts_coordinator::{HttpListener, Setup};
use stilts_proto::v1 as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// The test setup with an HTTP listener on a free loopback port, and that port's address.
pub fn config_with_http() -> (Setup, SocketAddr) {
    let listener = HttpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let setup = Setup {
        config: test_config(),
        http_listener: Some(listener),
        catalog: None,
    };
    (setup, addr)
}

/// `GET path`: (status code, content type, body).
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    get_with(addr, path, "").await
}

/// [`get`] with extra header lines (each ending in `\r\n`).
pub async fn get_with(addr: SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, ctype, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}

pub async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, ctype, body) = get(addr, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    assert_eq!(ctype, "application/json");
    serde_json::from_str(&body).unwrap()
}

/// Samples of an OpenMetrics text exposition: `name{labels}` (as written) → value. Checks that
/// every sample's family has a `# TYPE` line first (a counter's samples end in `_total`, a
/// histogram's in `_bucket`, `_sum`, `_count`), and that the text ends with `# EOF`.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end:\n{text}");
    let mut typed = std::collections::HashMap::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').expect("# TYPE name type");
            typed.insert(family.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let name = series.split('{').next().unwrap();
        let suffixes: &[(&str, &[&str])] = &[
            ("counter", &["_total"]),
            ("histogram", &["_bucket", "_sum", "_count"]),
        ];
        let family = suffixes
            .iter()
            .flat_map(|(kind, s)| s.iter().map(move |s| (*kind, *s)))
            .find_map(|(kind, s)| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|t| t == kind))
            })
            .unwrap_or(name);
        assert!(
            typed
                .get(family)
                .is_some_and(|t| t == "gauge" || family != name),
            "no fitting # TYPE before {line}"
        );
        out.insert(series.to_string(), value.parse().expect("a number"));
    }
    out
}

/// The sum of every sample of `name` (with any labels).
pub fn total(m: &BTreeMap<String, f64>, name: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.as_str() == name || k.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v)
        .sum()
}

/// Runs every ready job of the harness with `worker` until none is left.
pub async fn drain<F: StoreFactory>(h: &mut Harness<F>, worker: &str) -> usize {
    let mut n = 0;
    while let Some(a) = h.acquire(worker, 50).await {
        complete_one(h, worker, &a).await;
        n += 1;
    }
    n
}

/// Completes one assignment with metrics fitting its kind.
pub async fn complete_one<F: StoreFactory>(
    h: &mut Harness<F>,
    worker: &str,
    a: &pb::JobAssignment,
) {
    let metrics = match kind_and_parent(a).0.as_str() {
        "evaluate" => scores_for(a),
        _ => String::new(),
    };
    assert_eq!(h.complete(worker, a, &metrics).await.unwrap(), "succeeded");
}

/// Accuracy an evaluate job reports: depends on the language and, off the baseline, on the
/// intermediate task, so the Δ matrix has non-zero entries.
pub fn scores_for(a: &pb::JobAssignment) -> String {
    let spec: serde_json::Value = serde_json::from_str(&a.spec_json).unwrap();
    let intermediate = spec["intermediate"].as_str().unwrap();
    let bonus = if intermediate == "none" {
        0.0
    } else {
        intermediate.len() as f64 - 3.0
    };
    let mut m = serde_json::Map::new();
    for l in spec["languages"].as_array().unwrap() {
        let l = l.as_str().unwrap();
        let base = 60.0 + (l.bytes().map(u32::from).sum::<u32>() % 10) as f64;
        m.insert(
            l.to_string(),
            serde_json::json!({ "accuracy": base + bonus }),
        );
    }
    serde_json::Value::Object(m).to_string()
}
