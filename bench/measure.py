"""Turn what a run did into its figures: session ends, query timings, workflow histories."""

import itertools
import time

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bench.config import BenchConfig
from bench.dbfigures import (
    end_figures,
    halt_times,
    kill_targets,
    session_rows,
    time_loss_check,
    wait_until_ended,
)
from bench.drive import Drive
from bench.figures import Distribution, RunFigures
from bench.histories import read_histories
from bench.sweeps import Series, by_label, delta, sweep_metrics, total
from domain.status import is_terminal
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
    figures.cpu_timeline = cores_timeline(result.cpu_timeline)
    figures.breaches_posted = len(counters.breaches_posted)
    figures.feed = {
        "posts_ok": counters.posts_ok,
        "posts_after_end": counters.posts_ended,
        "posts_failed": counters.posts_failed,
    }
    figures.errors = dict(counters.errors.most_common(10))
    if result.market is not None:
        figures.market_batches = result.market.counters.summary()
        for error, count in result.market.counters.errors.items():
            figures.errors[f"POST /marks: {error}"] = count


def cores_timeline(points: list[dict[str, float]]) -> list[dict[str, float]]:
    """Cores used per interval by each part, the driver, and the machine's other tenants."""
    out = []
    for before, after in itertools.pairwise(points):
        seconds = after["t"] - before["t"]
        if seconds <= 0:
            continue
        used = {k: (after[k] - before[k]) / seconds for k in after if k not in ("t",)}
        ours = sum(v for k, v in used.items() if k != "machine")
        row = {k: round(v, 4) for k, v in used.items() if k != "machine"}
        row["others"] = round(used["machine"] - ours, 4)
        row["t"] = after["t"]
        out.append(row)
    return out


def _checks(workers: Series, api: Series) -> dict[str, int]:
    """Loss checks over a window, by who made them (the metrics' own counts)."""
    by_source = by_label(workers, "trading_session_checks_total", "source")
    checks = {source: round(value) for source, value in by_source.items()}
    checks["api"] = round(total(api, "trading_ingest_checks_total"))
    return checks


def record_sweeps(figures: RunFigures, result: Drive, config: BenchConfig) -> None:
    """Checks by source, sweep lateness and the gaps between sweeps (issue 13)."""
    workers, api = result.worker_series, result.api_series
    if "run_begin" in workers and "run_end" in workers:
        run_w = delta(workers["run_end"], workers["run_begin"])
        run_a = delta(api.get("run_end", {}), api.get("run_begin", {}))
        figures.sweep_run = sweep_metrics(run_w, run_a)
        figures.checks_by_kind = _checks(run_w, run_a)
        figures.checks = sum(figures.checks_by_kind.values())
        figures.workflow_checks = figures.checks_by_kind.get("workflow", 0)
        figures.sweep_checks = figures.checks_by_kind.get("sweep", 0)
        figures.ingest_checks = figures.checks_by_kind.get("api", 0)
    if "steady_begin" in workers and "steady_end" in workers:
        steady_w = delta(workers["steady_end"], workers["steady_begin"])
        steady_a = delta(api.get("steady_end", {}), api.get("steady_begin", {}))
        figures.sweep_steady = sweep_metrics(steady_w, steady_a)
        figures.steady_checks_by_kind = _checks(steady_w, steady_a)
    begin, end = result.window
    seen = result.sweeps.figures(begin, end)
    figures.sweep_table = seen
    figures.check_gap_ms = seen["gap_ms"]  # type: ignore[assignment]
    figures.sweep_due_to_swept_ms = seen["due_to_swept_ms"]  # type: ignore[assignment]
    lateness = figures.sweep_run.get("lateness_p99_bound_s")
    figures.sweep_lateness_p99_bound_ms = None if lateness is None else float(lateness) * 1000  # type: ignore[arg-type]
    # Did each sweep check every ACTIVE session? checked vs the ACTIVE count sampled nearest.
    coverage = []
    for record in result.sweeps.within(begin, end):
        if not result.active_samples:
            break
        at, active = min(result.active_samples, key=lambda s: abs(s[0] - record.swept_at))
        if active and abs(at - record.swept_at) <= 2.5:
            coverage.append(record.checked * record.shards / active)
    figures.sweep_coverage = Distribution.of(coverage)
    figures.sweep_coverage_min = round(min(coverage), 4) if coverage else None
    if result.steady_window is not None:
        steady_begin, steady_end = result.steady_window
        steady_checks = sum(figures.steady_checks_by_kind.values())
        figures.steady_window = (round(steady_begin, 3), round(steady_end, 3))
        figures.account_steady_cpu(
            result.steady_cpu_seconds, steady_end - steady_begin, steady_checks
        )


