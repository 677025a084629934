"""Carries a worker's job and check counters into the database, so ``/jobs/stats`` can report
the success ratio and checks per hour over any window, across workers and restarts.

Each flush writes what the counters gained since the last one into the current hour's rows
(one statement). A flush that fails keeps its deltas for the next; a worker killed between
flushes loses at most one interval of counts (the Prometheus counters lose them too).
"""

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from starter.runtime.metrics import Metrics
from store.job_counts import JobCountRepository

log = logging.getLogger(__name__)

# Loss checks are stored beside the jobs under this kind, their source as the outcome.
CHECKS_KIND = "checks"
# Often enough that /jobs/stats is a minute behind at most; one small upsert each time.
FLUSH_INTERVAL = 60.0


class JobCountFlusher:
    """Adds the deltas of ``trading_jobs_total`` and ``trading_session_checks_total``."""

    def __init__(self, metrics: Metrics, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.metrics = metrics
        self.sessionmaker = sessionmaker
        self._flushed: dict[tuple[str, str], float] = {}

    def _current(self) -> dict[tuple[str, str], float]:
        values: dict[tuple[str, str], float] = {}
        for family in self.metrics.registry.collect():
            for sample in family.samples:
                if sample.name == "trading_jobs_total":
                    values[(sample.labels["kind"], sample.labels["outcome"])] = sample.value
                elif sample.name == "trading_session_checks_total":
                    values[(CHECKS_KIND, sample.labels["source"])] = sample.value
        return values

    async def flush(self) -> None:
        """Write what was counted since the last successful flush."""
        current = self._current()
        deltas = {
            key: int(value - self._flushed.get(key, 0.0))
            for key, value in current.items()
            if value > self._flushed.get(key, 0.0)
        }
        if not deltas:
            return
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        async with self.sessionmaker.begin() as db:
            await JobCountRepository(db).add(hour, deltas)
        for key, delta in deltas.items():
            self._flushed[key] = self._flushed.get(key, 0.0) + delta

    async def run(self, stop: asyncio.Event, interval: float = FLUSH_INTERVAL) -> None:
        """Flush every ``interval`` seconds until ``stop``, and once more on the way out."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            try:
                await self.flush()
            except Exception:
                log.exception("job counts not written; kept for the next flush")
            if stop.is_set():
                return
