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

from bench.dbfigures import count_active
from bench.plan import SessionPlan
from bench.procs import ProcessSet
from bench.sinks import Sink
from bench.workload import FeedCounters, Workload

SAMPLE_PERIOD = 2.0  # seconds between looks at the number of active sessions


class StackDied(RuntimeError):
    """A process of the stack exited in the middle of the run."""


@dataclass
class Drive:
    """What the run did and what the stack's processes spent doing it."""

    counters: FeedCounters
    window: tuple[float, float]
    held: int
    cpu_seconds: dict[str, float]
    peak_rss_mb: dict[str, float]
    driver_cpu_seconds: float


async def drive(
    *,
    label: str,
    plans: list[SessionPlan],
    sink: Sink,
    feed_interval: float,
    seed: int,
    run_end: float,
    processes: ProcessSet,
    sessionmaker: async_sessionmaker[AsyncSession] | None,
    prefix: str,
    console: Console,
    exited: Callable[[], str | None] = lambda: None,
) -> Drive:
    """Start every session, feed them until ``run_end``; CPU is counted over exactly that."""
    began = time.time()
    driver_cpu = time.process_time()
    processes.start_window()
    sampler = asyncio.create_task(processes.sample_rss_forever())
    workload = Workload(plans, sink, feed_interval, seed)
    feeding = asyncio.create_task(workload.run(run_end))
    held = 0
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
                await asyncio.sleep(min(SAMPLE_PERIOD, max(0.0, run_end - time.time())))
            progress.update(running, completed=run_end - began)
        processes.end_window()
        # Feeds stop at run_end by themselves; a request in flight may still finish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(feeding), timeout=30)
    finally:
        sampler.cancel()
        feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
    peak_mb = {name: round(value / 2**20, 1) for name, value in processes.peak_rss.items()}
    peak_mb["total"] = round(processes.peak_rss_total / 2**20, 1)
    # ru_maxrss is in KiB on Linux: the driver's own peak, outside the stack's total.
    peak_mb["bench driver"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return Drive(
        counters=workload.counters,
        window=(began, run_end),
        held=held,
        cpu_seconds=processes.cpu_used(),
        peak_rss_mb=peak_mb,
        driver_cpu_seconds=round(time.process_time() - driver_cpu, 3),
    )
