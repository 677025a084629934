"""The live load of the fleet, for ``sessionctl top``: the database, the task queue, and each
process's own ``/metrics`` (CPU, memory, checks, work in flight)."""

import asyncio
import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from starter.api.health import describe_queue
from starter.api.schemas import Backlog
from starter.api.schemas_operations import AlertOut
from starter.runtime.settings import Settings
from starter.services.alerts import AlertService
from store.sessions import SessionRepository

# A process that does not answer within this is shown as down; top must keep refreshing.
SCRAPE_TIMEOUT = 2.0
# Series summed per process (label sets added up).
_SUMMED = {
    "process_cpu_seconds_total": "cpu_seconds",
    "process_resident_memory_bytes": "memory_bytes",
    "process_open_fds": "open_fds",
    "trading_session_checks_total": "checks",
    "trading_worker_activities_in_flight": "activities_in_flight",
    "temporal_sticky_cache_size": "sticky_cache",
    "temporal_worker_task_slots_used": "slots_used",
}


@dataclass
class ProcessLoad:
    """What one ``/metrics`` endpoint said (None: it did not answer)."""

    target: str
    up: bool = False
    values: dict[str, float] = field(default_factory=dict)
    at: float = 0.0


@dataclass
class FleetLoad:
    sessions: dict[str, int]
    open_alerts: dict[str, int]
    latest_alerts: list[AlertOut]
    backlog: Backlog | None
    workflow_pollers: int
    processes: list[ProcessLoad]


def default_targets(settings: Settings) -> list[str]:
    """The dev stack's endpoints: the API and each worker's two (as ``make run`` sets them)."""
    targets = [f"http://{settings.api_host}:{settings.api_port}/metrics"]
    for n in range(settings.worker_processes):
        for address in (settings.worker_app_metrics_address, settings.worker_metrics_address):
            if address:
                host, _, port = address.rpartition(":")
                targets.append(f"http://{host}:{int(port) + 2 * n}/metrics")
    return targets


class LoadService:
    """Reads the fleet's load from the same sources the metrics come from."""

    def __init__(
        self,
        client: Client,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        http: httpx.AsyncClient,
    ) -> None:
        self.client = client
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.http = http
        self.alerts = AlertService(sessionmaker)

    async def snapshot(self, targets: list[str]) -> FleetLoad:
        async with self.sessionmaker() as db:
            counts = await SessionRepository(db).count_by_status()
        _, open_alerts = await self.alerts.counts_by_kind()
        latest = await self.alerts.latest_open(5)
        try:
            state = await describe_queue(self.client, self.settings.temporal_task_queue)
            backlog, pollers = state.backlog, state.workflow_pollers
        except Exception:
            backlog, pollers = None, 0
        processes = await asyncio.gather(*(self.scrape(t) for t in targets))
        return FleetLoad(
            sessions={str(status): n for status, n in counts.items()},
            open_alerts={k: n for k, n in open_alerts.items() if n},
            latest_alerts=latest,
            backlog=backlog,
            workflow_pollers=pollers,
            processes=list(processes),
        )

    async def scrape(self, target: str) -> ProcessLoad:
        load = ProcessLoad(target=target, at=time.monotonic())
        try:
            response = await self.http.get(target, timeout=SCRAPE_TIMEOUT)
            response.raise_for_status()
        except httpx.HTTPError:
            return load
        load.up = True
        load.values = summed(response.text)
        return load


def summed(text: str) -> dict[str, float]:
    """The series ``top`` shows, each summed over its label sets."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = _SUMMED.get(sample.name)
            if key is not None:
                values[key] = values.get(key, 0.0) + sample.value
    return values


def per_minute(before: ProcessLoad | None, now: ProcessLoad, key: str) -> float | None:
    """The rate of a counter between two scrapes of one process, per minute."""
    if before is None or not (before.up and now.up) or now.at <= before.at:
        return None
    delta = now.values.get(key, 0.0) - before.values.get(key, 0.0)
    return max(0.0, delta) * 60 / (now.at - before.at)
