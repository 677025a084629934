"""The two runs of the workload: on the product (Temporal design) and on the baseline poller."""

import asyncio
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.baseline import read_scans
from bench.config import BenchConfig
from bench.dbfigures import end_figures, halt_times, time_loss_check, wait_until_ended
from bench.drive import IDLE_SECONDS, Drive, drive
from bench.figures import Distribution, RunFigures
from bench.histories import read_histories
from bench.plan import make_plan
from bench.procs import ProcessSet
from bench.sinks import DirectSink, HttpSink
from bench.stack import (
    ROOT,
    EmbeddedPostgres,
    EmbeddedStack,
    Endpoints,
    child_env,
    make_data_dir,
    remove_data_dir,
)
from starter.settings import Settings
from starter.temporal_client import connect
from store.db import create_engine, create_sessionmaker
from workflows.session import workflow_id_for

log = logging.getLogger("bench")
STEADY_MARGIN = 5.0  # seconds after the last planned start before "steady state" begins


def _record_drive(figures: RunFigures, result: Drive) -> None:
    counters = result.counters
    figures.sessions_started = counters.starts_ok
    figures.sessions_failed = counters.starts_failed
    figures.sessions_held = result.held
    figures.window_seconds = round(result.window[1] - result.window[0], 1)
    figures.peak_rss_mb = result.peak_rss_mb
    figures.peak_pss_mb = result.peak_pss_mb
    figures.idle_cpu_per_s = result.idle_cpu_per_s
    figures.driver_cpu_seconds = result.driver_cpu_seconds
    figures.breaches_posted = len(counters.breaches_posted)
    figures.feed = {
        "posts_ok": counters.posts_ok,
        "posts_after_end": counters.posts_ended,
        "posts_failed": counters.posts_failed,
    }
    figures.errors = dict(counters.errors.most_common(10))


async def _record_ends(
    figures: RunFigures, engine: AsyncEngine, prefix: str, result: Drive, config: BenchConfig
) -> None:
    """Expiry lateness, breach-to-halt and the loss-check query, from the database."""
    sessionmaker = create_sessionmaker(engine)
    breaches = result.counters.breaches_posted
    due_by = result.window[1]
    # The poller needs up to one whole interval to notice an end; the workflows do not.
    grace = config.grace_seconds
    if figures.design == "baseline":
        grace = max(grace, config.check_interval * 1.5 + 5)
    rows = await wait_until_ended(sessionmaker, prefix, due_by, list(breaches), grace)
    halts = await halt_times(sessionmaker, prefix)
    ends = end_figures(rows, due_by, breaches, time.time(), halts)
    figures.expiry_lateness_ms = Distribution.of(ends.expiry_lateness_ms)
    figures.expiries_missing = ends.expiries_missing
    figures.breach_to_halt_ms = Distribution.of(ends.breach_to_halt_ms)
    figures.breach_to_row_ms = Distribution.of(ends.breach_to_row_ms)
    figures.breach_to_gate_closed_ms = Distribution.of(ends.breach_to_gate_closed_ms)
    figures.breaches_missing = ends.breaches_missing
    figures.end_statuses = dict(ends.end_statuses)
    timings = await time_loss_check(engine, result.counters.started, config.query_sample)
    figures.loss_check_query_ms = Distribution.of(timings.client_ms)
    figures.loss_check_server_ms = Distribution.of(timings.server_ms)


def run_temporal(config: BenchConfig, console: Console, run_id: str) -> RunFigures:
    """The product: the embedded stack of ``make run`` (or the configured endpoints)."""
    if config.api_url is not None:
        return asyncio.run(_temporal(config, _configured(config), console, run_id, None))
    stack = EmbeddedStack(config.check_interval, config.keep_data, config.dynamic_config)
    failed = True
    try:
        console.print(f"starting the embedded stack in {stack.data_dir} …")
        endpoints = stack.start()
        figures = asyncio.run(_temporal(config, endpoints, console, run_id, stack))
        failed = False
        return figures
    finally:
        console.print("stopping the embedded stack …")
        stack.stop(failed=failed)


def _configured(config: BenchConfig) -> Endpoints:
    settings = Settings()
    database_url = settings.resolved_database_url() if settings.database_url else None
    return Endpoints(config.api_url, settings.temporal_address, database_url, config.pids)


