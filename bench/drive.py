"""Run the workload through a sink for the set time while measuring the stack's processes."""

import asyncio
import contextlib
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.config import BenchConfig
from bench.dbfigures import count_active
from bench.kill import KillRecord, KillSwitchPress
from bench.market import CrashRecord, MarketFeed, crash_price
from bench.plan import SessionPlan, crash_symbols, make_plan
from bench.procs import ProcessSet
from bench.sinks import Sink
from bench.sweeps import Series, SweepLog, scrape
from bench.workload import FeedCounters, Workload

SAMPLE_PERIOD = 2.0  # seconds between looks at the number of active sessions
TIMELINE_PERIOD = 10.0  # seconds between two points of the CPU timeline


class StackDied(RuntimeError):
    """A process of the stack exited in the middle of the run."""


@dataclass
class Drive:
    """What the run did and what the stack's processes spent doing it."""

    counters: FeedCounters
    plans: list[SessionPlan]
    window: tuple[float, float]
    held: int
    cpu_seconds: dict[str, float]
    # Once every session has started and before the first can expire: per-check cost
    # without the start burst and the end-of-session work.
    steady_window: tuple[float, float] | None
    steady_cpu_seconds: dict[str, float]
    idle_cpu_per_s: dict[str, float]
    peak_rss_mb: dict[str, float]
    peak_pss_mb: dict[str, float]
    driver_cpu_seconds: float
    # Cumulative CPU of each part, the machine and the driver every TIMELINE_PERIOD s:
    # when the CPU was spent, and what the machine's other tenants spent meanwhile.
    cpu_timeline: list[dict[str, float]]
    sweeps: SweepLog
    # (time, ACTIVE sessions of the run) every SAMPLE_PERIOD
    active_samples: list[tuple[float, int]]
    market: MarketFeed | None
    crash: CrashRecord | None
    # Prometheus series of the workers and the API at the window's edges, by edge name
    # ("run_begin", "steady_begin", "steady_end", "run_end").
    worker_series: dict[str, Series]
    api_series: dict[str, Series]
    # The kill-switch scenario, when asked for (``--kill-switch-at``).
    kill: KillRecord | None = None


@dataclass(frozen=True)
class Scrapes:
    """Where the stack's Prometheus series are (none on a configured stack)."""

    worker_urls: tuple[str, ...] = ()
    api_url: str | None = None

    async def take(self, edge: str, workers: dict[str, Series], api: dict[str, Series]) -> None:
        if self.worker_urls:
            workers[edge] = await scrape(list(self.worker_urls))
        if self.api_url:
            api[edge] = await scrape([self.api_url])


