"""What the fleet sweep decides for each open session: which workflows need waking, and why.

The sweep computes every open session's loss in one statement (``store/fleet.py``), with the
arithmetic of ``domain.limits``; these rules say which of those sessions must hear of it.
A quiet session's workflow sleeps until its deadline: only a reached limit, an unsent
warning or a moved ``LossUsedPct`` wakes it, and its own check stays authoritative.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.limits import loss_used
from domain.risk import drawdown, drawdown_used, profit_target_reached, trading_state

# The Web UI filter on LossUsedPct is true to within this many points (and one interval).
LOSS_PCT_MOVE = 5.0


class WakeReason(StrEnum):
    """Why a session's workflow is woken; the first that applies, in this order."""

    LIMIT = "limit"
    WARNING = "warning"
    STATE = "state"  # the trading state the loss leads to is not the one published
    MOVED = "moved"


class CheckSource(StrEnum):
    """Who checked a session's loss last: shown by ``GET /sessions/{id}``."""

    SWEEP = "sweep"
    FILL = "fill"
    MARK = "mark"
    WORKFLOW = "workflow"


def shard_key(session_id: str) -> int:
    """A stable hash of the session id: the first 32 bits of its MD5, as the database
    computes ``trading_sessions.shard_key`` (migration 0005)."""
    return int(hashlib.md5(session_id.encode(), usedforsecurity=False).hexdigest()[:8], 16)


def shard_of(session_id: str, shards: int) -> int:
    """The sweep shard that checks this session."""
    return shard_key(session_id) % shards


def loss_used_pct(loss: Decimal, loss_limit: Decimal) -> float:
    """LossUsedPct as the workflow publishes it: whole percent of the limit, may pass 100."""
    return float(round(100 * loss_used(loss, loss_limit)))


def loss_state(loss: Decimal, loss_limit: Decimal, reducing_at: float | None) -> str:
    """The trading state the loss alone leads to (ACTIVE or REDUCING), as a stored name."""
    return trading_state(
        halted=False, loss=loss, loss_limit=loss_limit, reducing_at=reducing_at
    ).value


@dataclass(frozen=True)
class RiskFigures:
    """What the drawdown and profit-target rules need: equity, its peak, the limits, and the
    drawdown thresholds already warned about."""

    equity: Decimal
    peak_equity: Decimal
    max_drawdown: Decimal | None = None
    profit_target: Decimal | None = None
    drawdown_warned: tuple[float, ...] = ()

    def limit_reached(self) -> bool:
        if self.max_drawdown is not None and (
            drawdown(self.peak_equity, self.equity) >= self.max_drawdown
        ):
            return True
        return profit_target_reached(self.equity, self.profit_target)

    def warning_due(self, thresholds: list[float]) -> bool:
        if self.max_drawdown is None:
            return False
        used = drawdown_used(self.peak_equity, self.equity, self.max_drawdown)
        return any(used >= t and t not in self.drawdown_warned for t in thresholds)


def wake_reason(
    loss: Decimal,
    loss_limit: Decimal,
    thresholds: list[float],
    warned: list[float],
    published_pct: float,
    reducing_at: float | None = None,
    published_state: str = "ACTIVE",
    risk: RiskFigures | None = None,
) -> WakeReason | None:
    """Whether a session's workflow must hear of the loss now, and why; None if not."""
    used = loss_used(loss, loss_limit)
    if loss >= loss_limit or (risk is not None and risk.limit_reached()):
        return WakeReason.LIMIT
    if any(used >= t and t not in warned for t in thresholds):
        return WakeReason.WARNING
    if risk is not None and risk.warning_due(thresholds):
        return WakeReason.WARNING
    if reducing_at is not None and loss_state(loss, loss_limit, reducing_at) != published_state:
        return WakeReason.STATE
    if abs(loss_used_pct(loss, loss_limit) - published_pct) >= LOSS_PCT_MOVE:
        return WakeReason.MOVED
    return None


class SweepInput(BaseModel):
    """One shard's sweep workflow: it sweeps every ``interval_seconds`` from ``next_due``
    (carried across continue-as-new) and records periodic performance snapshots every
    ``snapshot_every_seconds``."""

    shard: int = Field(ge=0)
    shards: int = Field(ge=1)
    interval_seconds: float = Field(default=30.0, gt=0)
    snapshot_every_seconds: float = Field(default=300.0, gt=0)
    reconcile_every_seconds: float = Field(default=60.0, gt=0)
    # A row younger than this may still be on its way to its workflow (the API inserts the
    # row, then starts the workflow): the reconciler leaves it alone.
    reconcile_min_age_seconds: float = Field(default=60.0, ge=0)
    next_due: datetime | None = None
    next_snapshot_due: datetime | None = None
    next_reconcile_due: datetime | None = None
    # Continue-as-new after this many sweeps, keeping the history short (tests use a few).
    sweeps_per_run: int = Field(default=500, ge=1)


class SweepShardInput(BaseModel):
    shard: int
    shards: int
    due_at: datetime
    snapshots: bool = False
    reconcile: bool = False
    reconcile_min_age_seconds: float = 60.0


class SweepResult(BaseModel):
    """What one sweep of a shard found and did."""

    checked: int
    woken: dict[str, int] = Field(default_factory=dict)  # by WakeReason
    gates_closed: int = 0
    signals_failed: int = 0
    snapshots: int = 0
    repairs: dict[str, int] = Field(default_factory=dict)  # by RepairKind
    lateness_seconds: float = 0.0
    # Shard 0 only: accounts past 80 % of their daily loss limit warned, and at it killed.
    accounts_warned: list[str] = Field(default_factory=list)
    accounts_killed: list[str] = Field(default_factory=list)


def sweep_workflow_id(task_queue: str, shard: int, shards: int) -> str:
    """One workflow per shard and shard count (and deployment, named by its task queue):
    two sweeps of one shard never overlap."""
    return f"{task_queue}-fleet-sweep-{shard + 1}-of-{shards}"


def next_due(previous_due: datetime, now: datetime, interval: timedelta) -> datetime:
    """The sweep after ``previous_due``; one that fell behind catches up with one sweep,
    not a burst: the next due instant after now on the same grid."""
    due = previous_due + interval
    if due <= now:
        behind = (now - previous_due) // interval
        due = previous_due + interval * (behind + 1)
    return due


class RepairKind(StrEnum):
    """What the reconciler found and mended, for its audit events, alerts and metric."""

    STARTED = "started"  # a PENDING row whose workflow was never started
    START_FAILED = "start_failed"  # ... and could not be started
    ORPHANED = "orphaned"  # an open row whose workflow closed
    OVERDUE = "overdue"  # a session past its deadline and grace, still open
    LATE_FILLS = "late_fills"  # an ended session a late fill left open or unannounced


# A session still open this long past its deadline has something wrong with its workflow.
OVERDUE_GRACE = timedelta(minutes=2)