async def _client(endpoints: Endpoints, embedded: bool) -> Client:
    assert endpoints.temporal_address is not None
    if embedded:
        return await Client.connect(
            endpoints.temporal_address, data_converter=pydantic_data_converter
        )
    return await connect(Settings())


async def _temporal(
    config: BenchConfig,
    endpoints: Endpoints,
    console: Console,
    run_id: str,
    stack: EmbeddedStack | None,
) -> RunFigures:
    assert endpoints.api_url is not None
    prefix = f"b{run_id}"
    figures = RunFigures(design="temporal", sessions_planned=config.sessions)
    engine = create_engine(endpoints.database_url, 4) if endpoints.database_url else None
    sink = HttpSink(endpoints.api_url, config.concurrency)
    origin = time.time() + IDLE_SECONDS + 1.0
    try:
        result = await drive(
            label="Temporal",
            plans=make_plan(config, origin, prefix),
            sink=sink,
            feed_interval=config.feed_interval,
            seed=config.seed,
            run_end=origin + config.run_seconds,
            steady_from=origin + config.stagger_seconds + STEADY_MARGIN,
            steady_until=min(origin + config.run_seconds, origin + config.session_seconds),
            processes=ProcessSet(endpoints.pids),
            sessionmaker=create_sessionmaker(engine) if engine else None,
            prefix=prefix,
            console=console,
            exited=stack.exited if stack else lambda: None,
        )
        _record_drive(figures, result)
        rate = result.counters.start_rate
        figures.start_rate_per_s = round(rate, 1) if rate is not None else None
        console.print("measuring: session ends, loss-check query, workflow histories …")
        if engine is not None:
            await _record_ends(figures, engine, prefix, result, config)
        else:
            figures.notes.append("no DATABASE_URL: expiry, breach and query figures skipped")
        if endpoints.temporal_address is not None:
            client = await _client(endpoints, stack is not None)
            await _record_histories(figures, client, result, config.history_sample)
        else:
            figures.notes.append("no TRADING_TEMPORAL_ADDRESS: history figures skipped")
        figures.account_cpu(result.cpu_seconds)
        if stack is None:
            await _terminate_open(sink, result.counters.started)
        else:
            figures.log_findings = stack.findings()
    finally:
        await sink.aclose()
        if engine is not None:
            await engine.dispose()
    return figures


async def _record_histories(
    figures: RunFigures, client: Client, result: Drive, sample: int
) -> None:
    workflow_ids = [workflow_id_for(session_id) for session_id in result.counters.started]
    windows = {"run": result.window}
    if result.steady_window is not None:
        windows["steady"] = result.steady_window
    history, scale = await read_histories(client, workflow_ids, windows, sample)
    figures.histories_read = history.workflows
    figures.checks = round(history.checks_in_window["run"] * scale)
    figures.checks_by_kind = {
        kind: round(count * scale) for kind, count in history.checks_by_kind.items()
    }
    figures.tick_lateness_ms = Distribution.of(history.tick_lateness_ms)
    figures.tick_scheduling_ms = Distribution.of(history.tick_scheduling_ms)
    figures.signal_to_check_ms = Distribution.of(history.signal_to_check_ms)
    figures.check_activity_ms = Distribution.of(history.check_activity_ms)
    if result.steady_window is not None:
        begin, end = result.steady_window
        steady_checks = round(history.checks_in_window["steady"] * scale)
        figures.account_steady_cpu(result.steady_cpu_seconds, end - begin, steady_checks)
    figures.timer_fire_delay_ms = Distribution.of(history.timer_fire_delay_ms)
    per_check = sum(history.checks_by_kind.values()) or 1
    figures.history_per_check = {
        "events": round(history.events / per_check, 2),
        "workflow_tasks": round(history.workflow_tasks / per_check, 2),
        **{name: round(n / per_check, 3) for name, n in history.activities.most_common()},
    }
    if history.unreadable:
        figures.notes.append(f"{history.unreadable} workflow histories could not be read")
    if scale > 1:
        figures.notes.append(f"checks extrapolated from {history.workflows} histories")


