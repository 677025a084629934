"""Turn what a run did into its figures: session ends, query timings, workflow histories."""

import time

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bench.config import BenchConfig
from bench.dbfigures import end_figures, halt_times, time_loss_check, wait_until_ended
from bench.drive import Drive
from bench.figures import Distribution, RunFigures
from bench.histories import read_histories
from store.db import create_sessionmaker
from workflows.session import workflow_id_for


def record_drive(figures: RunFigures, result: Drive) -> None:
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


async def record_ends(
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
    figures.expiry_to_gate_closed_ms = Distribution.of(ends.expiry_to_gate_closed_ms)
    figures.breaches_missing = ends.breaches_missing
    figures.end_statuses = dict(ends.end_statuses)
    timings = await time_loss_check(engine, result.counters.started, config.query_sample)
    figures.loss_check_query_ms = Distribution.of(timings.client_ms)
    figures.loss_check_server_ms = Distribution.of(timings.server_ms)


async def record_histories(figures: RunFigures, client: Client, result: Drive, sample: int) -> None:
    workflow_ids = [workflow_id_for(session_id) for session_id in result.counters.started]
    windows = {"run": result.window}
    if result.steady_window is not None:
        windows["steady"] = result.steady_window
    history, scale = await read_histories(client, workflow_ids, windows, sample)
    figures.histories_read = history.workflows
    # Every accepted fill or mark was checked by the API as it was recorded.
    figures.workflow_checks = round(history.checks_in_window["run"] * scale)
    figures.ingest_checks = result.counters.posts_ok_between(*result.window)
    figures.checks = figures.workflow_checks + figures.ingest_checks
    figures.checks_by_kind = {
        kind: round(count * scale) for kind, count in history.checks_by_kind.items()
    }
    figures.tick_lateness_ms = Distribution.of(history.tick_lateness_ms)
    figures.tick_scheduling_ms = Distribution.of(history.tick_scheduling_ms)
    figures.signal_to_check_ms = Distribution.of(history.signal_to_check_ms)
    figures.check_activity_ms = Distribution.of(history.check_activity_ms)
    if result.steady_window is not None:
        begin, end = result.steady_window
        steady_checks = round(
            history.checks_in_window["steady"] * scale
        ) + result.counters.posts_ok_between(begin, end)
        steady_ticks = history.tick_lateness_in_ms.get("steady", [])
        figures.tick_lateness_steady_ms = Distribution.of(steady_ticks)
        figures.steady_window = (round(begin, 3), round(end, 3))
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
