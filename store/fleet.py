"""The fleet's loss check in one statement: the sweep's per shard, the market data's per symbol.

Every figure follows ``domain.limits.session_loss`` and ``LedgerRepository.pnl``: loss is
``max(0, -(realized + unrealized))``, each open position valued at its latest mark
(:func:`store.ledger.with_latest_mark`), 0 without one. The statement only narrows the rows
down to those that may need their workflow; whether one does is ``domain.sweep.wake_reason``,
in Python, so there is one arithmetic for the decision.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Numeric,
    Table,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.status import SessionStatus
from domain.sweep import LOSS_PCT_MOVE, RiskFigures, WakeReason, loss_used_pct, wake_reason
from store.audit import AuditRepository
from store.ledger import unrealized_by_session
from store.models import FleetSweep, Position, TradingSession

# A limit that was signalled is signalled again only after this long: the workflow winds the
# session down meanwhile (its gate is closed already), and the sweep is the net after that.
LIMIT_REWAKE = timedelta(seconds=30)
# Rows within this much of a rule's edge are returned and left to domain.sweep to decide:
# the database divides exactly, Python in floats, and LossUsedPct rounds half to even.
_THRESHOLD_SLACK = Decimal("0.000000001")
_PCT_SLACK = Decimal(1)


@dataclass(frozen=True)
class SessionLoss:
    """One open session's loss as the fleet statement computed it."""

    session_id: str
    loss: Decimal
    loss_limit: Decimal
    realized: Decimal
    unrealized: Decimal
    start_time: datetime
    end_time: datetime
    warning_thresholds: list[float]
    loss_warnings_sent: list[float]
    published_loss_pct: float
    reducing_at: float | None = None
    published_state: str = "ACTIVE"
    peak_equity: Decimal = Decimal(0)
    max_drawdown: Decimal | None = None
    profit_target: Decimal | None = None
    drawdown_warnings_sent: tuple[float, ...] = ()

    @property
    def equity(self) -> Decimal:
        return self.realized + self.unrealized

    def risk(self) -> RiskFigures | None:
        if self.max_drawdown is None and self.profit_target is None:
            return None
        return RiskFigures(
            equity=self.equity,
            peak_equity=max(self.peak_equity, self.equity),
            max_drawdown=self.max_drawdown,
            profit_target=self.profit_target,
            drawdown_warned=self.drawdown_warnings_sent,
        )

    @property
    def breached(self) -> bool:
        """At or past the loss limit: its trading must halt."""
        return self.loss >= self.loss_limit

    @property
    def loss_used_pct(self) -> float:
        return loss_used_pct(self.loss, self.loss_limit)

    def wake_reason(self) -> WakeReason | None:
        """Why the session's workflow must hear of this loss now; None if it need not."""
        return wake_reason(
            self.loss,
            self.loss_limit,
            self.warning_thresholds,
            self.loss_warnings_sent,
            self.published_loss_pct,
            self.reducing_at,
            self.published_state,
            self.risk(),
        )


@dataclass(frozen=True)
class FleetLosses:
    """How many sessions one statement checked, and those of them that may need waking."""

    checked: int
    sessions: list[SessionLoss]

    def to_wake(self) -> list[tuple[SessionLoss, WakeReason]]:
        """The sessions whose workflow must be signalled, with the reason."""
        return [(s, reason) for s in self.sessions if (reason := s.wake_reason()) is not None]


