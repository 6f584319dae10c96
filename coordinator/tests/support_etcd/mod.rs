//! A real single-member etcd server for tests: free loopback ports, a temporary data directory,
//! readiness by polling `/health` (never a fixed sleep), SIGKILL on drop.
//!
//! When `etcd` is not on PATH, [`EtcdServer::start`] prints
//! `SKIPPED <test name>: etcd not installed (apt-get install etcd-server)` to stderr and returns
//! `None` (the test returns and passes), unless `STILTS_REQUIRE_ETCD=1` (CI): then the test fails.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

const READY_DEADLINE: Duration = Duration::from_secs(30);

pub struct EtcdServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP `/health` endpoint (also when clients must use TLS).
    metrics_port: u16,
    tls: Option<TlsFiles>,
}

/// PEM files of a throw-away CA, a server certificate for 127.0.0.1 and a client certificate.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// Generates them with the `openssl` CLI in `dir`; `None` (with a skip line) without it.
    pub fn generate(dir: &Path) -> Option<Self> {
        let run = |args: &[&str]| {
            Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !run(&["version"]) {
            eprintln!("SKIPPED {}: openssl not installed", current_test());
            return None;
        }
        let ok = run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=stilts-test-ca",
        ]);
        assert!(ok, "openssl: CA");
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let ext = format!("{name}.ext");
            std::fs::write(
                dir.join(&ext),
                format!("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n"),
            )
            .expect("write openssl extensions");
            let (key, csr, pem) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            let ok = run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ]) && run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ]);
            assert!(ok, "openssl: {name} certificate");
        }
        Some(Self {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        })
    }
}

/// `etcd` from PATH (or `$STILTS_ETCD_BIN`), if any.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("STILTS_ETCD_BIN") {
        return Some(PathBuf::from(bin));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
}

/// The running test's name (libtest names each test's thread after it).
fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned()
}

/// Called when etcd is not installed: with `STILTS_REQUIRE_ETCD=1` the test fails, otherwise it
/// prints the skip line (the caller then returns, and the test passes).
pub fn etcd_missing() {
    let test = current_test();
    assert!(
        std::env::var("STILTS_REQUIRE_ETCD").as_deref() != Ok("1"),
        "{test}: etcd not installed (apt-get install etcd-server, or set STILTS_ETCD_BIN) and \
         STILTS_REQUIRE_ETCD=1"
    );
    eprintln!("SKIPPED {test}: etcd not installed (apt-get install etcd-server)");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

impl EtcdServer {
    /// Starts a fresh server, or prints the skip line and returns `None` without etcd (fails
    /// instead with `STILTS_REQUIRE_ETCD=1`; see [`etcd_missing`]).
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// A server whose clients must use TLS with a client certificate (`--client-cert-auth`).
    pub fn start_tls() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Self> {
        let Some(bin) = etcd_binary() else {
            etcd_missing();
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir for etcd");
        let tls = match tls {
            true => Some(TlsFiles::generate(dir.path())?),
            false => None,
        };
        let mut server = Self {
            child: None,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            metrics_port: free_port(),
            tls,
        };
        server.spawn(&bin);
        Some(server)
    }

    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// A server shared by every test of this binary that runs while another holds it; it stops
    /// when the last holder drops it.
    pub fn shared() -> Option<Arc<Self>> {
        static SHARED: Mutex<Weak<EtcdServer>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = slot.upgrade() {
            return Some(server);
        }
        let server = Arc::new(Self::start()?);
        *slot = Arc::downgrade(&server);
        Some(server)
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn spawn(&mut self, bin: &Path) {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("etcd log file");
        let metrics = format!("http://127.0.0.1:{}", self.metrics_port);
        let mut cmd = Command::new(bin);
        if let Some(tls) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&tls.server_cert)
                .arg("--key-file")
                .arg(&tls.server_key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let child = cmd
            .args(["--name", "n1", "--data-dir"])
            .arg(self.data_dir())
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("n1={peer}")])
            .args(["--listen-metrics-urls", &metrics])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
        self.wait_healthy();
    }

    /// Polls `GET /health` until it answers `"health":"true"`.
    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + READY_DEADLINE;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.metrics_port));
        let mut delay = Duration::from_millis(10);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "etcd exited with {status} while starting:\n{}",
                    self.log_tail()
                );
            }
            if health(addr) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy after {READY_DEADLINE:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(200));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        log.get(start..).unwrap_or(&log).to_owned()
    }

    /// `kill -9` and reap; the data directory stays.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same data directory and ports.
    pub fn restart(&mut self) {
        self.kill9();
        let bin = etcd_binary().expect("etcd binary");
        self.spawn(&bin);
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn health(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

/// A key prefix no other test of this process (or an earlier run on the same server) uses.
pub fn unique_prefix(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("/stilts-test-{tag}-{}-{nanos}-{n}/", std::process::id())
}

/// The real etcd store under a key prefix of its own on the server shared by the tests running
/// at the same time; every open (a restart too) connects to the same server and prefix, so it
/// sees the same durable state. Needs `mod store_factory;` next to `mod support_etcd;`.
pub struct EtcdFactory {
    server: Arc<EtcdServer>,
    prefix: String,
}

impl EtcdFactory {
    /// A fresh prefix (named after `tag`) on the shared server, or `None` after the skip line
    /// when etcd is not installed (see [`EtcdServer::start`]).
    pub fn shared(tag: &str) -> Option<Self> {
        Some(Self {
            server: EtcdServer::shared()?,
            prefix: unique_prefix(tag),
        })
    }
}

impl crate::store_factory::StoreFactory for EtcdFactory {
    type Store = stilts_coordinator::store::etcd::EtcdStore;

    async fn open(&self) -> Self::Store {
        etcd_store(&self.server, &self.prefix).await
    }
}

/// The real etcd store under `prefix` on `server`, connecting at once.
pub async fn etcd_store(
    server: &EtcdServer,
    prefix: &str,
) -> stilts_coordinator::store::etcd::EtcdStore {
    stilts_coordinator::store::etcd::EtcdStore::connect(
        stilts_coordinator::store::etcd::EtcdConfig {
            prefix: prefix.to_owned(),
            startup_wait: std::time::Duration::ZERO,
            ..stilts_coordinator::store::etcd::EtcdConfig::new([server.endpoint()])
        },
    )
    .await
    .expect("connect to the test etcd")
}

/// One coordinator replica (leader election on `prefix`) on a loopback port.
pub struct Replica {
    pub url: String,
    pub stop: tokio_util::sync::CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts a replica: 2 s election TTL, leader hint polled every 100 ms.
pub async fn replica(server: &EtcdServer, prefix: &str) -> Replica {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let cluster = stilts_coordinator::ClusterConfig {
        election_ttl: Duration::from_secs(2),
        hint_period: Duration::from_millis(100),
        ..stilts_coordinator::ClusterConfig::new(url.clone())
    };
    let store = etcd_store(server, prefix).await;
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            stilts_coordinator::run_replica(
                stilts_coordinator::CoordinatorConfig::default(),
                cluster,
                listener,
                store,
                Arc::new(stilts_common::clock::SystemClock),
                stop,
            )
            .await
            .unwrap();
        }
    });
    Replica { url, stop, task }
}
