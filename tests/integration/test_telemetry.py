"""Traces and metrics endpoints, switched on by settings, against a real dev server."""

import asyncio
import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError

from domain.session_messages import SessionWorkflowInput
from starter.dev.devserver import free_port
from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.runtime.telemetry import serve_metrics, temporal_runtime, tracer_provider
from starter.runtime.temporal_client import connect
from tests.fixtures.factories import session_values, spec_from
from tests.integration.polling import eventually
from worker import create_worker
from workflows.session import TradingSessionWorkflow


class OtlpReceiver(ThreadingHTTPServer):
    """A stand-in OpenTelemetry collector: keeps the name of every span posted to it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OtlpHandler)
        self.span_names: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class _OtlpHandler(BaseHTTPRequestHandler):
    server: OtlpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.server.span_names.extend(span.name for span in scope.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_otlp_tracing_follows_a_workflow_from_client_to_activity(
    settings: Settings,
    receiver: OtlpReceiver,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    traced = settings.model_copy(
        update={"otel_exporter": "otlp", "otel_endpoint": receiver.endpoint}
    )
    client = await connect(traced)
    ghost = session_values(id=f"traced-{uuid.uuid4().hex[:8]}")  # no row: activation fails

    async with create_worker(client, traced.temporal_task_queue, sessionmaker):
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(
                TradingSessionWorkflow.run,
                SessionWorkflowInput(spec=spec_from(ghost)),
                id=ghost["workflow_id"],
                task_queue=traced.temporal_task_queue,
            )
    provider = tracer_provider(traced)
    assert provider is not None
    assert await asyncio.to_thread(provider.force_flush)

    assert {
        "StartWorkflow:TradingSession",
        "RunWorkflow:TradingSession",
        "StartActivity:activate_session",
        "RunActivity:activate_session",
    } <= set(receiver.span_names)


async def test_tracing_is_off_by_default(settings: Settings) -> None:
    client = await connect(settings)

    assert tracer_provider(settings) is None
    assert not client.config()["interceptors"]


async def test_worker_runtime_serves_temporal_sdk_metrics(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    address = f"127.0.0.1:{free_port()}"
    runtime = temporal_runtime(settings.model_copy(update={"worker_metrics_address": address}))
    assert runtime is not None
    client = await connect(settings, runtime=runtime)

    async with create_worker(client, settings.temporal_task_queue, sessionmaker):

        async def scraped() -> str | None:
            async with httpx.AsyncClient() as http:
                text = (await http.get(f"http://{address}/metrics")).text
            return text if "temporal_worker_start" in text else None

        text = await eventually(scraped)
    assert f'task_queue="{settings.temporal_task_queue}"' in text


def test_a_taken_metrics_address_is_logged_and_the_worker_goes_on(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with caplog.at_level(logging.ERROR):
            runtime = temporal_runtime(
                settings.model_copy(update={"worker_metrics_address": address})
            )
            server = serve_metrics(address, Metrics())

    assert runtime is None
    assert server is None
    assert sum(address in record.getMessage() for record in caplog.records) == 2


async def test_worker_serves_the_project_series_on_its_own_address() -> None:
    metrics = Metrics()
    metrics.activity_failures.labels(activity_type="check_session", error_type="Boom").inc()
    address = f"127.0.0.1:{free_port()}"
    server = serve_metrics(address, metrics)
    assert server is not None
    try:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://{address}/metrics")).text
    finally:
        server.shutdown()

    assert (
        'trading_activity_failures_total{activity_type="check_session",error_type="Boom"} 1.0'
        in text
    )