class FleetRepository:
    """Set-based reads and writes over many sessions at once. Never commits."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def sweep_losses(self, shard: int, shards: int) -> FleetLosses:
        """Every ACTIVE session of the shard (``shard_key % shards = shard``), one statement."""
        if not 0 <= shard < shards:
            raise ValueError(f"shard {shard} is not one of {shards} shards")
        return await self._losses(TradingSession.shard_key % shards == shard)

    async def losses_holding(self, symbols: Sequence[str]) -> FleetLosses:
        """Every ACTIVE session with an open position in any of ``symbols``, one statement."""
        if not symbols:
            return FleetLosses(0, [])
        holds = exists().where(
            Position.session_id == TradingSession.id,
            Position.quantity != 0,
            Position.symbol.in_(list(symbols)),
        )
        return await self._losses(holds)

    async def _losses(self, which: ColumnElement[bool]) -> FleetLosses:
        stmt = _losses_statement(which)
        rows = (await self.db.execute(stmt)).all()
        checked = rows[0].checked if rows else 0
        sessions = [
            SessionLoss(
                session_id=row.id,
                loss=row.loss,
                loss_limit=row.loss_limit,
                realized=row.realized_pnl,
                unrealized=row.unrealized,
                start_time=row.start_time,
                end_time=row.end_time,
                warning_thresholds=list(row.warning_thresholds),
                loss_warnings_sent=list(row.loss_warnings_sent),
                published_loss_pct=row.published_loss_pct,
                reducing_at=row.reducing_at,
                published_state=row.trading_state,
                peak_equity=row.peak_equity,
                max_drawdown=row.max_drawdown,
                profit_target=row.profit_target,
                drawdown_warnings_sent=tuple(row.drawdown_warnings_sent),
            )
            for row in rows
            if row.id is not None
        ]
        await self._raise_peaks(sessions)
        return FleetLosses(checked, sessions)

    async def _raise_peaks(self, sessions: Sequence[SessionLoss]) -> None:
        """The running peak of equity (domain.risk.drawdown) follows the market's marks too:
        the statement returns every session whose equity passed its stored peak; one
        executemany, in id order, raises them (never lowers: a racing check may be higher)."""
        risen = sorted(
            (
                {"sid": s.session_id, "equity": s.equity}
                for s in sessions
                if s.equity > s.peak_equity
            ),
            key=lambda r: str(r["sid"]),
        )
        if risen:
            table = cast_table(TradingSession.__table__)
            stmt = (
                update(table)
                .where(table.c.id == bindparam("sid"))
                .values(peak_equity=func.greatest(table.c.peak_equity, bindparam("equity")))
            )
            await self.db.execute(stmt, risen)

    async def close_gates(
        self, session_ids: Sequence[str], reason: str, *, cause: str | None = None
    ) -> list[str]:
        """Close the trading gate of those sessions whose gate is still open; return their ids.

        One UPDATE (rows locked in id order, so two batches never deadlock) and one audit
        event each, actor ``risk``, deduplicated per session and ``cause`` (the reason when
        not given): a breach halts trading in the transaction that finds it.
        """
        if not session_ids:
            return []
        locked = (
            select(TradingSession.id)
            .where(TradingSession.id.in_(list(session_ids)), TradingSession.gate_open)
            .order_by(TradingSession.id)
            .with_for_update()
        )
        stmt = (
            update(TradingSession)
            .where(TradingSession.id.in_(locked.scalar_subquery()), TradingSession.gate_open)
            .values(gate_open=False, gate_reason=reason)
            .returning(TradingSession.id, TradingSession.workflow_id)
        )
        closed = (await self.db.execute(stmt)).all()
        await AuditRepository(self.db).append_many(
            [
                {
                    "session_id": session_id,
                    "action": "gate.closed",
                    "actor": "risk",
                    "reason": reason,
                    "workflow_id": workflow_id,
                    "dedupe_key": f"{session_id}:gate:risk:{cause or reason}",
                }
                for session_id, workflow_id in closed
            ]
        )
        return sorted(session_id for session_id, _ in closed)

    async def claim_wakes(
        self,
        wakes: dict[str, WakeReason],
        now: datetime,
        window: timedelta,
        checked_by: str,
    ) -> list[str]:
        """Of the sessions to wake, those not woken in the last ``window``; stamps their
        ``last_woken_at``, ``last_wake_reason`` and ``last_checked_at``/``_by`` in one UPDATE.

        A fast feed past a warning threshold then wakes a workflow at most once per window.
        A reached limit wakes it at once, whatever the window, but once: a session halted on a
        breach is not signalled again by every mark batch and sweep while its workflow winds
        it down (that churn once held a flash crash's thousand ends back for minutes); after
        LIMIT_REWAKE, the limit is signalled again in case the first signal was lost.
        """
        if not wakes:
            return []
        urgent = [sid for sid, reason in wakes.items() if reason is WakeReason.LIMIT]
        others = [sid for sid, reason in wakes.items() if reason is not WakeReason.LIMIT]
        woken_before = TradingSession.last_woken_at
        may_wake = or_(
            and_(
                TradingSession.id.in_(urgent),
                or_(
                    TradingSession.last_wake_reason.is_distinct_from(WakeReason.LIMIT.value),
                    woken_before <= now - LIMIT_REWAKE,
                ),
            ),
            and_(
                TradingSession.id.in_(others),
                or_(woken_before.is_(None), woken_before <= now - window),
            ),
        )
        locked = (
            select(TradingSession.id).where(may_wake).order_by(TradingSession.id).with_for_update()
        )
        reason_of = case(
            {sid: reason.value for sid, reason in wakes.items()}, value=TradingSession.id
        )
        stmt = (
            update(TradingSession)
            .where(TradingSession.id.in_(locked.scalar_subquery()))
            .values(
                last_woken_at=now,
                last_wake_reason=reason_of,
                last_checked_at=now,
                last_checked_by=checked_by,
            )
            .returning(TradingSession.id)
        )
        return sorted((await self.db.execute(stmt)).scalars())

    async def accounts_with_open_sessions(self) -> list[str]:
        """Accounts with a PENDING or ACTIVE session: those whose broker switch is re-armed."""
        stmt = (
            select(TradingSession.account_id)
            .where(TradingSession.status.in_([SessionStatus.PENDING, SessionStatus.ACTIVE]))
            .distinct()
            .order_by(TradingSession.account_id)
        )
        return list((await self.db.execute(stmt)).scalars())

    async def record_sweep(
        self,
        shard: int,
        shards: int,
        due_at: datetime,
        swept_at: datetime,
        checked: int,
        signalled: int,
    ) -> None:
        """Remember a shard's sweep; an older sweep recorded late does not replace a newer."""
        stmt = insert(FleetSweep).values(
            shard_count=shards,
            shard=shard,
            due_at=due_at,
            swept_at=swept_at,
            sessions_checked=checked,
            signals_sent=signalled,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[FleetSweep.shard_count, FleetSweep.shard],
            set_={
                "due_at": stmt.excluded.due_at,
                "swept_at": stmt.excluded.swept_at,
                "sessions_checked": stmt.excluded.sessions_checked,
                "signals_sent": stmt.excluded.signals_sent,
            },
            where=FleetSweep.swept_at <= stmt.excluded.swept_at,
        )
        await self.db.execute(stmt)

    async def last_sweeps(self, shards: int) -> dict[int, datetime]:
        """When each shard of a ``shards``-way sweep last ran."""
        stmt = select(FleetSweep.shard, FleetSweep.swept_at).where(FleetSweep.shard_count == shards)
        return {shard: at for shard, at in (await self.db.execute(stmt)).all()}


def cast_table(table: object) -> Table:
    """A model's Core table (executemany needs Core, not the ORM's bulk update by key)."""
    assert isinstance(table, Table)
    return table


def _losses_statement(which: ColumnElement[bool]) -> Any:
    """checked (count of the ACTIVE sessions ``which`` selects) beside each that may need a
    wake; one row of NULLs with the count when none does."""
    chosen = (
        select(
            TradingSession.id,
            TradingSession.loss_limit,
            TradingSession.realized_pnl,
            TradingSession.start_time,
            TradingSession.end_time,
            TradingSession.warning_thresholds,
            TradingSession.loss_warnings_sent,
            TradingSession.published_loss_pct,
            TradingSession.reducing_at,
            TradingSession.trading_state,
            TradingSession.peak_equity,
            TradingSession.max_drawdown,
            TradingSession.profit_target,
            TradingSession.drawdown_warnings_sent,
        )
        .where(TradingSession.status == SessionStatus.ACTIVE, which)
        .cte("chosen")
    )
    unrealized = unrealized_by_session(select(chosen.c.id), "unrealized")
    session_unrealized = func.coalesce(unrealized.c.unrealized, 0)
    losses = (
        select(
            chosen,
            session_unrealized.label("unrealized"),
            func.greatest(0, -(chosen.c.realized_pnl + session_unrealized)).label("loss"),
        )
        .outerjoin(unrealized, unrealized.c.session_id == chosen.c.id)
        .subquery("losses")
    )
    used = losses.c.loss / losses.c.loss_limit
    threshold = func.jsonb_array_elements(losses.c.warning_thresholds).table_valued("value")
    unwarned_threshold_reached = (
        exists()
        .select_from(threshold)
        .where(
            used >= cast(threshold.c.value, Numeric) - _THRESHOLD_SLACK,
            not_(losses.c.loss_warnings_sent.contains(func.jsonb_build_array(threshold.c.value))),
        )
    )
    moved = (
        func.abs(100 * used - cast(losses.c.published_loss_pct, Numeric))
        >= Decimal(str(LOSS_PCT_MOVE)) - _PCT_SLACK
    )
    # REDUCING from reducing_at of the limit: a session past it, or published REDUCING (it may
    # be back under it), is left to domain.sweep to compare with what was published.
    reducing_edge = and_(
        losses.c.reducing_at.is_not(None),
        or_(
            losses.c.trading_state == "REDUCING",
            used >= cast(losses.c.reducing_at, Numeric) - _THRESHOLD_SLACK,
        ),
    )
    # Drawdown from the running peak (domain.risk.drawdown), the profit target, and a peak to
    # raise: equity above the stored peak.
    equity = losses.c.realized_pnl + losses.c.unrealized
    peak = func.greatest(losses.c.peak_equity, equity, 0)
    drawdown_used = (peak - equity) / losses.c.max_drawdown
    dd_threshold = func.jsonb_array_elements(losses.c.warning_thresholds).table_valued("value")
    drawdown_edge = and_(
        losses.c.max_drawdown.is_not(None),
        or_(
            drawdown_used >= 1 - _THRESHOLD_SLACK,
            exists()
            .select_from(dd_threshold)
            .where(
                drawdown_used >= cast(dd_threshold.c.value, Numeric) - _THRESHOLD_SLACK,
                not_(
                    losses.c.drawdown_warnings_sent.contains(
                        func.jsonb_build_array(dd_threshold.c.value)
                    )
                ),
            ),
        ),
    )
    target_reached = and_(losses.c.profit_target.is_not(None), equity >= losses.c.profit_target)
    candidates = (
        select(losses)
        .where(
            or_(
                losses.c.loss >= losses.c.loss_limit,
                unwarned_threshold_reached,
                moved,
                reducing_edge,
                drawdown_edge,
                target_reached,
                # Only a drawdown limit needs the peak kept by the sweep and market marks.
                and_(losses.c.max_drawdown.is_not(None), equity > losses.c.peak_equity),
            )
        )
        .subquery("candidates")
    )
    counted = select(func.count().label("checked")).select_from(chosen).subquery("counted")
    return select(counted.c.checked, candidates).select_from(counted).outerjoin(candidates, true())
