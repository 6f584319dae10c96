//! TLS, mutual TLS and the client token over real loopback: certificates are made here with
//! rcgen (a CA, the coordinator's certificate for 127.0.0.1/localhost, a worker certificate it
//! signed, and a worker certificate from another CA); the coordinator is the real `run`, the
//! worker the real agent with the command executor.
//!
//! Each test runs on a current-thread runtime with a log capture as its default subscriber, so
//! the coordinator's log lines of that test can be asserted on.

mod store_factory;
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use stilts_common::clock::SystemClock;
use stilts_coordinator::{AuthConfig, CoordinatorConfig, ServerTls};
use stilts_proto::v1 as pb;
use stilts_proto::v1::sweep_service_client::SweepServiceClient;
use stilts_worker::tls::BearerAuth;
use stilts_worker::{ClientTls, CommandExecutor, Token, WorkerConfig, WorkerError};
use support::MemStore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

const TOKEN: &str = "s3cret-token-for-tests";

/// PEM files of one test's PKI, in a temporary directory.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    worker: (PathBuf, PathBuf),
    rogue: (PathBuf, PathBuf),
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn leaf(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write_pair(dir: &Path, name: &str, (cert, key): (String, String)) -> (PathBuf, PathBuf) {
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    (c, k)
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, issuer) = ca("stilts test CA");
    let (_, rogue_issuer) = ca("some other CA");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let server = leaf(
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    );
    let worker = leaf(&["worker-1"], ExtendedKeyUsagePurpose::ClientAuth, &issuer);
    let rogue = leaf(
        &["rogue"],
        ExtendedKeyUsagePurpose::ClientAuth,
        &rogue_issuer,
    );
    Pki {
        server: write_pair(dir.path(), "server", server),
        worker: write_pair(dir.path(), "worker", worker),
        rogue: write_pair(dir.path(), "rogue", rogue),
        ca,
        _dir: dir,
    }
}

/// Log lines written while the guard lives (this thread only).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Coordinator {
    url: String,
    stop: CancellationToken,
    task: JoinHandle<Result<(), stilts_coordinator::CoordinatorError>>,
}