async def drive(
    *,
    label: str,
    config: BenchConfig,
    sink: Sink,
    processes: ProcessSet,
    sessionmaker: async_sessionmaker[AsyncSession] | None,
    prefix: str,
    console: Console,
    exited: Callable[[], str | None] = lambda: None,
    scrapes: Scrapes = Scrapes(),
    press: Callable[[float], KillSwitchPress] | None = None,
) -> Drive:
    """Start the planned sessions of ``config`` (ids beginning with ``prefix``) and feed
    them for the run's length; CPU is counted over exactly that. ``press(origin)``, if
    given, is the kill switch to press during the run (it times itself, and may outlast the
    run by its own wait).

    The first start comes ``config.idle_seconds`` from now: the idle stack's CPU is measured
    then, so fixed and per-check costs can be told apart.
    """
    origin = time.time() + config.idle_seconds + 1.0
    plans = make_plan(config, origin, prefix)
    run_end = origin + config.run_seconds
    steady_from = origin + config.stagger_seconds + config.steady_margin
    ends = [plan.end_at for plan in plans]
    steady_until = min(run_end, min(ends) if config.expiring is None else run_end)
    workers: dict[str, Series] = {}
    api: dict[str, Series] = {}
    await processes.measure_idle(config.idle_seconds)
    await scrapes.take("run_begin", workers, api)
    began = time.time()
    driver_cpu = time.process_time()
    processes.start_window()
    sampler = asyncio.create_task(processes.sample_memory_forever())
    market, crash = _market(config, plans, sink, origin)
    workload = Workload(
        plans,
        sink,
        config.feed_interval if config.feed == "session" else 0.0,
        config.seed,
        market=market,
        fill_interval=config.fill_interval,
        position=config.position,
    )
    feeding = asyncio.create_task(workload.run(run_end))
    marking = asyncio.create_task(market.run(origin, run_end)) if market else None
    pressing = asyncio.create_task(press(origin).run()) if press is not None else None
    kill: KillRecord | None = None
    sweeps = SweepLog()
    timeline = [{**processes.timeline_point(began), "driver": 0.0}]
    active_samples: list[tuple[float, int]] = []
    held = 0
    steady: list[tuple[float, dict[str, float]]] = []
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    try:
        with Progress(*columns, console=console) as progress:
            starting = progress.add_task(f"{label}: starting", total=len(plans), status="")
            running = progress.add_task(f"{label}: running", total=run_end - began, status="")
            while time.time() < run_end:
                crashed = exited()
                if crashed is not None:
                    raise StackDied(f"{crashed} exited during the run")
                active = await count_active(sessionmaker, prefix) if sessionmaker else 0
                if time.time() - began >= timeline[-1]["t"] + TIMELINE_PERIOD:
                    driver = round(time.process_time() - driver_cpu, 3)
                    timeline.append({**processes.timeline_point(began), "driver": driver})
                if sessionmaker is not None:
                    active_samples.append((time.time(), active))
                    await sweeps.sample(sessionmaker)
                held = max(held, active)
                counters = workload.counters
                progress.update(
                    starting,
                    completed=counters.starts_ok + counters.starts_failed,
                    status=f"{counters.starts_failed} failed",
                )
                progress.update(
                    running,
                    completed=min(time.time(), run_end) - began,
                    status=f"{active} active, {counters.posts_ok} posts, "
                    f"{counters.posts_failed} errors",
                )
                all_started = counters.starts_ok + counters.starts_failed == len(plans)
                if all_started and counters.starts_ok == 0:
                    first = next(iter(counters.errors), "no answer")
                    raise StackDied(f"no session could be started: {first}")
                now = time.time()
                if (not steady and all_started and now >= steady_from) or (
                    len(steady) == 1 and now >= steady_until
                ):
                    edge = "steady_begin" if not steady else "steady_end"
                    await scrapes.take(edge, workers, api)
                    steady.append((time.time(), processes.snapshot_cpu()))
                await asyncio.sleep(min(SAMPLE_PERIOD, max(0.0, run_end - time.time())))
            progress.update(running, completed=run_end - began)
        processes.end_window()
        await scrapes.take("run_end", workers, api)
        if sessionmaker is not None:
            await sweeps.sample(sessionmaker)
        if len(steady) == 1:  # no session could expire inside the run: steady to its end
            workers["steady_end"] = workers.get("run_end", {})
            api["steady_end"] = api.get("run_end", {})
            steady.append((processes.cpu_after_at, processes.cpu_after))
        # Feeds stop at run_end by themselves; a request in flight may still finish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(feeding), timeout=30)
        if pressing is not None:
            kill = await pressing  # bounded by its own wait
    finally:
        if pressing is not None and not pressing.done():
            pressing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pressing
        sampler.cancel()
        feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        if marking is not None:
            marking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await marking
    steady_window = None
    steady_cpu: dict[str, float] = {}
    if len(steady) == 2:
        (began_at, before), (ended_at, after) = steady
        steady_window = (began_at, ended_at)
        steady_cpu = {name: round(after[name] - before[name], 3) for name in before}
    rss_mb = {name: round(value / 2**20, 1) for name, value in processes.peak_rss.items()}
    pss_mb = {name: round(value / 2**20, 1) for name, value in processes.peak_pss.items()}
    pss_mb["total"] = round(processes.peak_pss_total / 2**20, 1)
    # ru_maxrss is in KiB on Linux: the driver's own peak, outside the stack's total.
    rss_mb["bench driver"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return Drive(
        counters=workload.counters,
        plans=plans,
        window=(began, run_end),
        held=held,
        cpu_seconds=processes.cpu_used(),
        steady_window=steady_window,
        steady_cpu_seconds=steady_cpu,
        idle_cpu_per_s=processes.idle_cpu_per_s,
        peak_rss_mb=rss_mb,
        peak_pss_mb=pss_mb,
        driver_cpu_seconds=round(time.process_time() - driver_cpu, 3),
        cpu_timeline=timeline,
        sweeps=sweeps,
        active_samples=active_samples,
        market=market,
        crash=crash,
        worker_series=workers,
        api_series=api,
        kill=kill,
    )


def _market(
    config: BenchConfig, plans: list[SessionPlan], sink: Sink, origin: float
) -> tuple[MarketFeed | None, CrashRecord | None]:
    """The market feed of the run (``--feed market``), with its flash crash if asked for."""
    if not config.market:
        return None, None
    symbols = sorted({plan.symbol for plan in plans})
    crashing = crash_symbols(config)
    crash = CrashRecord(crashing) if crashing else None
    feed = MarketFeed(
        symbols,
        sink,
        config.mark_period,
        config.seed,
        crash=crash,
        crash_at=origin + config.run_seconds * config.flash_at if crash else None,
        crash_to=crash_price(config.position) if crash else None,
    )
    return feed, crash
