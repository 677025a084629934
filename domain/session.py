"""The rules of one trading session: when it is open, its trading gate, its clock, its shapes.

The API, the CLI, the workflow and the activities all ask these; none spells them out again.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from domain.limits import Verdict, judge, loss_used, session_loss, time_used
from domain.positions import plain_money
from domain.risk import TradingState, drawdown, equity, profit_target_reached, trading_state
from domain.session_messages import (
    SYSTEM_ACTOR,
    PnlSnapshot,
    SessionResult,
    SessionSpec,
    SessionState,
    SessionView,
)
from domain.status import EndReason, SessionStatus

# A session takes fills, marks, orders and limit changes only while trading can still happen.
OPEN_STATUSES = frozenset({SessionStatus.PENDING, SessionStatus.ACTIVE})


def is_open(status: SessionStatus) -> bool:
    """Whether the session can still trade or change: PENDING or ACTIVE."""
    return status in OPEN_STATUSES


def workflow_id_for(session_id: str) -> str:
    """The id of a session's workflow: one per session, so a repeated start finds it."""
    return f"trading-session-{session_id}"


@dataclass(frozen=True)
class Gate:
    """The pre-trade check: may the session's algorithm place an order now, and if not, why."""

    open: bool
    reason: str | None


def gate_of(status: SessionStatus, gate_open: bool, gate_reason: str | None) -> Gate:
    """Open only while the session is ACTIVE and its gate is not closed (paused, halting)."""
    if status is not SessionStatus.ACTIVE:
        return Gate(open=False, reason=f"session is {status}")
    return Gate(open=gate_open, reason=None if gate_open else gate_reason)


