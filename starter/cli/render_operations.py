"""How ``sessionctl`` shows alerts and the fleet's load."""

from collections.abc import Iterable
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from starter.api.schemas_operations import AlertOut
from starter.cli.render import moment
from starter.services.load import FleetLoad, ProcessLoad, per_minute


def utc(value: datetime | None) -> datetime | None:
    """A time given without a zone is UTC, as everything the service prints."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def alerts_table(alerts: Iterable[AlertOut]) -> Table:
    table = Table(title="Alerts", title_justify="left")
    for column in ("id", "raised", "kind", "session", "state", "message"):
        table.add_column(column, overflow="fold")
    for alert in alerts:
        state = (
            Text("open", style="bold red")
            if alert.acknowledged_at is None
            else Text(f"ack {alert.acknowledged_by} {moment(alert.acknowledged_at)}", style="dim")
        )
        table.add_row(
            str(alert.id),
            moment(alert.created_at),
            alert.kind,
            alert.session_id or "-",
            state,
            alert.message,
        )
    return table


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f} MiB"


def _cpu(before: ProcessLoad | None, now: ProcessLoad) -> str:
    rate = per_minute(before, now, "cpu_seconds")
    return "-" if rate is None else f"{rate / 60:.0%}"


def top_view(now: FleetLoad, before: FleetLoad | None, task_queue: str) -> RenderableType:
    """Sessions, checks per minute, backlog, per-process CPU and memory, open alerts."""
    sessions = Table(title="Sessions", title_justify="left")
    sessions.add_column("status")
    sessions.add_column("count", justify="right")
    for status, count in sorted(now.sessions.items()):
        sessions.add_row(status, str(count))

    earlier = {p.target: p for p in before.processes} if before else {}
    processes = Table(title="Processes", title_justify="left")
    for column in ("target", "up", "CPU", "memory", "fds", "checks/min", "in flight", "cached"):
        processes.add_column(column, justify="left" if column == "target" else "right")
    total_checks = 0.0
    for process in now.processes:
        rate = per_minute(earlier.get(process.target), process, "checks")
        total_checks += rate or 0.0
        values = process.values
        processes.add_row(
            process.target,
            Text("up", style="green") if process.up else Text("down", style="red"),
            _cpu(earlier.get(process.target), process),
            _mib(values.get("memory_bytes")),
            f"{values['open_fds']:.0f}" if "open_fds" in values else "-",
            "-" if rate is None else f"{rate:.1f}",
            f"{values['activities_in_flight']:.0f}" if "activities_in_flight" in values else "-",
            f"{values['sticky_cache']:.0f}" if "sticky_cache" in values else "-",
        )

    backlog = now.backlog
    queue = (
        Text(f"task queue {task_queue}: unreachable", style="red")
        if backlog is None
        else Text(
            f"task queue {task_queue}: {now.workflow_pollers} workflow pollers, backlog "
            f"{backlog.workflow_tasks} workflow / {backlog.activity_tasks} activity tasks, "
            f"oldest {backlog.oldest_seconds:.0f} s; checks {total_checks:.1f}/min"
        )
    )
    alerts = Text(
        "open alerts: "
        + (", ".join(f"{k} {n}" for k, n in sorted(now.open_alerts.items())) or "none"),
        style="bold red" if now.open_alerts else "green",
    )
    parts: list[RenderableType] = [queue, sessions, processes, alerts]
    if now.latest_alerts:
        parts.append(alerts_table(now.latest_alerts))
    return Group(*parts)
