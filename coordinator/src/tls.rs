//! Serving the gRPC router on the listener, in plaintext or TLS (rustls with ring).
//!
//! The TLS accept is done here rather than by tonic so that a refused handshake (a worker
//! certificate from another CA, a client that does not trust this certificate) is logged as a
//! warning with the peer address; tonic only logs it at debug level. Handshakes run concurrently,
//! each bounded by [`HANDSHAKE_TIMEOUT`]; finished connections are handed to tonic, which reads
//! the verified client certificate from them (`Request::peer_certs`).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Router;
use tracing::{debug, warn};

use crate::config::ServerTls;
use crate::error::CoordinatorError;

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn tls_error(what: &str, path: &Path, e: impl std::fmt::Display) -> CoordinatorError {
    CoordinatorError::Tls(format!("{what} {}: {e}", path.display()))
}

fn read_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, CoordinatorError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(what, path, e))?;
    if certs.is_empty() {
        return Err(tls_error(what, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// Builds the rustls server config from the PEM files (HTTP/2 only, TLS 1.2 and 1.3). Under
/// mutual TLS a client certificate is verified when presented and may be absent: the worker API
/// refuses calls without one (`auth.rs`), the sweep API relies on the bearer token.
pub fn server_config(tls: &ServerTls) -> Result<Arc<ServerConfig>, CoordinatorError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs("--tls-cert", &tls.cert)?;
    let key =
        PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| tls_error("--tls-key", &tls.key, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| CoordinatorError::Tls(e.to_string()))?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("--tls-client-ca", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| tls_error("--tls-client-ca", ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| tls_error("--tls-client-ca", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| tls_error("--tls-key does not match --tls-cert", &tls.key, e))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` on the accepted connections `incoming` until `stop` fires or `incoming` ends:
/// TLS with `tls`, plaintext without.
pub async fn serve<I>(
    router: Router,
    incoming: I,
    tls: Option<Arc<ServerConfig>>,
    stop: CancellationToken,
) -> Result<(), tonic::transport::Error>
where
    I: Stream<Item = io::Result<TcpStream>> + Send + Unpin + 'static,
{
    let incoming = incoming.map(|conn| {
        if let Ok(stream) = &conn {
            let _ = stream.set_nodelay(true);
        }
        conn
    });
    let Some(tls) = tls else {
        return router
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await;
    };
    let (tx, rx) = mpsc::channel(64);
    let accept = accept_loop(incoming, TlsAcceptor::from(tls), tx, stop.clone());
    let server =
        router.serve_with_incoming_shutdown(ReceiverStream::new(rx), stop.cancelled_owned());
    tokio::pin!(accept, server);
    tokio::select! {
        served = &mut server => served,
        () = &mut accept => server.await,
    }
}

type Accepted = Result<TlsStream<TcpStream>, io::Error>;

/// Runs the handshakes of accepted connections until `stop` fires, `incoming` ends or the server
/// goes away.
async fn accept_loop(
    mut incoming: impl Stream<Item = io::Result<TcpStream>> + Unpin,
    acceptor: TlsAcceptor,
    out: mpsc::Sender<Accepted>,
    stop: CancellationToken,
) {
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = out.closed() => return,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            accepted = incoming.next() => match accepted {
                None => return,
                Some(Ok(tcp)) => {
                    handshakes.spawn(handshake(acceptor.clone(), tcp, out.clone()));
                }
                Some(Err(e)) => {
                    // Out of file descriptors and the like: do not spin.
                    warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn handshake(acceptor: TlsAcceptor, tcp: TcpStream, out: mpsc::Sender<Accepted>) {
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => {
            let client_cert = stream.get_ref().1.peer_certificates().is_some();
            debug!(%peer, client_cert, "TLS connection accepted");
            let _ = out.send(Ok(stream)).await;
        }
        Ok(Err(e)) => warn!(%peer, error = %e, hint = hint(&e), "TLS handshake refused"),
        Err(_) => {
            warn!(%peer, timeout_ms = HANDSHAKE_TIMEOUT.as_millis() as u64, "TLS handshake timed out")
        }
    }
}

/// What a failed handshake most likely means, for the log line.
fn hint(e: &io::Error) -> &'static str {
    let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return "the peer is not speaking TLS or went away (a plaintext http:// client?)";
    };
    match tls {
        rustls::Error::InvalidCertificate(_) => {
            "the peer's client certificate is not signed by --tls-client-ca (or has expired)"
        }
        rustls::Error::AlertReceived(_) => {
            "the peer rejected this server's certificate: give it the CA with --tls-ca"
        }
        rustls::Error::NoCertificatesPresented => "the peer presented no client certificate",
        rustls::Error::InvalidMessage(_) => {
            "the peer is not speaking TLS: a plaintext http:// client? (use https:// and --tls-ca)"
        }
        _ => "TLS protocol error",
    }
}
