"""GET /metrics: the project's Prometheus series, as the API process sees them.

At each scrape the API reads what is true for the whole fleet, so any replica reports it:
sessions by status and alerts (the database), the task queue's backlog and pollers
(describe-task-queue), and whether it reached each of them. Counters fed by activities live
in the worker and are scraped there (``TRADING_WORKER_APP_METRICS_ADDRESS``); here they read
zero. Counters the API feeds itself (ingest checks) and ``process_*`` belong to one process.
"""

import asyncio
import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from domain.status import SessionStatus, is_terminal
from starter.api.body import StrictJsonRoute
from starter.api.deps import AlertsDep, ClientDep, MetricsDep, SessionsDep, SettingsDep
from starter.api.health import QueueState, describe_queue
from starter.runtime.metrics import Metrics

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"], route_class=StrictJsonRoute)

_LIVE_STATUSES = [status for status in SessionStatus if not is_terminal(status)]
# A scrape must answer even when a dependency does not (Prometheus times out at 10 s).
SCRAPE_READ_TIMEOUT = 3.0


@router.get("/metrics", response_class=Response)
async def metrics(
    metrics: MetricsDep,
    sessions: SessionsDep,
    alerts: AlertsDep,
    client: ClientDep,
    settings: SettingsDep,
) -> Response:
    """Prometheus text format. An outage leaves the last values, logs why, and sets
    ``trading_dependency_up`` to 0 for what did not answer."""

    async def database() -> None:
        counts = await sessions.count_by_status()
        raised, open_ = await alerts.counts_by_kind()
        for status in _LIVE_STATUSES:
            metrics.sessions_active.labels(status=status.value).set(counts.get(status, 0))
        metrics.alerts_total.set(raised)
        for kind, count in open_.items():
            metrics.alerts_open.labels(kind=kind).set(count)

    async def temporal() -> None:
        _set_queue(metrics, await describe_queue(client, settings.temporal_task_queue))

    for name, read in (("database", database), ("temporal", temporal)):
        try:
            async with asyncio.timeout(SCRAPE_READ_TIMEOUT):
                await read()
        except Exception:
            log.exception("reading %s for /metrics failed; its series keep their last values", name)
            metrics.dependency_up.labels(dependency=name).set(0)
        else:
            metrics.dependency_up.labels(dependency=name).set(1)
    return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _set_queue(metrics: Metrics, state: QueueState) -> None:
    metrics.pollers.labels(task_type="workflow").set(state.workflow_pollers)
    metrics.pollers.labels(task_type="activity").set(state.activity_pollers)
    metrics.backlog.labels(task_type="workflow").set(state.backlog.workflow_tasks)
    metrics.backlog.labels(task_type="activity").set(state.backlog.activity_tasks)
    metrics.backlog_age.set(state.backlog.oldest_seconds)
