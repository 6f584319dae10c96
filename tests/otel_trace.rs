//! OpenTelemetry end to end: `stilts run` (coordinator and worker in one process) exports over
//! OTLP/gRPC to a collector served here on loopback. Each job attempt is one trace: the
//! coordinator's `job_attempt` span and the worker's `execute` and `report` spans share its trace
//! id. Without an endpoint nothing is exported, and an unreachable collector fails no run.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use support::*;

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attrs: HashMap<String, String>,
}

fn text(attrs: &[KeyValue]) -> HashMap<String, String> {
    attrs
        .iter()
        .filter_map(|kv| {
            let v = match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => s.clone(),
                Value::IntValue(i) => i.to_string(),
                other => format!("{other:?}"),
            };
            Some((kv.key.clone(), v))
        })
        .collect()
}

fn spans(collector: &Collector) -> Vec<Span> {
    let mut out = Vec::new();
    for req in collector.0.lock().unwrap().iter() {
        for rs in &req.resource_spans {
            let resource = rs
                .resource
                .as_ref()
                .map(|r| text(&r.attributes))
                .unwrap_or_default();
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                out.push(Span {
                    service: service.clone(),
                    name: s.name.clone(),
                    trace_id: s.trace_id.clone(),
                    span_id: s.span_id.clone(),
                    parent_span_id: s.parent_span_id.clone(),
                    attrs: text(&s.attributes),
                });
            }
        }
    }
    out
}

/// A sweep of two jobs: one target training job and its evaluation.
fn tiny_grid() -> String {
    let metric = r#"printf '{{\"l00\": {{\"accuracy\": 50}}}}' > {metrics_file}"#;
    format!(
        r#"[sweep]
name = "otel"
seeds = [1]

[models]
alpha = "models/alpha"

[grid]
intermediate = ["none"]
target = ["ta"]
languages = ["l00"]

[executor]
kind = "command"
intermediate = "echo ckpt > {{output_dir}}/ckpt"
target = "echo ckpt > {{output_dir}}/ckpt"
evaluate = "{metric}"
"#
    )
}

fn run(dir: &std::path::Path, state: &str, endpoint: Option<&str>) -> std::process::Output {
    let grid = write(dir, "grid.toml", &tiny_grid());
    let mut c = stilts();
    c.args(["run", "--no-progress", "--slots", "1", "--state-dir"])
        .arg(dir.join(state))
        .arg(&grid)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env("OTEL_SERVICE_NAME", "stilts-otel-test")
        .stdin(std::process::Stdio::null());
    if let Some(endpoint) = endpoint {
        c.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    }
    c.output().unwrap()
}

#[test]
fn job_spans_from_coordinator_and_worker_share_one_trace() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let collector = Collector::default();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve(addr);
    rt.spawn(server);
    let dir = temp_dir();

    // No endpoint: nothing exported, the run is unaffected.
    let out = run(dir.path(), "off", None);
    output_ok(&out);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        collector.0.lock().unwrap().is_empty(),
        "nothing exported without OTEL_EXPORTER_OTLP_ENDPOINT"
    );

    // An endpoint nobody listens on: the spans are lost, the run is not.
    let out = run(
        dir.path(),
        "down",
        Some(&format!("http://127.0.0.1:{}", free_port())),
    );
    output_ok(&out);

    // With the endpoint: every span is flushed before the process exits.
    let out = run(dir.path(), "on", Some(&format!("http://127.0.0.1:{port}")));
    output_ok(&out);
    let all = spans(&collector);
    assert!(
        all.iter().all(|s| s.service == "stilts-otel-test"),
        "OTEL_SERVICE_NAME names the service: {all:#?}"
    );
    let attempts: Vec<&Span> = all.iter().filter(|s| s.name == "job_attempt").collect();
    assert_eq!(attempts.len(), 2, "one attempt per job: {all:#?}");
    for attempt in attempts {
        let key = &attempt.attrs["job.key"];
        assert_eq!(attempt.attrs["job.attempt"], "1");
        assert!(attempt.attrs.contains_key("job.kind"));
        assert!(attempt.attrs.contains_key("worker"));
        assert!(attempt.parent_span_id.is_empty(), "the attempt is a root");
        let in_trace: Vec<&Span> = all
            .iter()
            .filter(|s| s.trace_id == attempt.trace_id)
            .collect();
        for name in ["queue_wait", "execute", "report"] {
            let child = in_trace
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no {name} span in {key}'s trace: {in_trace:#?}"));
            assert_eq!(child.parent_span_id, attempt.span_id, "{name} is a child");
            if name != "queue_wait" {
                assert_eq!(&child.attrs["job.key"], key);
            }
        }
    }
    let traces: std::collections::HashSet<_> = all
        .iter()
        .filter(|s| s.name == "job_attempt")
        .map(|s| s.trace_id.clone())
        .collect();
    assert_eq!(traces.len(), 2, "one trace per job attempt");
}
