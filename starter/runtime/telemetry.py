"""Traces and metrics endpoints of the processes, each switched by a setting.

- Traces: the Temporal OpenTelemetry interceptor on every client (a worker built from that
  client traces too), exporting to nothing (default), the console, or OTLP over HTTP.
- Metrics: the Temporal runtime's own Prometheus endpoint, and a small HTTP server for the
  project's series (:class:`starter.runtime.metrics.Metrics`) in the worker.
"""

import functools
import logging
from wsgiref.simple_server import WSGIServer

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from prometheus_client import start_http_server
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings

log = logging.getLogger(__name__)


def tracing_interceptors(settings: Settings) -> list[Interceptor]:
    """The tracing interceptor for ``Client.connect``, or none when tracing is off."""
    provider = tracer_provider(settings)
    if provider is None:
        return []
    return [TracingInterceptor(provider.get_tracer("trading-sessions"))]


def tracer_provider(settings: Settings) -> TracerProvider | None:
    """The process's tracer provider for these settings (built once), or None when off."""
    if settings.otel_exporter == "none":
        return None
    return _provider(settings.otel_exporter, settings.otel_endpoint, settings.otel_service_name)


@functools.cache
def _provider(exporter: str, endpoint: str | None, service_name: str) -> TracerProvider:
    # One provider per process and configuration: its batch thread and exit hook are costly,
    # and clients are connected more than once (the API, every test).
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(BatchSpanProcessor(_span_exporter(exporter, endpoint)))
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)  # for any other instrumentation in the process
    return provider


def _span_exporter(exporter: str, endpoint: str | None) -> SpanExporter:
    if exporter == "console":
        return ConsoleSpanExporter()
    # Imported only when chosen: it pulls in requests and protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # Unset: the exporter's own default (OTEL_EXPORTER_OTLP_* variables, else localhost:4318).
    return OTLPSpanExporter(endpoint=endpoint)


def temporal_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics on the configured address.

    None when the address is empty, or taken: a worker that cannot export metrics still
    runs sessions, so it logs the error and goes on with the default runtime.
    """
    address = settings.worker_metrics_address
    if not address:
        return None
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    except ValueError as err:
        log.error("temporal metrics endpoint %s not started: %s", address, err)
        return None


def serve_metrics(address: str, metrics: Metrics) -> WSGIServer | None:
    """Serve ``metrics`` at ``http://<address>/metrics`` from a daemon thread.

    None when the address is empty or cannot be bound (logged, as for the runtime's).
    """
    if not address:
        return None
    host, _, port = address.rpartition(":")
    try:
        server, _thread = start_http_server(
            int(port), host.strip("[]") or "0.0.0.0", metrics.registry
        )
    except (OSError, ValueError) as err:
        log.error("metrics endpoint %s not started: %s", address, err)
        return None
    return server
