"""Health, metrics and failure analysis endpoints against a real dev server and PostgreSQL."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from domain.housekeeping import HousekeepingInput, PurgeInput, PurgeResult
from domain.roles import Role
from domain.session_messages import SessionWorkflowInput
from domain.status import SessionStatus
from starter.api.app import create_app
from starter.runtime.job_counts import JobCountFlusher
from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.services.keys import KeyService
from store.audit import AuditRepository
from store.sessions import SessionRepository
from tests.fixtures.factories import session_values, spec_from
from tests.integration.polling import eventually
from worker import create_worker
from workflows.housekeeping import HousekeepingWorkflow
from workflows.session import TradingSessionWorkflow


@pytest.fixture
async def app_only(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """The API on a fresh task queue that no worker polls, called with an operator key."""
    app = create_app(settings)
    operator = await KeyService(sessionmaker).create(Role.OPERATOR)
    headers = {"Authorization": f"Bearer {operator.api_key}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers=headers
        ) as client:
            yield client


@pytest.fixture
async def worker_metrics(
    settings: Settings, dev_client: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Metrics]:
    """A worker polling the test's task queue, counting into metrics the test can read."""
    metrics = Metrics()
    async with create_worker(dev_client, settings.temporal_task_queue, sessionmaker, metrics):
        yield metrics


async def test_live_answers_while_the_process_runs(app_only: httpx.AsyncClient) -> None:
    response = await app_only.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_with_a_worker_polling_reports_every_check_and_the_backlog(
    app_only: httpx.AsyncClient, worker_metrics: Metrics
) -> None:
    async def ready() -> dict[str, Any] | None:
        response = await app_only.get("/health/ready")
        return response.json() if response.status_code == 200 else None

    body = await eventually(ready)

    assert body["status"] == "ready"
    assert [(c["name"], c["ok"]) for c in body["checks"]] == [
        ("database", True),
        ("temporal", True),
        ("worker", True),
    ]
    # A fresh task queue with a worker polling it and nothing to do has nothing waiting.
    assert body["backlog"]["workflow_tasks"] == 0
    assert body["backlog"]["activity_tasks"] == 0


async def test_ready_is_503_naming_the_worker_check_when_no_worker_polls(
    app_only: httpx.AsyncClient, settings: Settings
) -> None:
    response = await app_only.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "not_ready"
    assert body["error"]["field"] == "worker"
    assert settings.temporal_task_queue in body["error"]["message"]
    failed = {c["name"] for c in body["checks"] if not c["ok"]}
    assert failed == {"worker"}


