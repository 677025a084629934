"""Fills and marks: recorded under the session's row lock and checked as they arrive.

Every fill and mark gets the loss check at once, in the transaction that records it, and
the row remembers it (``last_checked_at``/``_by``). Only a loss the workflow must hear of
(``domain.sweep.wake_reason``: the limit, an unsent warning, LossUsedPct moved) wakes it,
and at most once per ``TRADING_INGEST_WAKE_WINDOW_SECONDS`` unless the limit is reached.
"""

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError

from domain.late_fills import FILL_LATE, check_late_fill, trading_ended
from domain.limits import session_loss
from domain.risk import equity
from domain.session import is_open
from domain.session_messages import CheckNowInput
from domain.status import is_terminal
from domain.sweep import CheckSource, RiskFigures, WakeReason, wake_reason
from starter.api.schemas import FillBody, FillOut, MarkBody, MarkOut
from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.services.errors import ConflictError, LateFillRefusedError
from starter.services.marks import refuse_future_mark
from starter.services.sessions import session_handle, session_row
from store.audit import AuditRepository
from store.fleet import FleetRepository
from store.ledger import LedgerRepository, NewFill
from store.models import Fill, TradingSession
from store.orders import OrderRepository
from store.sessions import SessionRepository
from workflows.late_fills import start_late_fill_follow_up
from workflows.session import TradingSessionWorkflow

log = logging.getLogger(__name__)


