"""deploy/: the Prometheus rules and the Grafana dashboard name only series the real stack
exports, and promtool accepts the rules and passes their unit tests."""

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError

from domain.session_messages import SessionWorkflowInput
from starter.api.app import create_app
from starter.dev.devserver import free_port
from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.runtime.telemetry import serve_metrics, temporal_runtime
from starter.runtime.temporal_client import connect
from tests.fixtures.factories import session_values, spec_from
from tests.integration.polling import eventually
from worker import create_worker
from workflows.session import TradingSessionWorkflow

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "rules_test.yml"
DASHBOARD = DEPLOY / "grafana" / "trading-sessions.json"
# Made by Prometheus itself for every scrape target, not by any /metrics.
SYNTHETIC = {"up"}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "deriv", "delta", "irate",
    "histogram_quantile", "min_over_time", "max_over_time", "avg_over_time", "predict_linear",
    "by", "without", "and", "or", "unless", "on", "ignoring", "offset", "bool", "abs", "absent",
}  # fmt: skip


def series_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (recording rules' names left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges and subqueries
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)  # grouping labels
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr))
    return {n for n in names if n not in PROMQL_WORDS and ":" not in n and not n.isdigit()}


def rules_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def exported(texts: Iterable[str]) -> set[str]:
    """Every series name the pages declare or carry, histogram and counter suffixes included."""
    names: set[str] = set()
    for text in texts:
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split()[:4]
                names.add(name)
                suffixes = {
                    "counter": ("_total", "_created"),
                    "histogram": ("_bucket", "_sum", "_count"),
                }.get(kind, ())
                names.update(name + suffix for suffix in suffixes)
            elif line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_series_parsing_reads_names_not_labels_or_functions() -> None:
    expr = (
        'sum by (kind) (rate(trading_jobs_total{outcome="success"}[1h])) / '
        "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) and trading:a:b > 0"
    )
    assert series_in(expr) == {"trading_jobs_total", "x_bucket"}


def test_rules_and_dashboard_cover_what_operators_asked_for() -> None:
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert {
        "TradingWorkerDown",
        "TradingWorkerNotPolling",
        "TradingBacklogGrowing",
        "TradingCheckLate",
        "TradingSessionCleanupFailed",
        "TradingJobSuccessRatioLow",
        "TradingOpenAlerts",
        "TradingProcessMemoryGrowing",
        "TradingDatabaseUnreachable",
        "TradingTemporalUnreachable",
    } <= alerts
    used = set().union(*map(series_in, dashboard_expressions()))
    for series in (
        "trading_sessions_active",
        "trading_session_checks_total",
        "trading_check_lateness_seconds_bucket",
        "trading_breach_to_halt_seconds_bucket",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "trading_task_queue_backlog",
        "trading_alerts_open",
    ):
        assert series in used, series


async def test_every_series_the_rules_and_dashboard_name_is_exported_by_the_stack(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sdk_address = f"127.0.0.1:{free_port()}"
    app_address = f"127.0.0.1:{free_port()}"
    worker_settings = settings.model_copy(update={"worker_metrics_address": sdk_address})
    client = await connect(worker_settings, runtime=temporal_runtime(worker_settings))
    metrics = Metrics()
    server = serve_metrics(app_address, metrics)
    assert server is not None
    app = create_app(settings)
    ghost = session_values(id=f"deploy-{uuid.uuid4().hex[:8]}")  # activation fails: work done
    try:
        async with (
            create_worker(client, settings.temporal_task_queue, sessionmaker, metrics),
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api,
            httpx.AsyncClient() as http,
        ):
            with pytest.raises(WorkflowFailureError):
                await client.execute_workflow(
                    TradingSessionWorkflow.run,
                    SessionWorkflowInput(spec=spec_from(ghost)),
                    id=ghost["workflow_id"],
                    task_queue=settings.temporal_task_queue,
                )

            async def pages() -> list[str] | None:
                texts = [
                    (await api.get("/metrics")).text,
                    (await http.get(f"http://{app_address}/metrics")).text,
                    (await http.get(f"http://{sdk_address}/metrics")).text,
                ]
                return texts if "temporal_sticky_cache_size" in texts[2] else None

            texts = await eventually(pages)
    finally:
        server.shutdown()

    names = exported(texts)
    for source, expressions in (
        ("rules.yml", rules_expressions()),
        ("trading-sessions.json", dashboard_expressions()),
    ):
        wanted = set().union(*map(series_in, expressions)) - SYNTHETIC
        missing = sorted(wanted - names)
        assert not missing, f"{source} names series no process exports: {missing}"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool not installed (Debian: apt-get install prometheus); "
            "the rules' series are still checked against the real /metrics above"
        )
    return path


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", str(RULES_TEST)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULES_TEST.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