async def record_crash(
    figures: RunFigures, engine: AsyncEngine, prefix: str, result: Drive
) -> None:
    """The flash crash: how soon after its batch was answered each gate was closed and each
    session ended (``ended_at``: the workflow's decision, ENDING; ``updated_at``: its final
    row), over the sessions holding a crashed symbol that were ACTIVE when it was sent."""
    crash = result.crash
    if crash is None or crash.sent_at is None:
        return
    sessionmaker = create_sessionmaker(engine)
    crashed = {plan.session_id for plan in result.plans if plan.crash}
    rows = [r for r in await session_rows(sessionmaker, prefix) if r.session_id in crashed]
    halts = await halt_times(sessionmaker, prefix)
    answered = crash.answered_at or crash.sent_at
    held = [r for r in rows if r.ended_at is None or r.ended_at >= crash.sent_at - 1.0]
    gate = [(halts[r.session_id] - answered) * 1000 for r in held if r.session_id in halts]
    ended = [(r.ended_at - answered) * 1000 for r in held if r.ended_at is not None]
    final = [
        ((r.updated_at or r.ended_at) - answered) * 1000
        for r in held
        if r.ended_at is not None and (r.updated_at or r.ended_at) is not None
    ]
    reasons: dict[str, int] = {}
    for r in held:
        reasons[str(r.end_reason)] = reasons.get(str(r.end_reason), 0) + 1
    figures.flash_crash = {
        "symbols": len(crash.symbols),
        "sessions": len(held),
        "batch_ms": round((answered - crash.sent_at) * 1000, 1),
        "answer": crash.answer.__dict__ if crash.answer else None,
        "error": crash.error,
        "gates_closed": len(gate),
        "gate_closed_after_answer_ms": Distribution.of(gate),
        "ended": len(ended),
        "ended_after_answer_ms": Distribution.of(ended),
        "final_row_after_answer_ms": Distribution.of(final),
        "end_reasons": reasons,
    }


def _after(at: float | None, origin: float | None) -> float | None:
    return None if at is None or origin is None else round((at - origin) * 1000, 1)


async def record_kill(figures: RunFigures, engine: AsyncEngine, result: Drive) -> None:
    """The kill switch (issue 16), all from the moment the call was sent: its answer, when
    the polls saw every gate closed and every session terminal, and per target the audited
    closing, the fan-out's signal, the workflow's decision (``ended_at``, ENDING) and the
    final row (``updated_at`` of the terminal status)."""
    record = result.kill
    if record is None:
        return
    sent = record.sent_at
    answer = record.answer or {}
    out: dict[str, object] = {
        "scope": record.scope,
        "pressed": sent is not None,
        "status_code": record.status_code,
        "error": record.error,
        "kill_switch_id": record.kill_switch_id,
        "open_at_call": record.open_at_call,
        "gates_open_at_call": record.gates_open_at_call,
        "sessions_targeted": answer.get("sessions_targeted"),
        "fanout_started": answer.get("fanout_started"),
        "answer_ms": _after(record.answered_at, sent),
        # Bracket of the commit that closed the gates: the last poll still seeing one open
        # began at the first figure; the first seeing none had finished by the second.
        "gates_last_seen_open_ms": _after(record.last_open_seen_at, sent),
        "gates_closed_ms": _after(record.gates_closed_seen_at, sent),
        "all_ended_ms": _after(record.all_ended_seen_at, sent),
        "not_ended_when_watch_stopped": record.not_ended_at_stop,
        "watched_for_s": record.wait_seconds,
        "gate_polls": record.gate_polls,
        "end_polls": record.end_polls,
    }
    if record.progress is not None:
        progress = record.progress
        out["progress"] = {
            key: progress.get(key)
            for key in ("sessions_targeted", "sessions_ended", "sessions_winding_down")
        } | {
            "signals_sent": progress.get("signals_sent"),
            "signal_failures": len(progress.get("signal_failures") or {}),
        }
    kill_id = record.kill_switch_id
    if sent is not None and kill_id is not None:
        targets = await kill_targets(create_sessionmaker(engine), kill_id)
        terminal = [t for t in targets if is_terminal(t.status)]
        statuses: dict[str, int] = {}
        reasons: dict[str, int] = {}
        for target in targets:
            statuses[target.status.value] = statuses.get(target.status.value, 0) + 1
            reasons[str(target.end_reason)] = reasons.get(str(target.end_reason), 0) + 1

        def dist(values: list[float | None]) -> Distribution:
            return Distribution.of([(v - sent) * 1000 for v in values if v is not None])

        out |= {
            "targets": len(targets),
            "ended": len(terminal),
            "gate_closed_audit_ms": dist([t.gate_closed_at for t in targets]),
            "signalled_ms": dist([t.signalled_at for t in targets]),
            "ending_ms": dist([t.ended_at for t in targets]),
            "final_row_ms": dist([t.updated_at for t in terminal]),
            "statuses": statuses,
            "end_reasons": reasons,
        }
    out["samples"] = record.samples
    figures.kill_switch = out


async def record_ends(
    figures: RunFigures, engine: AsyncEngine, prefix: str, result: Drive, config: BenchConfig
) -> None:
    """Expiry lateness, breach-to-halt and the loss-check query, from the database."""
    sessionmaker = create_sessionmaker(engine)
    breaches = result.counters.breaches_posted
    due_by = result.window[1]
    crashed = [p.session_id for p in result.plans if p.crash] if result.crash else []
    # The poller needs up to one whole interval to notice an end; the workflows do not.
    grace = config.grace_seconds
    if figures.design == "baseline":
        grace = max(grace, config.check_interval * 1.5 + 5)
    if crashed:
        grace = max(grace, 35.0)  # the flash crash's sessions are given their 30 s
    rows = await wait_until_ended(sessionmaker, prefix, due_by, [*breaches, *crashed], grace)
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
    # Checks are counted from the metrics (record_sweeps); histories tell their kinds.
    figures.history_checks_by_kind = {
        kind: round(count * scale) for kind, count in history.checks_by_kind.items()
    }
    figures.tick_lateness_ms = Distribution.of(history.tick_lateness_ms)
    figures.tick_scheduling_ms = Distribution.of(history.tick_scheduling_ms)
    figures.signal_to_check_ms = Distribution.of(history.signal_to_check_ms)
    figures.check_activity_ms = Distribution.of(history.check_activity_ms)
    if result.steady_window is not None:
        steady_ticks = history.tick_lateness_in_ms.get("steady", [])
        figures.tick_lateness_steady_ms = Distribution.of(steady_ticks)
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
