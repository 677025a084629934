"""GET /metrics: the project's Prometheus series, as the API process sees them.

The session gauge is counted from the database at each scrape, so any API replica reports
the truth. Counters fed by activities live in the worker and are scraped there
(``TRADING_WORKER_APP_METRICS_ADDRESS``); here they read zero. Counters the API feeds itself
(ingest checks) belong to one process: with ``TRADING_API_WORKERS`` > 1 a scrape shows the
count of whichever process answers it.
"""

import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from domain.status import SessionStatus, is_terminal
from starter.api.body import StrictJsonRoute
from starter.api.deps import MetricsDep, SessionsDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"], route_class=StrictJsonRoute)

_LIVE_STATUSES = [status for status in SessionStatus if not is_terminal(status)]


@router.get("/metrics", response_class=Response)
async def metrics(metrics: MetricsDep, sessions: SessionsDep) -> Response:
    """Prometheus text format. A database outage leaves the last counts and logs why."""
    try:
        counts = await sessions.count_by_status()
    except Exception:
        log.exception("counting sessions for /metrics failed; the gauge keeps its last values")
    else:
        for status in _LIVE_STATUSES:
            metrics.sessions_active.labels(status=status.value).set(counts.get(status, 0))
    return Response(content=metrics.render(), media_type=CONTENT_TYPE_LATEST)