class TradeService:
    """A session's fills and marks, each checked in the transaction that records it."""

    def __init__(
        self,
        client: Client,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.client = client
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.metrics = metrics

    async def record_fill(self, session_id: str, request: FillBody) -> tuple[FillOut, bool]:
        """Apply a fill once under the session's row lock and check the loss it leaves.

        After the session's trading ended (ENDING or later) the fill is late: it is recorded
        only if it executes an order the session placed before its halt, marked late and
        audited; an ended session's follow-up then flattens what it reopened.
        """
        fill = NewFill(
            fill_id=request.fill_id,
            symbol=request.symbol,
            side=request.side,
            quantity=request.quantity,
            price=request.price,
            fee=request.fee,
            executed_at=request.executed_at or datetime.now(UTC),
            order_id=request.order_id,
        )
        wake: WakeReason | None = None
        follow_up = False
        async with self.sessionmaker.begin() as db:
            ledger = LedgerRepository(db)
            existing = await ledger.get_fill(session_id, request.fill_id)
            if existing is not None:
                row, created = existing, False
            else:
                session = await session_row(SessionRepository(db), session_id, for_update=True)
                late = trading_ended(session.status)
                if late:
                    await _check_late_fill(db, session_id, request)
                    fill = replace(fill, late=True)
                row, created = await ledger.apply_fill(session_id, fill)
                if late:
                    await _audit_late_fill(db, session, row)
                    follow_up = is_terminal(session.status)
                else:
                    wake = await self._check_loss(db, session, CheckSource.FILL)
            if not created and not _same_fill(row, fill):
                raise ConflictError(
                    f"fill {request.fill_id!r} was already recorded with other values",
                    field="fill_id",
                )
            out = FillOut.model_validate(row)
        out.duplicate = not created
        if wake is not None:
            await self._wake(session_id, CheckSource.FILL, wake)
        if follow_up:
            await self._follow_up(session_id)
        return out, created

    async def _follow_up(self, session_id: str) -> None:
        """Start the ended session's late-fill follow-up now rather than at the next
        reconciliation; if Temporal cannot take it, the reconciler starts it."""
        try:
            await start_late_fill_follow_up(
                self.client, session_id, self.settings.temporal_task_queue
            )
        except RPCError as err:
            log.warning("late fill follow-up of %s left to the reconciler: %s", session_id, err)

    async def record_mark(self, session_id: str, request: MarkBody) -> MarkOut:
        """Record a mark price and check the loss it leaves; a mark dated ahead is refused."""
        now = datetime.now(UTC)
        refuse_future_mark(request.marked_at, now, self.settings, "marked_at")
        marked_at = request.marked_at or now
        async with self.sessionmaker.begin() as db:
            session = await _lock_open_session(db, session_id)
            await LedgerRepository(db).add_mark(
                session_id, request.symbol, request.price, marked_at
            )
            wake = await self._check_loss(db, session, CheckSource.MARK)
        if wake is not None:
            await self._wake(session_id, CheckSource.MARK, wake)
        return MarkOut(
            session_id=session_id, symbol=request.symbol, price=request.price, marked_at=marked_at
        )

    async def _check_loss(
        self, db: AsyncSession, session: TradingSession, source: CheckSource
    ) -> WakeReason | None:
        """The check a fill or mark gets at once, under the row lock that serialises them, so it
        sees every event before it; the row records it. Returns why the workflow must be woken,
        or None: not needed, or already woken within the window (a reached limit always wakes)."""
        figures = await LedgerRepository(db).pnl(session.id)
        loss = session_loss(figures.realized_pnl, figures.unrealized_pnl)
        # The running peak of equity follows every fill and mark (domain.risk.drawdown).
        now_equity = equity(figures.realized_pnl, figures.unrealized_pnl)
        session.peak_equity = max(session.peak_equity, now_equity)
        reason = wake_reason(
            loss,
            session.loss_limit,
            session.warning_thresholds,
            session.loss_warnings_sent,
            session.published_loss_pct,
            session.reducing_at,
            session.trading_state,
            risk_figures(session, now_equity),
        )
        now = datetime.now(UTC)
        session.last_checked_at = now
        session.last_checked_by = source.value
        if reason is not None:
            window = timedelta(seconds=self.settings.ingest_wake_window_seconds)
            claimed = await FleetRepository(db).claim_wakes(
                {session.id: reason}, now, window, source
            )
            reason = reason if claimed else None
        self.metrics.ingest_checks.labels(source.value, "quiet" if reason is None else "woke").inc()
        return reason

    async def _wake(self, session_id: str, source: CheckSource, reason: WakeReason) -> None:
        # The data is committed already; if the signal is lost the sweep still sees it.
        try:
            await session_handle(self.client, session_id).signal(
                TradingSessionWorkflow.check_now,
                CheckNowInput(source=source.value, reason=reason.value),
            )
        except RPCError as err:
            log.warning("could not wake session %s: %s", session_id, err.message)


async def _check_late_fill(db: AsyncSession, session_id: str, request: FillBody) -> None:
    """A late fill must execute an order of this session (placed before its halt)."""
    order = None
    if request.order_id is not None:
        order = await OrderRepository(db).facts(session_id, request.order_id)
    refusal = check_late_fill(
        session_id, request.order_id, order, request.symbol, request.side, request.quantity
    )
    if refusal is not None:
        raise LateFillRefusedError(refusal.code, refusal.message, refusal.field)


async def _audit_late_fill(db: AsyncSession, session: TradingSession, fill: Fill) -> None:
    await AuditRepository(db).append(
        session_id=session.id,
        action=FILL_LATE,
        actor="broker",
        reason=f"fill recorded while the session was {session.status}",
        details={
            "fill_id": fill.fill_id,
            "order_id": fill.order_id,
            "symbol": fill.symbol,
            "side": fill.side,
            "quantity": f"{fill.quantity:f}",
            "price": f"{fill.price:f}",
            "fee": f"{fill.fee:f}",
            "executed_at": fill.executed_at.isoformat(),
            "status": session.status.value,
        },
        workflow_id=session.workflow_id,
        dedupe_key=f"{session.id}:{FILL_LATE}:{fill.fill_id}",
    )


async def _lock_open_session(db: AsyncSession, session_id: str) -> TradingSession:
    row = await session_row(SessionRepository(db), session_id, for_update=True)
    if not is_open(row.status):
        raise ConflictError(f"session {session_id!r} is {row.status}: it takes no more trades")
    return row


def risk_figures(session: TradingSession, now_equity: Decimal) -> RiskFigures | None:
    """The drawdown and profit-target figures of a locked row, for the wake rules."""
    if session.max_drawdown is None and session.profit_target is None:
        return None
    return RiskFigures(
        equity=now_equity,
        peak_equity=session.peak_equity,
        max_drawdown=session.max_drawdown,
        profit_target=session.profit_target,
        drawdown_warned=tuple(session.drawdown_warnings_sent),
    )


def _same_fill(row: object, fill: NewFill) -> bool:
    return all(
        getattr(row, name) == getattr(fill, name)
        for name in ("symbol", "side", "quantity", "price", "fee")
    )
