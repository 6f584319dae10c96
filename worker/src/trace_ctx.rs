//! The job attempt's trace, as the coordinator hands it over in `JobAssignment.trace_context`
//! (W3C `traceparent`/`tracestate`, injected at assignment).
//!
//! The job thread runs the executor inside an `execute` span that is a child of the attempt, so a
//! `tracing::info_span!` an executor opens (data loading, training, evaluation) lands in the same
//! trace with no extra work. [`child_span`] opens a span of the attempt from anywhere else.
//! Without an OpenTelemetry layer (tracing off) every function here is a cheap no-op.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::Extractor;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct MapExtractor<'a>(&'a HashMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The attempt's context from an assignment's `trace_context` map, through the global propagator
/// (an empty context when the map is empty or no propagator is installed).
pub fn extract(trace_context: &HashMap<String, String>) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&MapExtractor(trace_context)))
}

/// Makes a freshly created `span` (not yet entered) a child of `parent` and returns it.
pub fn adopt(span: Span, parent: &Context) -> Span {
    // Fails only when no OpenTelemetry layer is installed: nothing to link then.
    let _ = span.set_parent(parent.clone());
    span
}

/// Opens `span` as a child of the attempt an assignment's `trace_context` names:
/// `child_span(info_span!(parent: None, "evaluation"), &assignment.trace_context)`.
pub fn child_span(span: Span, trace_context: &HashMap<String, String>) -> Span {
    adopt(span, &extract(trace_context))
}