impl Coordinator {
    /// The coordinator with TLS (`pki`'s server certificate), mutual TLS for workers and the
    /// client token.
    async fn start(pki: &Pki) -> Self {
        let cfg = CoordinatorConfig {
            reaper_period: Duration::from_millis(20),
            tls: Some(ServerTls {
                cert: pki.server.0.clone(),
                key: pki.server.1.clone(),
                client_ca: Some(pki.ca.clone()),
            }),
            auth: AuthConfig {
                client_token: Some(TOKEN.to_string()),
                ..AuthConfig::default()
            },
            ..CoordinatorConfig::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(stilts_coordinator::run(
            cfg,
            listener,
            MemStore::default(),
            Arc::new(SystemClock),
            stop.clone(),
        ));
        Self { url, stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("coordinator stops")
            .unwrap()
            .unwrap();
    }
}

type Client = SweepServiceClient<InterceptedService<Channel, BearerAuth>>;

fn client(url: &str, pki: &Pki, token: Option<&str>) -> Client {
    let tls = ClientTls {
        ca: pki.ca.clone(),
        cert: None,
        key: None,
    };
    let channel = stilts_worker::tls::endpoint(url, Some(&tls))
        .unwrap()
        .connect_lazy();
    let token = token.map(|t| Token(t.to_string()));
    SweepServiceClient::with_interceptor(channel, BearerAuth::new(token.as_ref()).unwrap())
}

fn grid(name: &str) -> String {
    format!(
        r#"[sweep]
name = "{name}"
seeds = [1]

[models]
tiny = "models/tiny"

[grid]
intermediate = ["none"]
target = ["xnli"]
languages = ["de"]

[executor]
kind = "command"
intermediate = "true"
target = "mkdir -p {{output_dir}} && echo '{{{{}}}}' > {{metrics_file}}"
evaluate = "echo '{{{{\"de\": {{{{\"accuracy\": 70.5}}}}}}}}' > {{metrics_file}}"
"#
    )
}

fn worker_config(url: &str, artifacts: &Path, tls: ClientTls) -> WorkerConfig {
    let mut cfg = WorkerConfig::new(vec![url.to_string()], artifacts);
    cfg.name = "tls-worker".into();
    cfg.acquire_wait = Duration::from_millis(200);
    cfg.rpc_timeout = Duration::from_secs(5);
    cfg.shutdown_grace = Duration::from_secs(5);
    cfg.tls = Some(tls);
    cfg
}

fn run_worker(cfg: WorkerConfig) -> (CancellationToken, JoinHandle<Result<(), WorkerError>>) {
    let stop = CancellationToken::new();
    let executor = Arc::new(CommandExecutor::new());
    let task = tokio::spawn(stilts_worker::run(cfg, executor, stop.clone()));
    (stop, task)
}

#[tokio::test]
async fn a_worker_with_a_valid_certificate_registers_and_runs_the_sweep() {
    let (logs, _guard) = Logs::capture();
    let pki = pki();
    let coordinator = Coordinator::start(&pki).await;
    let mut c = client(&coordinator.url, &pki, Some(TOKEN));
    let submitted = c
        .submit_sweep(pb::SubmitSweepRequest {
            file_name: "grid.toml".into(),
            grid_toml: grid("tls"),
            ..Default::default()
        })
        .await
        .expect("submit with the token")
        .into_inner();
    assert!(submitted.jobs >= 2, "{submitted:?}");

    let artifacts = tempfile::tempdir().unwrap();
    let tls = ClientTls {
        ca: pki.ca.clone(),
        cert: Some(pki.worker.0.clone()),
        key: Some(pki.worker.1.clone()),
    };
    let (stop, worker) = run_worker(worker_config(&coordinator.url, artifacts.path(), tls));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = c
            .get_sweep(pb::GetSweepRequest {
                sweep: "tls".into(),
            })
            .await
            .unwrap()
            .into_inner();
        if status.finished {
            assert!(status.failed.is_empty(), "{status:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sweep did not finish: {status:?}\n{}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let results = c
        .get_results(pb::GetResultsRequest {
            sweep: "tls".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(results.rows.len(), 1, "{results:?}");
    stop.cancel();
    worker.await.unwrap().expect("worker stops cleanly");
    coordinator.stop().await;
    let text = logs.text();
    assert!(text.contains("worker registered"), "{text}");
    assert!(!text.contains("refused"), "{text}");
}

#[tokio::test]
async fn a_worker_without_a_certificate_is_refused() {
    let (logs, _guard) = Logs::capture();
    let pki = pki();
    let coordinator = Coordinator::start(&pki).await;
    let artifacts = tempfile::tempdir().unwrap();
    let tls = ClientTls {
        ca: pki.ca.clone(),
        cert: None,
        key: None,
    };
    let (_stop, worker) = run_worker(worker_config(&coordinator.url, artifacts.path(), tls));
    let err = tokio::time::timeout(Duration::from_secs(20), worker)
        .await
        .unwrap_or_else(|_| panic!("the worker gives up at once\n{}", logs.text()))
        .unwrap()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, WorkerError::RegistrationRefused { .. }),
        "{text}"
    );
    assert!(text.contains("requires a client certificate"), "{text}");
    assert!(text.contains("--tls-cert and --tls-key"), "{text}");
    coordinator.stop().await;
    let log = logs.text();
    assert!(log.contains("call refused"), "{log}");
    assert!(log.contains("no client certificate"), "{log}");
}

#[tokio::test]
async fn a_worker_with_a_certificate_from_another_ca_is_refused() {
    let (logs, _guard) = Logs::capture();
    let pki = pki();
    let coordinator = Coordinator::start(&pki).await;
    let artifacts = tempfile::tempdir().unwrap();
    let tls = ClientTls {
        ca: pki.ca.clone(),
        cert: Some(pki.rogue.0.clone()),
        key: Some(pki.rogue.1.clone()),
    };
    let (_stop, worker) = run_worker(worker_config(&coordinator.url, artifacts.path(), tls));
    let err = tokio::time::timeout(Duration::from_secs(20), worker)
        .await
        .unwrap_or_else(|_| panic!("the worker gives up at once\n{}", logs.text()))
        .unwrap()
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, WorkerError::TlsRefused { .. }), "{text}");
    assert!(text.contains("certificate"), "{text}");
    coordinator.stop().await;
    let log = logs.text();
    assert!(log.contains("TLS handshake refused"), "{log}");
    assert!(log.contains("not signed by --tls-client-ca"), "{log}");
    assert!(!log.contains("worker registered"), "{log}");
}

#[tokio::test]
async fn the_sweep_api_needs_the_token() {
    let (logs, _guard) = Logs::capture();
    let pki = pki();
    let coordinator = Coordinator::start(&pki).await;
    let request = || pb::GetSweepRequest {
        sweep: "nope".into(),
    };

    let missing = client(&coordinator.url, &pki, None)
        .get_sweep(request())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated, "{missing:?}");
    assert!(
        missing
            .message()
            .contains("pass --token or set STILTS_TOKEN"),
        "{missing:?}"
    );

    let wrong = client(&coordinator.url, &pki, Some("guess"))
        .get_sweep(request())
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    assert!(
        wrong.message().contains("invalid bearer token"),
        "{wrong:?}"
    );

    // With the token the call goes through (and finds no such sweep).
    let right = client(&coordinator.url, &pki, Some(TOKEN))
        .get_sweep(request())
        .await
        .unwrap_err();
    assert_eq!(right.code(), Code::NotFound, "{right:?}");
    coordinator.stop().await;
    let log = logs.text();
    assert!(log.contains("reason=\"no token\""), "{log}");
    assert!(log.contains("reason=\"wrong token\""), "{log}");
}