class TimeRefusal(ValueError):
    """A start or deadline the session's clock rules refuse; ``field`` names the culprit."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def check_new_session_times(
    start: datetime, end: datetime, now: datetime, max_ahead: timedelta, longest: timedelta
) -> None:
    """A new session starts at most ``max_ahead`` from now, ends in the future and after its
    start, and lasts at most ``longest``; raises :class:`TimeRefusal` otherwise."""
    if start - now > max_ahead:
        raise TimeRefusal(
            f"start_time may be at most {max_ahead / timedelta(days=1):g} days ahead",
            "start_time",
        )
    if end <= now:
        raise TimeRefusal("end_time must be in the future", "end_time")
    if end <= start:
        raise TimeRefusal("end_time must be after start_time", "end_time")
    if end - start > longest:
        raise TimeRefusal(
            f"a session may last at most {longest / timedelta(hours=1):g} hours", "end_time"
        )


def check_extension(
    new_end: datetime, current_end: datetime, start: datetime, now: datetime, longest: timedelta
) -> None:
    """A deadline moves only later, only before it is reached, and never past ``longest``
    from the start; raises :class:`TimeRefusal` otherwise."""
    if new_end.tzinfo is None:
        raise TimeRefusal("end_time must carry a time zone", "end_time")
    if now >= current_end:
        raise TimeRefusal("the deadline has been reached; the session is expiring", "end_time")
    if new_end <= now:
        raise TimeRefusal("end_time must be in the future", "end_time")
    if new_end <= current_end:
        raise TimeRefusal(f"end_time must be later than the current {current_end}", "end_time")
    if new_end - start > longest:
        raise TimeRefusal(f"a session may last at most {longest}", "end_time")


def view_of(spec: SessionSpec, state: SessionState, now: datetime) -> SessionView:
    """The live view of a running session (the workflow's query), from its spec and state."""
    return SessionView(
        session_id=spec.session_id,
        status=state.status,
        end_time=state.end_time,
        loss_limit=state.loss_limit,
        loss=state.loss,
        realized_pnl=state.realized_pnl,
        unrealized_pnl=state.unrealized_pnl,
        loss_used=loss_used(state.loss, state.loss_limit),
        time_used=time_used(now, spec.start_time, state.end_time),
        checks=state.checks,
        last_check_at=state.last_check_at,
        paused=state.paused,
        time_warnings_sent=state.time_warnings_sent,
        loss_warnings_sent=state.loss_warnings_sent,
        end_reason=state.end_reason,
        ended_at=state.ended_at,
        trading_state=state.trading_state,
        reducing_at=spec.reducing_at,
        max_drawdown=spec.max_drawdown,
        drawdown=state.drawdown,
        drawdown_used=(
            None if spec.max_drawdown is None else float(state.drawdown / spec.max_drawdown)
        ),
        peak_equity=state.peak_equity,
        profit_target=spec.profit_target,
    )


def result_of(spec: SessionSpec, state: SessionState) -> SessionResult:
    """What an ended session's workflow returns; the state must carry its end."""
    if state.end_reason is None or state.ended_at is None:
        raise ValueError(f"session {spec.session_id} has not ended")
    return SessionResult(
        session_id=spec.session_id,
        status=state.status,
        end_reason=state.end_reason,
        ended_at=state.ended_at,
        realized_pnl=state.realized_pnl,
    )


def is_halted(state: SessionState) -> bool:
    """No order may pass: paused, not yet or no longer ACTIVE, or ending."""
    return (
        state.paused
        or state.status is not SessionStatus.ACTIVE
        or state.end_reason is not None
        or state.pending_termination is not None
    )


def trading_state_of(spec: SessionSpec, state: SessionState) -> TradingState:
    """The session's trading state (domain.risk) from its live state."""
    return trading_state(
        halted=is_halted(state),
        loss=state.loss,
        loss_limit=state.loss_limit,
        reducing_at=spec.reducing_at,
    )


def risk_limit_end(
    spec: SessionSpec, state: SessionState, now_equity: Decimal
) -> tuple[EndReason, str] | None:
    """Drawdown from the peak at its limit, or the profit target reached: why the session
    must end now, and the detail; None if neither."""
    if spec.max_drawdown is not None and state.drawdown >= spec.max_drawdown:
        return EndReason.DRAWDOWN_LIMIT, (
            f"drawdown {plain_money(state.drawdown)} from peak "
            f"{plain_money(state.peak_equity)} reached limit {plain_money(spec.max_drawdown)}"
        )
    if spec.profit_target is not None and profit_target_reached(now_equity, spec.profit_target):
        return EndReason.PROFIT_TARGET, (
            f"equity {plain_money(now_equity)} reached the profit target "
            f"{plain_money(spec.profit_target)}"
        )
    return None


def apply_check(
    spec: SessionSpec, state: SessionState, snapshot: PnlSnapshot, now: datetime
) -> tuple[EndReason, str, str] | None:
    """Take one check's figures into the state and judge them: why the session must end now
    (reason, detail, actor), or None. A loss breach outranks expiry, expiry the other limits."""
    state.last_check_at = now
    state.checks += 1
    state.realized_pnl = snapshot.realized_pnl
    state.unrealized_pnl = snapshot.unrealized_pnl
    state.loss = session_loss(snapshot.realized_pnl, snapshot.unrealized_pnl)
    now_equity = equity(snapshot.realized_pnl, snapshot.unrealized_pnl)
    state.peak_equity = max(state.peak_equity, snapshot.peak_equity, now_equity)
    state.drawdown = drawdown(state.peak_equity, now_equity)
    verdict = judge(now, state.end_time, state.loss, state.loss_limit)
    if verdict is Verdict.LOSS_LIMIT:
        detail = f"loss {plain_money(state.loss)} reached limit {plain_money(state.loss_limit)}"
        return EndReason.LOSS_LIMIT, detail, SYSTEM_ACTOR
    if verdict is Verdict.EXPIRED:
        return EndReason.EXPIRED, "deadline reached", SYSTEM_ACTOR
    risk_end = risk_limit_end(spec, state, now_equity)
    return None if risk_end is None else (*risk_end, SYSTEM_ACTOR)
