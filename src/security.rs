//! TLS and token flags → the coordinator's and the worker's/client's config.

use anyhow::{Context, Result, bail};
use stilts_coordinator::{AuthConfig, ServerTls};
use stilts_worker::{ClientTls, Token};

use crate::cli::{ClientSecurityArgs, ServerSecurityArgs};

/// TLS and token of a worker or client; none of either for a plain `http://` coordinator.
#[derive(Debug, Clone, Default)]
pub struct ClientSecurity {
    pub tls: Option<ClientTls>,
    pub token: Option<Token>,
}

pub fn client(args: &ClientSecurityArgs) -> Result<ClientSecurity> {
    let tls = match (&args.tls_ca, &args.tls_cert) {
        (Some(ca), _) => Some(ClientTls {
            ca: ca.clone(),
            cert: args.tls_cert.clone(),
            key: args.tls_key.clone(),
        }),
        (None, Some(_)) => {
            bail!("--tls-cert needs --tls-ca (the CA that signed the coordinator's certificate)")
        }
        (None, None) => None,
    };
    let token = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| Token(t.to_string()));
    Ok(ClientSecurity { tls, token })
}

/// The coordinator's TLS and auth config; the token comes from --client-token-file (its first
/// line) or STILTS_TOKEN.
pub fn server(args: &ServerSecurityArgs) -> Result<(Option<ServerTls>, AuthConfig)> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ServerTls {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        }),
        _ => None,
    };
    let token = match (&args.client_token_file, &args.client_token) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the client token file {}", path.display()))?;
            let token = text.lines().next().unwrap_or_default().trim().to_string();
            if token.is_empty() {
                bail!(
                    "the client token file {} is empty (the token is its first line)",
                    path.display()
                );
            }
            Some(token)
        }
        (None, Some(token)) if !token.trim().is_empty() => Some(token.trim().to_string()),
        _ => None,
    };
    if args.workers_need_token && token.is_none() {
        bail!("--workers-need-token needs a token: --client-token-file FILE or STILTS_TOKEN");
    }
    let auth = AuthConfig {
        client_token: token,
        workers_need_token: args.workers_need_token,
    };
    Ok((tls, auth))
}
