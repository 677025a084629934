"""Loss and time arithmetic, and the verdict of one check: continue, expire or breach."""

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

DEFAULT_WARNING_THRESHOLDS = (0.8,)


class WarningKind(StrEnum):
    TIME = "TIME"
    LOSS = "LOSS"
    DRAWDOWN = "DRAWDOWN"  # of max_drawdown (domain.risk)


class Verdict(StrEnum):
    CONTINUE = "CONTINUE"
    EXPIRED = "EXPIRED"
    LOSS_LIMIT = "LOSS_LIMIT"


def session_loss(realized_pnl: Decimal, unrealized_pnl: Decimal) -> Decimal:
    """Loss is the negative part of total PnL; a profitable session has lost nothing."""
    return max(Decimal(0), -(realized_pnl + unrealized_pnl))


def loss_used(loss: Decimal, loss_limit: Decimal) -> float:
    """Fraction of the loss limit consumed (1.0 at the limit, may exceed it)."""
    return float(loss / loss_limit)


def time_used(now: datetime, start_time: datetime, end_time: datetime) -> float:
    """Fraction of the session's time elapsed, clamped to [0, 1]."""
    total = (end_time - start_time).total_seconds()
    if total <= 0:
        return 1.0
    return min(1.0, max(0.0, (now - start_time).total_seconds() / total))


def judge(now: datetime, end_time: datetime, loss: Decimal, loss_limit: Decimal) -> Verdict:
    """A breach outranks expiry: a session that hit its limit ends as LOSS_LIMIT."""
    if loss >= loss_limit:
        return Verdict.LOSS_LIMIT
    if now >= end_time:
        return Verdict.EXPIRED
    return Verdict.CONTINUE


def time_until_wake(now: datetime, *due: datetime | None) -> timedelta:
    """Sleep until the first of the due instants (deadline, warning); never negative."""
    return max(timedelta(0), min(d for d in due if d is not None) - now)


def time_warning_at(start_time: datetime, end_time: datetime, threshold: float) -> datetime:
    """The instant a time threshold is reached."""
    return start_time + (end_time - start_time) * threshold


def next_time_warning_at(
    start_time: datetime, end_time: datetime, thresholds: list[float], already_warned: list[float]
) -> datetime | None:
    """When the next unsent time threshold is reached, so the workflow wakes exactly then."""
    pending = [t for t in thresholds if t not in already_warned]
    if not pending:
        return None
    return time_warning_at(start_time, end_time, min(pending))


def due_time_warnings(
    now: datetime,
    start_time: datetime,
    end_time: datetime,
    thresholds: list[float],
    already_warned: list[float],
) -> list[float]:
    """Unsent time thresholds whose instant has come, ascending.

    Decided by instant, as the wake-up is, not by the fraction of time used: at the very
    instant of a threshold the fraction can come out a hair below it, and a workflow woken
    for a warning it then finds not due would wake again at once, for ever.
    """
    return sorted(
        t
        for t in thresholds
        if t not in already_warned and time_warning_at(start_time, end_time, t) <= now
    )


def crossed_thresholds(
    fraction: float, thresholds: list[float], already_warned: list[float]
) -> list[float]:
    """Thresholds reached by ``fraction`` that have not been warned about yet, ascending."""
    return sorted(t for t in thresholds if fraction >= t and t not in already_warned)
