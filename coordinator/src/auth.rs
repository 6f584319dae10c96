//! Who may call the coordinator: the bearer token of the sweep API and the client certificate of
//! the worker API, checked by a tonic interceptor in front of each service.
//!
//! Tokens are compared as SHA-256 digests in constant time, so neither the token's content nor
//! its length leaks through timing. A refusal is UNAUTHENTICATED with a message that says what to
//! pass, and a warning in the coordinator's log with the peer address.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};
use tracing::warn;

use crate::config::CoordinatorConfig;

/// The hint every token refusal ends with.
const TOKEN_HINT: &str = "pass --token or set STILTS_TOKEN";

/// One service's admission check.
#[derive(Clone)]
pub(crate) struct Guard {
    service: &'static str,
    /// SHA-256 of the token callers must send; `None`: no token needed.
    token: Option<[u8; 32]>,
    /// Callers must present a client certificate the TLS layer verified (mutual TLS).
    need_cert: bool,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Who may read the dashboard's data and `/metrics`: anyone when the coordinator has no token
/// (or `auth.http_open`); else a caller that sends the read-only `auth.http_token` or the client
/// token (`authorization: Bearer …`).
#[derive(Clone, Debug)]
pub(crate) struct HttpGuard {
    tokens: Vec<[u8; 32]>,
}

impl HttpGuard {
    pub(crate) fn new(cfg: &CoordinatorConfig) -> Self {
        let tokens = if cfg.auth.http_open {
            Vec::new()
        } else {
            [&cfg.auth.http_token, &cfg.auth.client_token]
                .into_iter()
                .flatten()
                .map(|t| digest(t))
                .collect()
        };
        Self { tokens }
    }

    /// Whether a request with this `authorization` header value may read.
    pub(crate) fn admits(&self, authorization: Option<&str>) -> bool {
        if self.tokens.is_empty() {
            return true;
        }
        let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        let d = digest(token.trim());
        // Every token is compared, so timing says nothing about which one matched.
        self.tokens
            .iter()
            .fold(false, |ok, t| ok | bool::from(d.ct_eq(t)))
    }
}

impl Guard {
    /// The sweep (client) API: the token, when one is configured.
    pub(crate) fn sweep_api(cfg: &CoordinatorConfig) -> Self {
        Self {
            service: "sweep",
            token: cfg.auth.client_token.as_deref().map(digest),
            need_cert: false,
        }
    }

    /// The worker API: a verified client certificate under mutual TLS, and the token too when
    /// `auth.workers_need_token` is set.
    pub(crate) fn worker_api(cfg: &CoordinatorConfig) -> Self {
        let token = cfg
            .auth
            .client_token
            .as_deref()
            .filter(|_| cfg.auth.workers_need_token)
            .map(digest);
        Self {
            service: "worker",
            token,
            need_cert: cfg.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        }
    }

    fn refuse(&self, req: &Request<()>, why: &'static str, message: String) -> Status {
        let peer = req
            .remote_addr()
            .map_or_else(|| "unknown".to_string(), |a| a.to_string());
        warn!(service = self.service, %peer, reason = why, "call refused: {message}");
        Status::unauthenticated(message)
    }
}

/// The token of an `authorization: Bearer TOKEN` header; `Err` when the header is there but not
/// a bearer token.
fn bearer(req: &Request<()>) -> Option<Result<&str, ()>> {
    let value = req.metadata().get("authorization")?;
    let Ok(text) = value.to_str() else {
        return Some(Err(()));
    };
    let (scheme, token) = text.trim().split_once(' ').unwrap_or((text, ""));
    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
        Some(Ok(token.trim()))
    } else {
        Some(Err(()))
    }
}

impl Interceptor for Guard {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        if self.need_cert && req.peer_certs().is_none_or(|certs| certs.is_empty()) {
            return Err(self.refuse(
                &req,
                "no client certificate",
                "the worker API requires a client certificate signed by the coordinator's \
                 --tls-client-ca (mutual TLS): start the worker with --tls-cert and --tls-key"
                    .to_string(),
            ));
        }
        let Some(expected) = &self.token else {
            return Ok(req);
        };
        match bearer(&req) {
            None => Err(self.refuse(
                &req,
                "no token",
                format!(
                    "missing bearer token: this coordinator requires a token on the {} API; \
                     {TOKEN_HINT}",
                    self.service
                ),
            )),
            Some(Err(())) => Err(self.refuse(
                &req,
                "malformed authorization",
                format!("the authorization header is not `Bearer TOKEN`; {TOKEN_HINT}"),
            )),
            Some(Ok(token)) => {
                if bool::from(digest(token).ct_eq(expected)) {
                    Ok(req)
                } else {
                    Err(self.refuse(
                        &req,
                        "wrong token",
                        format!(
                            "invalid bearer token: it is not the coordinator's token; {TOKEN_HINT} \
                             with the token the coordinator was started with"
                        ),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthConfig;

    fn guard(token: Option<&str>) -> Guard {
        let cfg = CoordinatorConfig {
            auth: AuthConfig {
                client_token: token.map(str::to_string),
                ..AuthConfig::default()
            },
            ..CoordinatorConfig::default()
        };
        Guard::sweep_api(&cfg)
    }

    #[test]
    fn http_needs_a_token_once_one_is_set() {
        let with = |auth: AuthConfig| {
            HttpGuard::new(&CoordinatorConfig {
                auth,
                ..CoordinatorConfig::default()
            })
        };
        let open = with(AuthConfig::default());
        assert!(open.admits(None));
        let both = with(AuthConfig {
            client_token: Some("client".into()),
            http_token: Some("reader".into()),
            ..AuthConfig::default()
        });
        assert!(!both.admits(None));
        assert!(!both.admits(Some("Bearer nope")));
        assert!(
            !both.admits(Some("reader")),
            "the Bearer scheme is required"
        );
        assert!(both.admits(Some("Bearer reader")));
        assert!(both.admits(Some("Bearer client")));
        let opted_out = with(AuthConfig {
            client_token: Some("client".into()),
            http_open: true,
            ..AuthConfig::default()
        });
        assert!(opted_out.admits(None));
    }

    fn call(g: &mut Guard, header: Option<&str>) -> Result<(), Status> {
        let mut req = Request::new(());
        if let Some(h) = header {
            req.metadata_mut()
                .insert("authorization", h.parse().unwrap());
        }
        g.call(req).map(|_| ())
    }

    #[test]
    fn tokens_are_checked() {
        let mut open = guard(None);
        assert!(open.token.is_none() && !open.need_cert);
        assert!(call(&mut open, None).is_ok());

        let mut g = guard(Some("s3cret"));
        assert!(call(&mut g, Some("Bearer s3cret")).is_ok());
        assert!(call(&mut g, Some("bearer  s3cret ")).is_ok());
        let missing = call(&mut g, None).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(
            missing
                .message()
                .contains("pass --token or set STILTS_TOKEN")
        );
        let wrong = call(&mut g, Some("Bearer s3cre")).unwrap_err();
        assert!(wrong.message().starts_with("invalid bearer token"));
        let basic = call(&mut g, Some("Basic s3cret")).unwrap_err();
        assert!(basic.message().contains("not `Bearer TOKEN`"));
    }

    #[test]
    fn workers_need_the_token_only_when_asked() {
        let mut cfg = CoordinatorConfig::default();
        cfg.auth.client_token = Some("t".into());
        assert!(Guard::worker_api(&cfg).token.is_none());
        cfg.auth.workers_need_token = true;
        assert!(Guard::worker_api(&cfg).token.is_some());
    }
}