async def _terminate_open(sink: HttpSink, session_ids: list[str]) -> None:
    """On a configured stack, leave nothing of ours running (ended sessions answer 409)."""
    await asyncio.gather(*(sink.terminate(session_id) for session_id in session_ids))


def run_baseline(config: BenchConfig, console: Console, run_id: str) -> RunFigures:
    """The naive design: PostgreSQL and one poller process, nothing else."""
    data_dir = make_data_dir("baseline")
    postgres = EmbeddedPostgres(data_dir, "baseline")
    poller: subprocess.Popen[bytes] | None = None
    failed = True
    try:
        console.print(f"starting PostgreSQL and the baseline poller in {data_dir} …")
        database_url = postgres.start()
        scans = data_dir / "scans.jsonl"
        command = [sys.executable, "-m", "bench.baseline", "--database-url", database_url]
        command += ["--interval", str(config.check_interval), "--out", str(scans)]
        with open(data_dir / "poller.log", "ab") as output:
            poller = subprocess.Popen(
                command, cwd=ROOT, env=child_env(), stdout=output, stderr=output
            )
        _wait_for_first_scan(poller, scans)
        pids = {"poller": poller.pid, "postgres": postgres.pid}
        figures, result = asyncio.run(
            _baseline(config, database_url, pids, poller, console, run_id)
        )
        _stop_poller(poller)
        windows = {"run": result.window}
        if result.steady_window is not None:
            windows["steady"] = result.steady_window
        found = read_scans(scans, windows)
        figures.checks = found.checks_in_window["run"]
        figures.checks_by_kind = {"scan": figures.checks}
        if result.steady_window is not None:
            begin, end = result.steady_window
            steady_checks = found.checks_in_window["steady"]
            figures.account_steady_cpu(result.steady_cpu_seconds, end - begin, steady_checks)
        figures.tick_lateness_ms = Distribution.of(found.lateness_ms)
        figures.notes.append(f"{found.scans} scans; lateness is check start minus scan due time")
        figures.account_cpu(result.cpu_seconds)
        failed = False
        return figures
    finally:
        if poller is not None:
            _stop_poller(poller)
        postgres.stop()
        remove_data_dir(data_dir, keep=config.keep_data or failed)


def _wait_for_first_scan(poller: subprocess.Popen[bytes], scans: Path) -> None:
    """The poller's start-up (imports, connecting) is not part of its idle or working cost."""
    deadline = time.monotonic() + 60
    while not (scans.exists() and scans.stat().st_size):
        if poller.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the baseline poller did not start; see poller.log")
        time.sleep(0.1)


def _stop_poller(poller: subprocess.Popen[bytes]) -> None:
    if poller.poll() is None:
        poller.send_signal(signal.SIGTERM)
        try:
            poller.wait(timeout=30)
        except subprocess.TimeoutExpired:
            poller.kill()
            poller.wait()


async def _baseline(
    config: BenchConfig,
    database_url: str,
    pids: dict[str, int],
    poller: subprocess.Popen[bytes],
    console: Console,
    run_id: str,
) -> tuple[RunFigures, Drive]:
    prefix = f"b{run_id}"
    figures = RunFigures(design="baseline", sessions_planned=config.sessions)
    engine = create_engine(database_url, config.concurrency)
    sink = DirectSink(create_sessionmaker(engine), config.concurrency)
    origin = time.time() + IDLE_SECONDS + 1.0
    try:
        result = await drive(
            label="baseline",
            plans=make_plan(config, origin, prefix),
            sink=sink,
            feed_interval=config.feed_interval,
            seed=config.seed,
            run_end=origin + config.run_seconds,
            steady_from=origin + config.stagger_seconds + STEADY_MARGIN,
            steady_until=min(origin + config.run_seconds, origin + config.session_seconds),
            processes=ProcessSet(pids),
            sessionmaker=create_sessionmaker(engine),
            prefix=prefix,
            console=console,
            exited=lambda: "poller" if poller.poll() is not None else None,
        )
        _record_drive(figures, result)
        console.print("measuring: session ends, loss-check query …")
        await _record_ends(figures, engine, prefix, result, config)
    finally:
        await sink.aclose()
        await engine.dispose()
    return figures, result
