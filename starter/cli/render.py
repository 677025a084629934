"""How ``sessionctl`` shows sessions: Rich tables and detail grids, money as plain decimals."""

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from domain.session_messages import SessionView
from domain.status import SessionStatus, is_terminal
from starter.api.risk_schemas import AccountRiskOut, KillSwitchOut
from starter.api.schemas import GateOut, SessionOut

STATUS_STYLES = {
    SessionStatus.PENDING: "yellow",
    SessionStatus.ACTIVE: "green",
    SessionStatus.ENDING: "yellow",
    SessionStatus.CLEANUP_FAILED: "bold red",
    SessionStatus.EXPIRED: "cyan",
    SessionStatus.LOSS_LIMIT: "red",
    SessionStatus.TERMINATED: "magenta",
}


def money(amount: Decimal) -> str:
    """``1000``, ``-12.5``, ``0``: never ``1E+3`` or ``0E-8`` (the API's format)."""
    return format(amount.normalize(), "f")


def moment(value: datetime | None) -> str:
    """UTC, to the second: what an operator compares with a deadline."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def percent(fraction: float) -> str:
    return f"{fraction:.1%}"


def status_text(status: SessionStatus) -> Text:
    return Text(str(status), style=STATUS_STYLES.get(status, ""))


def sessions_table(sessions: Iterable[SessionOut]) -> Table:
    """The ``list`` view: one row per session, newest first as the service returns them."""
    table = Table(title="Trading sessions", title_justify="left")
    # Ids fold rather than truncate: an operator copies them into the next command.
    table.add_column("id", overflow="fold")
    table.add_column("account", overflow="fold")
    table.add_column("algorithm", overflow="fold")
    table.add_column("status")
    table.add_column("end time (UTC)")
    table.add_column("loss limit", justify="right")
    table.add_column("realized PnL", justify="right")
    table.add_column("end reason")
    for session in sessions:
        table.add_row(
            session.id,
            session.account_id,
            session.algorithm_id,
            status_text(session.status),
            moment(session.end_time),
            money(session.loss_limit),
            money(session.realized_pnl),
            str(session.end_reason or "-"),
        )
    return table


def _grid(title: str, rows: Iterable[tuple[str, str | Text]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.title = title
    grid.title_justify = "left"
    grid.title_style = "bold"
    grid.add_column(style="dim")
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(name, value)
    return grid


def session_details(session: SessionOut, *, expect_live: bool = True) -> RenderableType:
    """The stored session and, while it runs, the workflow's live view.

    ``expect_live`` says a running session should have one: its absence is then worth a note.
    """
    rows: list[tuple[str, str | Text]] = [
        ("status", status_text(session.status)),
        ("account", session.account_id),
        ("algorithm", session.algorithm_id),
        ("start time", moment(session.start_time)),
        ("end time", moment(session.end_time)),
        ("loss limit", money(session.loss_limit)),
        ("realized PnL", money(session.realized_pnl)),
        ("warning thresholds", _thresholds(session.warning_thresholds)),
        ("workflow id", session.workflow_id),
        ("created at", moment(session.created_at)),
    ]
    if session.end_reason is not None:
        rows += [
            ("end reason", str(session.end_reason)),
            ("end detail", session.end_detail or "-"),
            ("ended at", moment(session.ended_at)),
        ]
    if session.risk is not None:
        rows.append(("trading state", session.risk.trading_state))
        for limit in session.risk.limits:
            if limit.limit is not None:
                used = "-" if limit.used_pct is None else f"{limit.used_pct:g}%"
                rows.append((limit.name.replace("_", " "), f"{money(limit.limit)} ({used} used)"))
        for name, value in session.risk.order_limits.items():
            rows.append((name.replace("_", " "), value))
    parts: list[RenderableType] = [_grid(f"Session {session.id}", rows)]
    if session.live is not None:
        parts += [Text(""), live_details(session.live)]
    elif expect_live and not is_terminal(session.status):
        parts += [Text(""), Text("live view unavailable: the workflow did not answer", "yellow")]
    return Group(*parts)


def live_details(view: SessionView) -> Table:
    """What the workflow knows now (its ``get_status`` query or an update's answer)."""
    rows: list[tuple[str, str | Text]] = [
        ("status", status_text(view.status)),
        ("end time", moment(view.end_time)),
        ("loss limit", money(view.loss_limit)),
        ("loss", money(view.loss)),
        ("loss used", percent(view.loss_used)),
        ("time used", percent(view.time_used)),
        ("realized PnL", money(view.realized_pnl)),
        ("unrealized PnL", money(view.unrealized_pnl)),
        ("checks", str(view.checks)),
        ("last check", moment(view.last_check_at)),
        ("paused", Text("yes", "bold red") if view.paused else "no"),
        ("time warnings sent", _thresholds(view.time_warnings_sent)),
        ("loss warnings sent", _thresholds(view.loss_warnings_sent)),
    ]
    if view.end_reason is not None:
        rows.append(("end reason", str(view.end_reason)))
    return _grid(f"Live view of {view.session_id}", rows)


def _thresholds(fractions: list[float]) -> str:
    """``80%, 90%``: thresholds are round numbers, shown without decimals they lack."""
    return ", ".join(f"{t * 100:g}%" for t in fractions) if fractions else "none"


def gate_line(gate: GateOut) -> Text:
    """``OPEN`` or ``CLOSED (reason)``: the pre-trade answer in one line."""
    line = Text(f"Trading gate of {gate.session_id}: ")
    if gate.open:
        line.append("OPEN", "bold green")
    else:
        line.append("CLOSED", "bold red")
        if gate.reason:
            line.append(f" ({gate.reason})")
    return line


def account_risk_details(risk: AccountRiskOut) -> RenderableType:
    """An account's day: its loss over its sessions against its daily loss limit."""
    limit = "none" if risk.daily_loss_limit is None else money(risk.daily_loss_limit)
    used = "-" if risk.used_pct is None else f"{risk.used_pct:.2f} %"
    rows: list[tuple[str, str | Text]] = [
        ("day (UTC)", risk.day.isoformat()),
        ("daily loss limit", limit),
        ("loss", Text(money(risk.loss), "red" if risk.limit_reached else "")),
        ("used", used),
        ("realized / unrealized", f"{money(risk.realized_pnl)} / {money(risk.unrealized_pnl)}"),
        ("sessions", f"{risk.sessions} today, {risk.open_sessions} open"),
        ("warned today", "yes" if risk.warned else "no"),
        ("limit reached today", Text("yes", "red") if risk.limit_reached else "no"),
    ]
    if risk.kill_switch_id is not None:
        rows.append(("locked", Text(f"kill switch {risk.kill_switch_id} engaged", "red")))
    return _grid(f"Account {risk.account_id}", rows)


def kill_switch_details(switch: KillSwitchOut) -> RenderableType:
    """A kill switch: its scope, who pressed it, and how far its sessions are."""
    rows: list[tuple[str, str | Text]] = [
        ("scope", switch.scope.describe()),
        ("engaged", Text("yes", "red") if switch.engaged else Text("re-armed", "green")),
        ("reason", switch.reason),
        ("engaged by", f"{switch.engaged_by} at {moment(switch.engaged_at)}"),
        ("sessions", f"{switch.sessions_targeted} closed, {switch.sessions_ended} ended"),
        ("signalled", str(switch.signals_sent)),
    ]
    if switch.rearmed_at is not None:
        rows.append(("re-armed by", f"{switch.rearmed_by} at {moment(switch.rearmed_at)}"))
    if switch.winding_down:
        rows.append(("winding down", ", ".join(switch.winding_down)))
    for session_id, error in switch.signal_failures.items():
        rows.append(("not reached", f"{session_id}: {error}"))
    return _grid(f"Kill switch {switch.id}", rows)
