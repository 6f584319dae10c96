//! `stilts health` of the real binary against a real `stilts coordinator` process (what the
//! container image's HEALTHCHECK and the chart's `exec` probes run).

mod support;

use std::time::Duration;

use support::{Proc, free_port, stilts, temp_dir, wait_until};

fn health(url: &str, service: &str) -> (Option<i32>, String) {
    let out = stilts()
        .args([
            "health",
            "--coordinator",
            url,
            "--service",
            service,
            "--timeout",
            "3",
        ])
        .output()
        .expect("run stilts health");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn health_command_reports_the_coordinators_status() {
    let dir = temp_dir();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");

    // Nothing listening yet: unhealthy.
    let (code, text) = health(&url, "");
    assert_eq!(code, Some(1), "{text}");

    let _coordinator = Proc::spawn(stilts().args([
        "coordinator",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--state-dir",
        dir.path().to_str().unwrap(),
        "--http",
        "off",
    ]));
    let text = wait_until("the coordinator to serve", Duration::from_secs(30), || {
        let (code, text) = health(&url, "");
        (code == Some(0)).then_some(text)
    });
    assert!(text.contains("SERVING"), "{text}");
    let (code, text) = health(&url, "liveness");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("liveness: SERVING"), "{text}");
    let (code, text) = health(&url, "stilts.v1.SweepService");
    assert_eq!(code, Some(0), "{text}");
    // A service the coordinator does not have: unhealthy, with the reason.
    let (code, text) = health(&url, "no.such.Service");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no.such.Service"), "{text}");
}
