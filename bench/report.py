"""The results as a Rich table, side by side with the baseline, and as JSON under results/."""

import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.config import BenchConfig
from bench.figures import TARGETS, RunFigures

Getter = Callable[[RunFigures], float | None]


def _kill_gates(figures: RunFigures) -> float | None:
    return figures.kill("gates_closed_ms")


def _kill_ended(figures: RunFigures) -> float | None:
    return figures.kill("all_ended_ms")


# (label, target key or None, getter, compare with the baseline)
ROWS: list[tuple[str, str | None, Getter, bool]] = [
    ("sessions started", None, lambda f: float(f.sessions_started), False),
    ("sessions held (peak ACTIVE)", None, lambda f: float(f.sessions_held), False),
    ("checks executed", None, lambda f: float(f.checks), False),
    ("  by the fleet sweep", None, lambda f: float(f.sweep_checks), False),
    (
        "  by the API, as fills and mark batches arrive",
        None,
        lambda f: float(f.ingest_checks),
        False,
    ),
    ("  by woken workflows", None, lambda f: float(f.workflow_checks), False),
    ("sweeps seen (fleet_sweeps)", None, lambda f: _num(f.sweep_table.get("sweeps")), False),
    (
        "sweep lateness p99, start (ms, bucket bound)",
        "sweep_lateness_p99_ms",
        lambda f: f.sweep_lateness_p99_bound_ms,
        False,
    ),
    ("sweep due-to-swept p99 (ms)", None, lambda f: f.sweep_due_to_swept_ms.p99, False),
    (
        "gap between a session's sweep checks, max (ms)",
        "check_gap_max_ms",
        lambda f: f.check_gap_ms.max,
        False,
    ),
    ("sweep checked / ACTIVE, min", None, lambda f: f.sweep_coverage_min, False),
    ("scan lateness p99 (baseline, ms)", None, lambda f: f.tick_lateness_ms.p99, True),
    (
        "expiry lateness p99 (ms)",
        "expiry_lateness_p99_ms",
        lambda f: f.expiry_lateness_ms.p99,
        True,
    ),
    ("breach-to-ENDING p50 (ms)", None, lambda f: f.breach_to_halt_ms.p50, True),
    ("breach-to-ENDING p99 (ms)", None, lambda f: f.breach_to_halt_ms.p99, True),
    (
        "breach-to-gate-closed p99 (ms)",
        "breach_to_gate_closed_p99_ms",
        lambda f: f.breach_to_gate_closed_ms.p99,
        True,
    ),
    ("breach-to-row-written p99 (ms)", None, lambda f: f.breach_to_row_ms.p99, True),
    ("signal-to-check p99 (ms)", None, lambda f: f.signal_to_check_ms.p99, False),
    ("mark batch p99 (ms)", None, lambda f: _batch(f, "p99"), False),
    ("flash crash: sessions", None, lambda f: _num(f.flash_crash.get("sessions")), False),
    (
        "  gate closed after answer, max (ms)",
        "flash_gate_closed_max_ms",
        lambda f: f.flash("gate_closed_after_answer_ms"),
        False,
    ),
    (
        "  ended (ENDING) after answer, max (ms)",
        "flash_ended_max_ms",
        lambda f: f.flash("ended_after_answer_ms"),
        False,
    ),
    (
        "  final row after answer, max (ms)",
        None,
        lambda f: f.flash("final_row_after_answer_ms"),
        False,
    ),
    ("kill switch: sessions targeted", None, lambda f: _num(f.kill_switch.get("targets")), False),
    ("  call answered (ms)", None, lambda f: f.kill("answer_ms"), False),
    ("  every gate closed, after the call (ms)", "kill_gates_closed_ms", _kill_gates, False),
    ("  every session ended, after the call (ms)", "kill_all_ended_ms", _kill_ended, False),
    ("API start rate (sessions/s)", None, lambda f: f.start_rate_per_s, False),
    ("loss-check query p99 (ms)", None, lambda f: f.loss_check_query_ms.p99, True),
    ("idle stack (cores)", None, lambda f: f.idle_cores, True),
    ("steady stack (cores)", "steady_cores", lambda f: f.steady_cores, True),
    ("CPU-s per 1000 checks", None, lambda f: f.cpu_per_1000_checks, True),
    ("  steady state (all started)", None, lambda f: f.steady_cpu_per_1000_checks, True),
    ("peak memory, all parts (MB PSS)", None, lambda f: f.peak_pss_mb.get("total"), True),
]


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _batch(figures: RunFigures, stat: str) -> float | None:
    latency = figures.market_batches.get("latency_ms")
    return latency.get(stat) if isinstance(latency, dict) else None


