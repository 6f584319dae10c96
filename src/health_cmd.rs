//! `stilts health`: one `grpc.health.v1.Health/Check` call to one coordinator process (the
//! container image's HEALTHCHECK and the Helm chart's `exec` probes use it).

use anyhow::{Context, Result};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::cli::HealthArgs;
use crate::security;

/// Prints the status; exit code 0 when SERVING, 1 otherwise (NOT_SERVING, unknown service,
/// unreachable within `--timeout`).
pub async fn run(args: &HealthArgs) -> Result<u8> {
    let security = security::client(&args.security)?;
    let endpoint = stilts_worker::tls::endpoint(&args.coordinator, security.tls.as_ref())?;
    let name = if args.service.is_empty() {
        "\"\" (the API)".to_owned()
    } else {
        args.service.clone()
    };
    let check = async {
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot reach {}", args.coordinator))?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await
            .with_context(|| format!("health check of {name} at {}", args.coordinator))?;
        anyhow::Ok(reply.into_inner().status())
    };
    let status = match tokio::time::timeout(args.timeout, check).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            eprintln!("{e:#}");
            return Ok(1);
        }
        Err(_) => {
            eprintln!(
                "{}: no answer within {}",
                args.coordinator,
                stilts_common::duration::format(args.timeout)
            );
            return Ok(1);
        }
    };
    println!("{name}: {}", status.as_str_name());
    Ok(u8::from(status != ServingStatus::Serving))
}
