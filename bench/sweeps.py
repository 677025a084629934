"""The fleet sweep seen from outside: ``fleet_sweeps`` rows sampled through the run, and the
Prometheus series of the workers (sweep checks, signals, lateness) and of the API (the
checks it makes as fills and mark batches arrive).

``fleet_sweeps`` keeps one row per shard (the latest sweep), so the run samples it every
couple of seconds: with a 30 s interval no sweep is missed. ``swept_at`` is written after the
shard's statement, so "due to swept" is the lateness of the check's *result*; the start
lateness is the workers' ``trading_check_lateness_seconds`` histogram.
"""

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.figures import Distribution
from store.models import FleetSweep

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]
LATENESS = "trading_check_lateness_seconds"


@dataclass(frozen=True)
class SweepRecord:
    shard: int
    shards: int
    due_at: float
    swept_at: float
    checked: int
    signalled: int


@dataclass
class SweepLog:
    """Every sweep seen in ``fleet_sweeps`` during the run, by (shards, shard, due)."""

    records: dict[tuple[int, int, float], SweepRecord] = field(default_factory=dict)

    async def sample(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with sessionmaker() as db:
            rows = (await db.execute(select(FleetSweep))).scalars().all()
        for row in rows:
            key = (row.shard_count, row.shard, row.due_at.timestamp())
            self.records[key] = SweepRecord(
                shard=row.shard,
                shards=row.shard_count,
                due_at=row.due_at.timestamp(),
                swept_at=row.swept_at.timestamp(),
                checked=row.sessions_checked,
                signalled=row.signals_sent,
            )

    def within(self, begin: float, end: float) -> list[SweepRecord]:
        return sorted(
            (r for r in self.records.values() if begin <= r.swept_at <= end),
            key=lambda r: (r.shards, r.shard, r.swept_at),
        )

    def figures(self, begin: float, end: float) -> dict[str, object]:
        """Lateness of each sweep's result, and the gaps between a shard's sweeps: a session
        of the shard is checked by each, so the largest gap is the longest any ACTIVE
        session went between two sweep checks."""
        sweeps = self.within(begin, end)
        by_shard: dict[tuple[int, int], list[SweepRecord]] = defaultdict(list)
        for record in sweeps:
            by_shard[(record.shards, record.shard)].append(record)
        gaps = [
            (later.swept_at - earlier.swept_at) * 1000
            for records in by_shard.values()
            for earlier, later in itertools.pairwise(records)
        ]
        return {
            "sweeps": len(sweeps),
            "shards": len(by_shard),
            "due_to_swept_ms": Distribution.of([(r.swept_at - r.due_at) * 1000 for r in sweeps]),
            "gap_ms": Distribution.of(gaps),
            "checked": sum(r.checked for r in sweeps),
            "checked_per_sweep": Distribution.of([float(r.checked) for r in sweeps]),
            "signalled": sum(r.signalled for r in sweeps),
        }


async def scrape(urls: list[str]) -> Series:
    """Every sample of every URL, summed over the URLs (the workers' processes)."""
    series: Series = defaultdict(float)
    async with httpx.AsyncClient(timeout=10.0) as client:
        for url in urls:
            try:
                text = (await client.get(url)).text
            except httpx.HTTPError:
                continue
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = tuple(sorted(sample.labels.items()))
                    series[(sample.name, labels)] += sample.value
    return dict(series)


def delta(after: Series, before: Series) -> Series:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def total(series: Series, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in series.items() if n == name and wanted <= set(ls))


def by_label(series: Series, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for (n, labels), value in series.items():
        if n == name:
            out[dict(labels).get(label, "")] += value
    return dict(out)


def histogram_quantile_bound(series: Series, name: str, q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (seconds); None without data."""
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (n, labels), value in series.items()
        if n == f"{name}_bucket"
    )
    count = total(series, f"{name}_count")
    if not buckets or count <= 0:
        return None
    for bound, cumulative in buckets:
        if cumulative >= q * count:
            return bound if not math.isinf(bound) else float("inf")
    return None


def sweep_metrics(workers: Series, api: Series) -> dict[str, object]:
    """What the counters moved by over a window."""
    count = total(workers, f"{LATENESS}_count")
    return {
        "checks_by_source": by_label(workers, "trading_session_checks_total", "source"),
        "sweep_signals_by_reason": by_label(workers, "trading_sweep_signals_total", "reason"),
        "sweeps_started": count,
        "lateness_mean_ms": round(total(workers, f"{LATENESS}_sum") / count * 1000, 1)
        if count
        else None,
        "lateness_p99_bound_s": histogram_quantile_bound(workers, LATENESS, 0.99),
        "lateness_max_bound_s": histogram_quantile_bound(workers, LATENESS, 1.0),
        "ingest_checks": {
            f"{dict(ls).get('source')}/{dict(ls).get('outcome')}": v
            for (n, ls), v in api.items()
            if n == "trading_ingest_checks_total"
        },
    }
