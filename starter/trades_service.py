"""Fills and marks: recorded under the session's row lock and checked as they arrive.

Every fill and mark gets the loss check at once, in the transaction that records it; only a
loss near or past the limit wakes the session's workflow, which warns or ends the session.
"""

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.service import RPCError

from domain.limits import must_wake_workflow, session_loss
from domain.messages import CheckRequest
from domain.status import SessionStatus
from starter.errors import ConflictError
from starter.schemas import FillOut, FillRequest, MarkOut, MarkRequest
from starter.service import OPEN_STATUSES, SessionService, session_row
from store.ledger import LedgerRepository, NewFill
from store.models import TradingSession
from store.sessions import SessionRepository
from workflows.session import TradingSessionWorkflow

log = logging.getLogger(__name__)


async def record_fill(
    service: SessionService, session_id: str, request: FillRequest
) -> tuple[FillOut, bool]:
    """Apply a fill once under the session's row lock and check the loss it leaves."""
    fill = NewFill(
        fill_id=request.fill_id,
        symbol=request.symbol,
        side=request.side,
        quantity=request.quantity,
        price=request.price,
        fee=request.fee,
        executed_at=request.executed_at or datetime.now(UTC),
    )
    wake = False
    async with service.sessionmaker.begin() as db:
        ledger = LedgerRepository(db)
        existing = await ledger.get_fill(session_id, request.fill_id)
        session = None if existing is not None else await _lock_open_session(db, session_id)
        row, created = await ledger.apply_fill(session_id, fill)
        if not created and not _same_fill(row, fill):
            raise ConflictError(
                f"fill {request.fill_id!r} was already recorded with other values",
                field="fill_id",
            )
        if created and session is not None:
            wake = await _check_loss(service, ledger, session, "fill")
        out = FillOut.model_validate(row)
    out.duplicate = not created
    if wake:
        await _wake(service, session_id, "fill")
    return out, created


async def record_mark(service: SessionService, session_id: str, request: MarkRequest) -> MarkOut:
    """Record a mark price and check the loss it leaves."""
    marked_at = request.marked_at or datetime.now(UTC)
    async with service.sessionmaker.begin() as db:
        session = await _lock_open_session(db, session_id)
        ledger = LedgerRepository(db)
        await ledger.add_mark(session_id, request.symbol, request.price, marked_at)
        wake = await _check_loss(service, ledger, session, "mark")
    if wake:
        await _wake(service, session_id, "mark")
    return MarkOut(
        session_id=session_id, symbol=request.symbol, price=request.price, marked_at=marked_at
    )


async def _check_loss(
    service: SessionService, ledger: LedgerRepository, session: TradingSession, source: str
) -> bool:
    """The check a fill or mark gets at once, under the row lock that serialises them, so it
    sees every event before it. Only a loss near or past the limit wakes the workflow, which
    decides: most marks then cost one read instead of a workflow task."""
    figures = await ledger.pnl(session.id)
    loss = session_loss(figures.realized_pnl, figures.unrealized_pnl)
    wake = must_wake_workflow(loss, session.loss_limit, session.warning_thresholds)
    service.metrics.ingest_checks.labels(source, "woke" if wake else "quiet").inc()
    return wake


async def _lock_open_session(db: AsyncSession, session_id: str) -> TradingSession:
    row = await session_row(SessionRepository(db), session_id, for_update=True)
    if SessionStatus(row.status) not in OPEN_STATUSES:
        raise ConflictError(f"session {session_id!r} is {row.status}: it takes no more trades")
    return row


async def _wake(service: SessionService, session_id: str, source: str) -> None:
    # The data is committed already; if the signal is lost the periodic check still sees it.
    try:
        await service.workflow_handle(session_id).signal(
            TradingSessionWorkflow.check_now, CheckRequest(source=source)
        )
    except RPCError as err:
        log.warning("could not wake session %s: %s", session_id, err.message)


def _same_fill(row: object, fill: NewFill) -> bool:
    return all(
        getattr(row, name) == getattr(fill, name)
        for name in ("symbol", "side", "quantity", "price", "fee")
    )
