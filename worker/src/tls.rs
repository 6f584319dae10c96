//! Connecting to a coordinator securely: `https://` endpoints with the configured CA and client
//! certificate (rustls through tonic's `tls-ring`), and the bearer token on every call. Used by
//! the worker's link and by the `stilts sweep` client.

use tokio_rustls::rustls;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use crate::config::{ClientTls, Token};
use crate::error::WorkerError;

fn read(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, WorkerError> {
    std::fs::read(path).map_err(|source| WorkerError::TlsFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(url: &str, message: impl Into<String>) -> WorkerError {
    WorkerError::TlsSetup {
        url: url.to_string(),
        message: message.into(),
    }
}

/// The rustls client config of `tls`: trust its CA, present its certificate when it has one.
pub fn client_config(tls: &ClientTls, url: &str) -> Result<ClientTlsConfig, WorkerError> {
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(
        "CA certificate (--tls-ca)",
        &tls.ca,
    )?));
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let cert = read("client certificate (--tls-cert)", cert)?;
            let key = read("client key (--tls-key)", key)?;
            config = config.identity(Identity::from_pem(cert, key));
        }
        (None, None) => {}
        _ => return Err(invalid(url, "--tls-cert and --tls-key go together")),
    }
    Ok(config)
}

/// An endpoint for `url`: `https://` needs `tls` (its CA at least), `http://` must not have it.
/// Connects lazily; nothing is dialled here.
pub fn endpoint(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint, WorkerError> {
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|source| {
        WorkerError::InvalidCoordinator {
            url: url.to_string(),
            source,
        }
    })?;
    let https = endpoint.uri().scheme_str() == Some("https");
    match (https, tls) {
        (true, Some(tls)) => endpoint
            .tls_config(client_config(tls, url)?)
            .map_err(|source| WorkerError::InvalidCoordinator {
                url: url.to_string(),
                source,
            }),
        (true, None) => Err(invalid(
            url,
            "an https:// coordinator needs --tls-ca (the CA that signed its certificate)",
        )),
        (false, Some(_)) => Err(invalid(
            url,
            "TLS options are set but the URL is not https://: write https://HOST:PORT",
        )),
        (false, None) => Ok(endpoint),
    }
}

/// The status message followed by the messages of its sources, e.g. "transport error: …:
/// received fatal alert: UnknownCA": what tonic's message alone leaves out.
pub fn describe(status: &Status) -> String {
    let mut text = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// TLS alerts a server sends when it does not accept the client's certificate.
const CERTIFICATE_ALERTS: [rustls::AlertDescription; 8] = {
    use rustls::AlertDescription as A;
    [
        A::BadCertificate,
        A::UnknownCA,
        A::CertificateRequired,
        A::CertificateUnknown,
        A::CertificateExpired,
        A::CertificateRevoked,
        A::UnsupportedCertificate,
        A::AccessDenied,
    ]
};

fn untrusted_server(why: impl std::fmt::Display) -> String {
    format!(
        "the coordinator's certificate is not trusted ({why}): check --tls-ca and the host name \
         in the URL"
    )
}

fn refused_client(alert: impl std::fmt::Display) -> String {
    format!(
        "the coordinator refused this worker's client certificate ({alert}): --tls-cert must be \
         signed by the CA the coordinator trusts (its --tls-client-ca)"
    )
}

/// Why the TLS layer refused the connection over a certificate (ours or the coordinator's), or
/// `None` for any other failure. Retrying cannot fix such a refusal.
///
/// The rustls error itself is looked for first; h2 passes I/O errors on as text only, so the
/// messages rustls writes for alerts and rejected certificates are recognised too.
pub fn certificate_refusal(status: &Status) -> Option<String> {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        match tls {
            Some(rustls::Error::InvalidCertificate(why)) => {
                return Some(untrusted_server(format!("{why:?}")));
            }
            Some(rustls::Error::AlertReceived(alert)) if CERTIFICATE_ALERTS.contains(alert) => {
                return Some(refused_client(format!("{alert:?}")));
            }
            Some(_) => return None,
            None => {}
        }
        let text = e.to_string();
        if let Some(alert) = text.strip_prefix("received fatal alert: ")
            && CERTIFICATE_ALERTS.iter().any(|a| format!("{a:?}") == alert)
        {
            return Some(refused_client(alert));
        }
        if let Some(why) = text.strip_prefix("invalid peer certificate: ") {
            return Some(untrusted_server(why));
        }
        source = e.source();
    }
    None
}

/// Adds `authorization: Bearer TOKEN` to every call; does nothing without a token.
#[derive(Clone, Default)]
pub struct BearerAuth(Option<MetadataValue<Ascii>>);

impl BearerAuth {
    /// Fails when the token cannot be sent as a header (control characters, non-ASCII).
    pub fn new(token: Option<&Token>) -> Result<Self, WorkerError> {
        token
            .map(|t| {
                format!("Bearer {}", t.0.trim())
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| WorkerError::InvalidToken)
            })
            .transpose()
            .map(Self)
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            req.metadata_mut().insert("authorization", value.clone());
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_tls_options_must_agree() {
        assert!(endpoint("http://c:7700", None).is_ok());
        let e = endpoint("https://c:7700", None).unwrap_err().to_string();
        assert!(e.contains("--tls-ca"), "{e}");
        let tls = ClientTls {
            ca: "/nonexistent/ca.pem".into(),
            cert: None,
            key: None,
        };
        let e = endpoint("http://c:7700", Some(&tls))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not https://"), "{e}");
        let e = endpoint("https://c:7700", Some(&tls))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn the_token_goes_into_the_authorization_header() {
        let mut auth = BearerAuth::new(Some(&Token("abc".into()))).unwrap();
        let req = auth.call(Request::new(())).unwrap();
        assert_eq!(req.metadata().get("authorization").unwrap(), "Bearer abc");
        assert!(BearerAuth::new(Some(&Token("a\nb".into()))).is_err());
        let req = BearerAuth::default().call(Request::new(())).unwrap();
        assert!(req.metadata().get("authorization").is_none());
    }
}