_TARGETS = {target.key: target for target in TARGETS}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _cell(figures: RunFigures | None, getter: Getter, key: str | None) -> str:
    if figures is None:
        return ""
    value = getter(figures)
    text = _fmt(value)
    if key is not None and figures.design == "temporal":
        met = _TARGETS[key].met(figures)
        text += "" if met is None else (" [green]✓[/]" if met else " [red]✗[/]")
    return text


def _parts(figures: RunFigures | None, of: Callable[[RunFigures], dict[str, float]]) -> str:
    if figures is None:
        return ""
    return "\n".join(f"{name} {value:g}" for name, value in of(figures).items() if name != "total")


def ratio(main: float | None, baseline: float | None) -> float | None:
    if main is None or baseline is None or main == 0:
        return None
    return round(baseline / main, 2)


def table(main: RunFigures | None, baseline: RunFigures | None, config: BenchConfig) -> Table:
    title = (
        f"{config.sessions} sessions, {config.minutes:g} min run, "
        f"{config.session_minutes:g} min sessions, checks every {config.check_interval:g} s"
    )
    if config.api_url is None:
        title += f", {_processes(config.worker_processes, 'worker')}"
        title += f", {_processes(config.api_workers, 'API')}"
    result = Table(title=title)
    result.add_column("figure")
    result.add_column("target", justify="right")
    result.add_column("Temporal design", justify="right")
    if baseline is not None:
        result.add_column("baseline poller", justify="right")
        result.add_column("baseline ÷ Temporal", justify="right")
    for label, key, getter, compare in ROWS:
        row = [label, _TARGETS[key].text if key else "", _cell(main, getter, key)]
        if baseline is not None:
            row.append(_cell(baseline, getter, None))
            ratio_value = ratio(getter(main), getter(baseline)) if compare and main else None
            row.append(_fmt(ratio_value) if ratio_value is not None else "")
        result.add_row(*row)
    for label, getter_of in (
        ("CPU-s by part", lambda f: f.cpu_seconds),
        ("steady cores by part", lambda f: f.steady_cpu_cores),
        ("idle CPU-s per s by part", lambda f: f.idle_cpu_per_s),
        ("peak RSS by part (MB)", lambda f: f.peak_rss_mb),
    ):
        parts = [label, "", _parts(main, getter_of)]
        if baseline is not None:
            parts += [_parts(baseline, getter_of), ""]
        result.add_row(*parts)
    return result


def print_report(
    console: Console, main: RunFigures | None, baseline: RunFigures | None, config: BenchConfig
) -> None:
    console.print(table(main, baseline, config))
    for figures in (main, baseline):
        if figures is None:
            continue
        console.print(
            f"[bold]{figures.design}[/]: {figures.window_seconds:.0f} s measured; "
            f"checks {figures.checks_by_kind}; feed {figures.feed}; "
            f"end statuses {figures.end_statuses}; log lines {figures.log_findings}"
        )
        for error, count in figures.errors.items():
            console.print(f"  [red]error[/] x{count}: {error}")
        for note in figures.notes:
            console.print(f"  [yellow]note:[/] {note}")


def write_json(
    config: BenchConfig, run_id: str, main: RunFigures | None, baseline: RunFigures | None
) -> Path:
    now = datetime.now(UTC)
    config_json = {
        k: str(v) if isinstance(v, Path) else v
        for k, v in asdict(config).items()
        if k not in ("api_key", "market_key", "risk_key")  # secrets: never written down
    }
    document: dict[str, Any] = {
        "run_id": run_id,
        "finished_at": now.isoformat(),
        "host": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "config": config_json,
        "temporal": asdict(main) if main else None,
        "baseline": asdict(baseline) if baseline else None,
        "targets": {
            target.key: {"target": target.text, "met": target.met(main)} for target in TARGETS
        }
        if main
        else None,
        "ratios_baseline_over_temporal": {
            label: ratio(getter(main), getter(baseline))
            for label, _, getter, compare in ROWS
            if compare and main and baseline
        },
    }
    config.results_dir.mkdir(parents=True, exist_ok=True)
    path = config.results_dir / f"{now:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path


def _processes(count: int, kind: str) -> str:
    return f"{count} {kind} process{'es' if count > 1 else ''}"
