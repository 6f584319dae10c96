//! TLS and token flags → the coordinator's and the worker's/client's config.

use std::path::PathBuf;

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
    let token = token_from(
        &args.client_token_file,
        &args.client_token,
        "client token",
        "--client-token or STILTS_TOKEN",
    )?;
    let http_token = token_from(
        &args.http_token_file,
        &args.http_token,
        "HTTP token",
        "--http-token or STILTS_HTTP_TOKEN",
    )?;
    let auth = AuthConfig {
        workers_need_token: token.is_some() && !args.workers_without_token,
        client_token: token,
        http_token,
        http_open: args.http_without_token,
    };
    Ok((tls, auth))
}

/// A token from its file (first line) or its value; an empty or blank one is an error naming
/// where it came from.
fn token_from(
    file: &Option<PathBuf>,
    value: &Option<String>,
    what: &str,
    flags: &str,
) -> Result<Option<String>> {
    match (file, value) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
            let token = text.lines().next().unwrap_or_default().trim().to_string();
            if token.is_empty() {
                bail!(
                    "the {what} file {} is empty (the token is its first line)",
                    path.display()
                );
            }
            Ok(Some(token))
        }
        (None, Some(token)) if !token.trim().is_empty() => Ok(Some(token.trim().to_string())),
        (None, Some(token)) if !token.is_empty() => {
            bail!("the {what} ({flags}) is only whitespace: set a real token, or unset it")
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        server: ServerSecurityArgs,
    }

    fn auth(argv: &[&str]) -> Result<AuthConfig> {
        let args = Args::try_parse_from(std::iter::once("stilts").chain(argv.iter().copied()))?;
        server(&args.server).map(|(_, auth)| auth)
    }

    #[test]
    fn a_token_protects_the_worker_api_too_unless_opted_out() {
        let a = auth(&["--client-token", "s3cret"]).unwrap();
        assert_eq!(a.client_token.as_deref(), Some("s3cret"));
        assert!(
            a.workers_need_token,
            "workers must need the token by default"
        );
        let a = auth(&["--client-token", "s3cret", "--workers-without-token"]).unwrap();
        assert!(!a.workers_need_token);
        let a = auth(&[]).unwrap();
        assert!(a.client_token.is_none() && !a.workers_need_token);
    }

    #[test]
    fn a_whitespace_token_is_refused_not_ignored() {
        let e = auth(&["--client-token", "   "]).unwrap_err().to_string();
        assert!(e.contains("only whitespace"), "{e}");
    }
}
