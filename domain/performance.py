"""A session's performance figures, computed from its fills: PnL, round trips, drawdown."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel

from domain.limits import loss_used, session_loss, time_used
from domain.positions import Side, quantize_money, signed_quantity


class SnapshotKind(StrEnum):
    """``periodic`` while the session runs; one ``final`` when it has ended."""

    PERIODIC = "periodic"
    FINAL = "final"


@dataclass(frozen=True)
class FillRecord:
    """One stored fill; ``realized_pnl`` is what the ledger booked for it, fee included."""

    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    executed_at: datetime
    realized_pnl: Decimal


class PerformanceFigures(BaseModel):
    """What a session has achieved so far; money at the stored scale (8 places), win rate 0-1.

    ``time_used_pct`` is 0-100. ``loss_used_pct`` is the loss as a percentage of the limit and
    is not clamped: a mark that gaps through the limit shows by how much (190 = the loss was
    1.9 times the limit when checked), which is what a risk desk must see after a breach.
    """

    realized_pnl: Decimal
    unrealized_pnl: Decimal
    total_pnl: Decimal
    fees: Decimal
    fills: int
    round_trips: int
    winning_round_trips: int
    win_rate: float | None
    peak_pnl: Decimal
    max_drawdown: Decimal
    duration_seconds: float
    loss: Decimal
    loss_used_pct: float
    time_used_pct: float


class PerformanceOut(BaseModel):
    """Result of the ``record_snapshot`` activity: the figures as stored."""

    session_id: str
    kind: SnapshotKind
    taken_at: datetime
    figures: PerformanceFigures


@dataclass(frozen=True)
class RoundTrips:
    """Closed round trips and how many of them made money."""

    count: int
    wins: int


def snapshot_key(session_id: str, kind: SnapshotKind, taken_at: datetime) -> str:
    """Idempotency key of a snapshot: one final per session, one periodic per instant."""
    if kind is SnapshotKind.FINAL:
        return f"{session_id}:final"
    return f"{session_id}:{kind}:{taken_at.isoformat()}"


def round_trips(fills: Sequence[FillRecord]) -> RoundTrips:
    """Count round trips (flat -> non-flat -> flat, per symbol) and the profitable ones.

    A fill that crosses through zero closes one round trip and opens the next; its whole
    realized PnL (closing PnL and fee) belongs to the trip it closes, because the part that
    opens the new position realizes nothing.
    """
    held: dict[str, Decimal] = {}
    trip_pnl: dict[str, Decimal] = {}
    count = wins = 0
    for fill in fills:
        before = held.get(fill.symbol, Decimal(0))
        after = before + signed_quantity(fill.side, fill.quantity)
        held[fill.symbol] = after
        trip_pnl[fill.symbol] = trip_pnl.get(fill.symbol, Decimal(0)) + fill.realized_pnl
        closed = before != 0 and (after == 0 or (after > 0) != (before > 0))
        if closed:
            count += 1
            if trip_pnl[fill.symbol] > 0:
                wins += 1
            trip_pnl[fill.symbol] = Decimal(0)
    return RoundTrips(count, wins)


def peak_and_drawdown(fills: Sequence[FillRecord]) -> tuple[Decimal, Decimal]:
    """Highest cumulative realized PnL (from 0) and the largest drop from a running peak."""
    cumulative = peak = drawdown = Decimal(0)
    for fill in fills:
        cumulative += fill.realized_pnl
        peak = max(peak, cumulative)
        drawdown = max(drawdown, peak - cumulative)
    return peak, drawdown


def compute_performance(
    fills: Sequence[FillRecord],
    *,
    unrealized_pnl: Decimal,
    loss_limit: Decimal,
    start_time: datetime,
    end_time: datetime,
    now: datetime,
) -> PerformanceFigures:
    """All figures of a session at ``now`` from its fills in execution order.

    ``end_time`` is the deadline; a session that ended earlier passes its end as ``now``.
    Duration runs from the start to ``now``, never past the deadline nor below zero.
    """
    # Quantized once more here: the figures are shown and stored, and callers may pass
    # money finer than the stored scale (a product of two stored values has 16 places).
    realized = quantize_money(sum((fill.realized_pnl for fill in fills), Decimal(0)))
    unrealized_pnl = quantize_money(unrealized_pnl)
    trips = round_trips(fills)
    peak, drawdown = peak_and_drawdown(fills)
    loss = session_loss(realized, unrealized_pnl)
    duration = max(timedelta(0), min(now, end_time) - start_time)
    return PerformanceFigures(
        realized_pnl=realized,
        unrealized_pnl=unrealized_pnl,
        total_pnl=realized + unrealized_pnl,
        fees=quantize_money(sum((fill.fee for fill in fills), Decimal(0))),
        fills=len(fills),
        round_trips=trips.count,
        winning_round_trips=trips.wins,
        win_rate=trips.wins / trips.count if trips.count else None,
        peak_pnl=quantize_money(peak),
        max_drawdown=quantize_money(drawdown),
        duration_seconds=duration.total_seconds(),
        loss=quantize_money(loss),
        loss_used_pct=_percent(loss_used(loss, loss_limit)),
        time_used_pct=_percent(time_used(now, start_time, end_time)),
    )


def _percent(fraction: float) -> float:
    # Two decimals is what a person reads; it also keeps 0.29 * 100 from showing 28.999...
    return round(fraction * 100, 2)
