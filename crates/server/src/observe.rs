//! Observability: Prometheus metrics per route, request tracing with request ids, and the
//! response for a handler that panicked.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, Response};
use axum::middleware::Next;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, MakeSpan, TraceLayer};

use crate::error::ApiError;

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once; later calls reuse it.
pub fn install_metrics_recorder() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("bursar_ledger_batch_seconds".into()),
                    &[
                        0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
                    ],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("bursar_ledger_batch_size".into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (tests embedding the server twice): render an empty one.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

pub fn render_metrics() -> String {
    install_metrics_recorder().render()
}

/// Counts every request and its latency, labelled by route template (never by raw path, which
/// would let clients create unbounded label values).
pub async fn record_request(request: Request, next: Next) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

#[derive(Clone)]
pub struct SpanWithRequestId;

impl<B> MakeSpan<B> for SpanWithRequestId {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> tracing::Span {
        let request_id = request
            .headers()
            .get(HeaderName::from_static("x-request-id"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // The path only, never the query string or headers: those may carry secrets.
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
    }
}

/// One log line per request at `info` (method, path, request id, status, latency); never
/// headers or bodies.
pub fn trace_layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    SpanWithRequestId,
    DefaultOnRequest,
    DefaultOnResponse,
> {
    TraceLayer::new_for_http()
        .make_span_with(SpanWithRequestId)
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
}

pub fn panic_response(
    _panic: Box<dyn std::any::Any + Send + 'static>,
) -> Response<axum::body::Body> {
    tracing::error!("a request handler panicked");
    ApiError::internal().into_response()
}
