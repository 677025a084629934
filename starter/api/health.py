"""Liveness and readiness of the API, for load balancers and orchestrators."""

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeTaskQueueResponse,
)
from temporalio.client import Client

from starter.api.body import StrictJsonRoute
from starter.api.deps import ClientDep, SessionsDep, SettingsDep
from starter.api.schemas import Backlog, Check, ErrorBody, NotReady, Readiness

# Each check answers within this or counts as failed: a probe must not hang on a dead peer.
CHECK_TIMEOUT = 3.0
# A live worker long-polls again at least every ~70 s; the server remembers pollers for
# minutes, so older entries are workers that went away.
POLLER_FRESHNESS = timedelta(seconds=90)

router = APIRouter(prefix="/health", tags=["health"], route_class=StrictJsonRoute)


class QueueState(BaseModel):
    """Fresh pollers and the backlog of the task queue (describe-task-queue)."""

    workflow_pollers: int
    activity_pollers: int
    backlog: Backlog


@router.get("/live")
async def live() -> dict[str, str]:
    """The process is up and serving; says nothing about its dependencies."""
    return {"status": "ok"}


@router.get("/ready", response_model=Readiness, responses={503: {"model": NotReady}})
async def ready(
    client: ClientDep, sessions: SessionsDep, settings: SettingsDep
) -> Readiness | JSONResponse:
    """Ready when PostgreSQL answers, Temporal answers, and a worker polls the task queue."""
    queue = settings.temporal_task_queue

    async def database() -> str:
        await sessions.ping_database()
        return "SELECT 1 answered"

    async def temporal() -> str:
        serving = await client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT))
        if not serving:
            raise RuntimeError("frontend reports NOT_SERVING")
        return f"{settings.resolved_temporal_address} serving"

    worker_state: list[QueueState] = []

    async def worker() -> str:
        state = await describe_queue(client, queue)
        worker_state.append(state)
        if state.workflow_pollers == 0:
            raise RuntimeError(
                f"no worker polled task queue {queue!r} in the last "
                f"{POLLER_FRESHNESS.total_seconds():.0f} s"
            )
        return f"{state.workflow_pollers} workflow and {state.activity_pollers} activity pollers"

    checks = list(
        await asyncio.gather(
            _run("database", database()), _run("temporal", temporal()), _run("worker", worker())
        )
    )
    backlog = worker_state[0].backlog if worker_state else None
    failed = [check for check in checks if not check.ok]
    if not failed:
        return Readiness(status="ready", task_queue=queue, checks=checks, backlog=backlog)
    message = "not ready: " + "; ".join(f"{c.name}: {c.detail}" for c in failed)
    body = NotReady(
        error=ErrorBody(code="not_ready", message=message, field=failed[0].name),
        checks=checks,
        backlog=backlog,
    )
    return JSONResponse(status_code=503, content=body.model_dump(mode="json"))


async def _run(name: Literal["database", "temporal", "worker"], probe: Awaitable[str]) -> Check:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            detail, ok = await probe, True
    except TimeoutError:
        detail, ok = f"no answer within {CHECK_TIMEOUT:g} s", False
    except Exception as err:
        detail, ok = str(err) or type(err).__name__, False
    elapsed = (time.perf_counter() - started) * 1000
    return Check(name=name, ok=ok, detail=detail, duration_ms=round(elapsed, 1))


async def describe_queue(client: Client, queue: str) -> QueueState:
    workflow, activity = await asyncio.gather(
        _describe(client, queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        _describe(client, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    )
    oldest = max(
        workflow.stats.approximate_backlog_age.ToTimedelta(),
        activity.stats.approximate_backlog_age.ToTimedelta(),
    )
    return QueueState(
        workflow_pollers=_fresh_pollers(workflow),
        activity_pollers=_fresh_pollers(activity),
        backlog=Backlog(
            workflow_tasks=workflow.stats.approximate_backlog_count,
            activity_tasks=activity.stats.approximate_backlog_count,
            oldest_seconds=oldest.total_seconds(),
        ),
    )


async def _describe(
    client: Client, queue: str, kind: "TaskQueueType.ValueType"
) -> DescribeTaskQueueResponse:
    return await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=kind,
            report_stats=True,
        ),
        timeout=timedelta(seconds=CHECK_TIMEOUT),
    )


def _fresh_pollers(response: DescribeTaskQueueResponse) -> int:
    since = datetime.now(UTC) - POLLER_FRESHNESS
    return sum(1 for poller in response.pollers if poller.last_access_time.ToDatetime(UTC) >= since)
