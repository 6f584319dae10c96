//! Keeps the client's balanced channel on the etcd members that accept connections.
//!
//! etcd-client spreads requests over every configured endpoint and keeps sending a share of them
//! to a member that is down (etcdv3/etcd-client#39): with one member of three stopped, every
//! third request failed with "tcp connect error", and a leader lost its term over it. With two or
//! more endpoints, [`EndpointWatch`] probes each member's client port every `period` and takes an
//! unreachable one out of the rotation (never the last one, so that errors still surface), then
//! puts it back once it accepts connections again. Between a member's death and the next probe,
//! requests may still fail; callers treat that as a transient store error.

use std::time::Duration;

use etcd_client::Client;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tonic::codegen::http::Uri;
use tracing::{info, warn};

/// The probing task; aborted when the last store handle using it is dropped.
pub(super) struct EndpointWatch {
    task: AbortHandle,
}

impl Drop for EndpointWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EndpointWatch {
    /// Starts probing `endpoints` (as configured) when there are at least two; `tls` tells the
    /// scheme etcd-client gave endpoints written without one.
    pub(super) fn spawn(
        client: Client,
        endpoints: &[String],
        tls: bool,
        period: Duration,
    ) -> Option<Self> {
        if endpoints.len() < 2 {
            return None;
        }
        let members: Vec<Member> = endpoints.iter().map(|e| Member::new(e, tls)).collect();
        let task = tokio::spawn(watch(client, members, period)).abort_handle();
        Some(Self { task })
    }
}

struct Member {
    /// As configured: what `add_endpoint` takes.
    url: String,
    /// As etcd-client keyed it in the balanced channel: what `remove_endpoint` takes.
    keyed: String,
    /// `host:port` to probe.
    addr: String,
    in_rotation: bool,
}

impl Member {
    fn new(url: &str, tls: bool) -> Self {
        let keyed = if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else if tls {
            format!("https://{url}")
        } else {
            format!("http://{url}")
        };
        let addr = keyed
            .parse::<Uri>()
            .ok()
            .and_then(|u| {
                let host = u.host()?.trim_matches(|c| c == '[' || c == ']').to_string();
                Some(match u.port_u16() {
                    Some(p) => format_addr(&host, p),
                    None => format_addr(&host, 2379),
                })
            })
            .unwrap_or_default();
        Self {
            url: url.to_string(),
            keyed,
            addr,
            in_rotation: true,
        }
    }
}

fn format_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn reachable(addr: &str, timeout: Duration) -> bool {
    !addr.is_empty()
        && matches!(
            tokio::time::timeout(timeout, TcpStream::connect(addr)).await,
            Ok(Ok(_))
        )
}

async fn watch(client: Client, mut members: Vec<Member>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let probes = futures::future::join_all(
            members
                .iter()
                .map(|m| reachable(&m.addr, period.max(Duration::from_millis(200)))),
        )
        .await;
        for (i, up) in probes.into_iter().enumerate() {
            let in_rotation = members.iter().filter(|m| m.in_rotation).count();
            let m = &mut members[i];
            if up && !m.in_rotation {
                match client.add_endpoint(&m.url).await {
                    Ok(()) => {
                        m.in_rotation = true;
                        info!(endpoint = %m.url, "etcd member reachable again; back in rotation");
                    }
                    Err(e) => {
                        warn!(endpoint = %m.url, error = %e, "could not re-add an etcd endpoint")
                    }
                }
            } else if !up && m.in_rotation && in_rotation > 1 {
                match client.remove_endpoint(&m.keyed).await {
                    Ok(()) => {
                        m.in_rotation = false;
                        warn!(endpoint = %m.url, "etcd member unreachable; out of rotation until it accepts connections");
                    }
                    Err(e) => {
                        warn!(endpoint = %m.url, error = %e, "could not remove an etcd endpoint")
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_keyed_as_the_client_keys_them() {
        let m = Member::new("127.0.0.1:2379", false);
        assert_eq!(
            (m.keyed.as_str(), m.addr.as_str()),
            ("http://127.0.0.1:2379", "127.0.0.1:2379")
        );
        let m = Member::new("etcd-0.etcd:2379", true);
        assert_eq!(m.keyed, "https://etcd-0.etcd:2379");
        let m = Member::new("http://[::1]:23790", true);
        assert_eq!(
            (m.keyed.as_str(), m.addr.as_str()),
            ("http://[::1]:23790", "[::1]:23790")
        );
        assert_eq!(Member::new("https://etcd", false).addr, "etcd:2379");
    }
}