async def test_metrics_exposes_the_project_series_with_live_session_counts(
    app_only: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker.begin() as db:
        await SessionRepository(db).insert_if_absent(session_values(status=SessionStatus.ACTIVE))

    response = await app_only.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for series in (
        "trading_sessions_active",
        "trading_session_checks_total",
        "trading_check_lateness_seconds_bucket",
        "trading_session_warnings_total",
        "trading_session_terminations_total",
        "trading_breach_to_halt_seconds_bucket",
        "trading_activity_failures_total",
        "trading_housekeeping_rows_deleted_total",
    ):
        assert f"# TYPE {series.removesuffix('_bucket').removesuffix('_total')}" in text
    active = next(
        line
        for line in text.splitlines()
        if line.startswith('trading_sessions_active{status="ACTIVE"}')
    )
    assert float(active.split()[-1]) >= 1


async def test_failed_workflow_and_stuck_session_are_listed_with_their_errors(
    app_only: httpx.AsyncClient,
    worker_metrics: Metrics,
    settings: Settings,
    dev_client: Client,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # A session workflow whose row does not exist: activation refuses, the workflow fails.
    ghost = session_values(id=f"ghost-{uuid.uuid4().hex[:8]}")
    with pytest.raises(WorkflowFailureError):
        await dev_client.execute_workflow(
            TradingSessionWorkflow.run,
            SessionWorkflowInput(spec=spec_from(ghost)),
            id=ghost["workflow_id"],
            task_queue=settings.temporal_task_queue,
        )
    stuck = session_values(status=SessionStatus.CLEANUP_FAILED)
    async with sessionmaker.begin() as db:
        await SessionRepository(db).insert_if_absent(stuck)
        await AuditRepository(db).append(
            session_id=stuck["id"],
            action="session.cleanup_failed",
            actor="system",
            reason="broker refused to cancel order o-1",
        )

    async def listed() -> dict[str, Any] | None:
        body: dict[str, Any] = (await app_only.get("/jobs/failures?hours=1")).json()
        return body if body["workflows"] else None

    body = await eventually(listed)

    [failed] = body["workflows"]
    assert failed["workflow_id"] == ghost["workflow_id"]
    assert failed["session_id"] == ghost["id"]
    assert failed["status"] == "FAILED"
    assert "not found" in failed["last_error"]
    assert failed["error_type"] == "SessionNotFoundError"
    [session] = [s for s in body["sessions"] if s["session_id"] == stuck["id"]]
    assert session["last_error"] == "broker refused to cancel order o-1"
    failures = worker_metrics.registry.get_sample_value(
        "trading_activity_failures_total",
        {"activity_type": "activate_session", "error_type": "SessionNotFoundError"},
    )
    assert failures == 1

    async def counted() -> dict[str, Any] | None:
        stats: dict[str, Any] = (await app_only.get("/jobs/stats?hours=1")).json()
        return stats if stats["closed"].get("Failed") else None

    stats = await eventually(counted)
    assert stats["closed"] == {"Failed": 1}
    assert stats["started"] == 1
    assert stats["running"] == 0
    assert stats["task_queue"] == settings.temporal_task_queue


def _sample(text: str, series: str) -> float:
    """The value of one exact series (name and labels) in a Prometheus text page."""
    [line] = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.split()[-1])


async def test_work_nobody_polls_raises_the_backlog_gauges(
    app_only: httpx.AsyncClient, settings: Settings, dev_client: Client
) -> None:
    for n in range(3):
        await dev_client.start_workflow(
            HousekeepingWorkflow.run,
            HousekeepingInput(retention_days=36500),
            id=f"stuck-{n}-{uuid.uuid4().hex[:8]}",
            task_queue=settings.temporal_task_queue,
        )

    async def backed_up() -> str | None:
        text = (await app_only.get("/metrics")).text
        waiting = _sample(text, 'trading_task_queue_backlog{task_type="workflow"}')
        return text if waiting >= 3 else None

    text = await eventually(backed_up)
    assert _sample(text, 'trading_task_queue_backlog{task_type="workflow"}') == 3
    assert _sample(text, 'trading_task_queue_pollers{task_type="workflow"}') == 0
    assert _sample(text, "trading_task_queue_backlog_age_seconds") > 0
    assert _sample(text, 'trading_dependency_up{dependency="database"}') == 1
    assert _sample(text, 'trading_dependency_up{dependency="temporal"}') == 1
    assert _sample(text, "process_resident_memory_bytes") > 10 * 2**20
    assert _sample(text, "process_open_fds") > 0


@activity.defn(name="purge_ended_sessions")
async def _purge_refused(input: PurgeInput) -> PurgeResult:
    raise ApplicationError("disk full", type="PurgeRefused", non_retryable=True)


async def test_a_failed_job_moves_the_success_ratio_below_the_objective(
    app_only: httpx.AsyncClient,
    settings: Settings,
    dev_client: Client,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    metrics = Metrics()
    flusher = JobCountFlusher(metrics, sessionmaker)
    before = (await app_only.get("/jobs/stats?hours=1")).json()["jobs"]["housekeeping"]
    run = HousekeepingInput(retention_days=36500)
    queue = settings.temporal_task_queue

    async with create_worker(
        dev_client, queue, sessionmaker, metrics, replace_activities=[_purge_refused]
    ):
        with pytest.raises(WorkflowFailureError):
            await dev_client.execute_workflow(
                HousekeepingWorkflow.run, run, id=f"hk-{uuid.uuid4().hex}", task_queue=queue
            )
    async with create_worker(dev_client, queue, sessionmaker, metrics):
        await dev_client.execute_workflow(
            HousekeepingWorkflow.run, run, id=f"hk-{uuid.uuid4().hex}", task_queue=queue
        )
    await flusher.flush()
    await flusher.flush()  # nothing new: nothing added twice

    stats = (await app_only.get("/jobs/stats?hours=1")).json()
    after = stats["jobs"]["housekeeping"]
    assert (
        metrics.registry.get_sample_value(
            "trading_jobs_total", {"kind": "housekeeping", "outcome": "failure"}
        )
        == 1
    )
    assert after["failure"] - before["failure"] == 1
    assert after["success"] - before["success"] >= 1
    assert stats["slo_target"] == 0.999
    assert stats["success_ratio"] < 0.999  # one failure among a handful of jobs
    assert stats["slo_met"] is False
    assert set(stats["jobs"]) >= {"check", "sweep", "termination", "notification", "housekeeping"}


async def test_checks_per_hour_add_up_the_sweeps_and_the_workflows_checks(
    app_only: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    before = (await app_only.get("/jobs/stats?hours=2")).json()
    metrics = Metrics()
    metrics.checks.labels("sweep").inc(120)
    metrics.checks.labels("workflow").inc(30)
    await JobCountFlusher(metrics, sessionmaker).flush()

    after = (await app_only.get("/jobs/stats?hours=2")).json()

    assert after["checks"]["sweep"] - before["checks"].get("sweep", 0) == 120
    assert after["checks"]["workflow"] - before["checks"].get("workflow", 0) == 30
    assert after["checks_per_hour"] - before["checks_per_hour"] == pytest.approx(75)
