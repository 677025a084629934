"""Market data per symbol: one batch of prices checks every session holding them at once.

A price move for a symbol held by 2000 sessions is one request and one set-based statement,
not 2000. In the transaction that stores the batch, the sessions at their limit have their
trading gate closed; after the commit, the workflows that must hear of their loss are
signalled, a bounded number at a time.
"""

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError

from domain.session_messages import CheckNowInput
from domain.sweep import CheckSource
from starter.api.schemas import MarketMarksBody, MarketMarksOut
from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.services.errors import InvalidRequestError
from starter.services.sessions import session_handle
from store.fleet import FleetRepository
from store.market_marks import MarketMarkRepository, NewMarketMark
from workflows.session import TradingSessionWorkflow

log = logging.getLogger(__name__)

# Signals in flight at once: a flash crash may wake 1000 sessions, and the Temporal
# frontend (and this process's connection) should see a steady stream, not a burst.
SIGNAL_CONCURRENCY = 64
HALT_REASON = "loss limit reached (market marks)"


def refuse_future_mark(
    marked_at: datetime | None, now: datetime, settings: Settings, field: str
) -> None:
    """A mark dated beyond the allowed clock skew is refused: as the newest mark it would
    hide every later real price of its symbol."""
    skew = timedelta(seconds=settings.mark_clock_skew_seconds)
    if marked_at is not None and marked_at > now + skew:
        raise InvalidRequestError(
            "marked_at lies in the future, beyond the allowed clock skew of "
            f"{settings.mark_clock_skew_seconds:g} s",
            field=field,
        )


class MarkService:
    """Market prices per symbol, applied to every ACTIVE session holding them."""

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
        # Signals still being sent after their batch was answered (kept so none is dropped).
        self._signalling: set[asyncio.Task[int]] = set()

    async def record_market_marks(self, request: MarketMarksBody) -> MarketMarksOut:
        """Store the batch, check every ACTIVE session holding a marked symbol, halt the
        breached ones, commit, answer; the workflows that must decide are woken meanwhile.

        The answer does not wait for the signals: a flash crash wakes a thousand sessions,
        and the desk's next batch must not queue behind them. The gates of the breached
        sessions are closed before the answer; a signal lost on the way is the sweep's.
        """
        now = datetime.now(UTC)
        for index, mark in enumerate(request.marks):
            refuse_future_mark(mark.marked_at, now, self.settings, f"marks.{index}.marked_at")
        marks = [NewMarketMark(m.symbol, m.price, m.marked_at or now) for m in request.marks]
        window = timedelta(seconds=self.settings.ingest_wake_window_seconds)
        async with self.sessionmaker.begin() as db:
            applied = await MarketMarkRepository(db).upsert(marks)
            fleet = FleetRepository(db)
            losses = await fleet.losses_holding(applied)
            breached = [s.session_id for s in losses.sessions if s.breached]
            halted = set(
                await fleet.close_gates(breached, HALT_REASON, cause=f"marks:{uuid.uuid4().hex}")
            )
            reasons = {s.session_id: reason for s, reason in losses.to_wake()}
            woken = await fleet.claim_wakes(reasons, now, window, CheckSource.MARK)
        self.metrics.ingest_checks.labels("marks", "woke").inc(len(woken))
        self.metrics.ingest_checks.labels("marks", "quiet").inc(losses.checked - len(woken))
        signals = [
            (
                sid,
                CheckNowInput(source="marks", reason=reasons[sid].value, gate_closed=sid in halted),
            )
            for sid in woken
        ]
        if signals:
            task = asyncio.create_task(signal_checks(self.client, signals))
            self._signalling.add(task)
            task.add_done_callback(self._signalling.discard)
        return MarketMarksOut(
            marks_applied=len(applied),
            sessions_affected=losses.checked,
            sessions_halted=len(halted),
            sessions_woken=len(signals),
        )


async def signal_checks(client: Client, signals: list[tuple[str, CheckNowInput]]) -> int:
    """Send ``check_now`` to each session, at most SIGNAL_CONCURRENCY at once; return how many
    arrived. The data is committed: a lost signal is caught by the next sweep."""
    gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)

    async def send(session_id: str, request: CheckNowInput) -> bool:
        async with gate:
            try:
                await session_handle(client, session_id).signal(
                    TradingSessionWorkflow.check_now, request
                )
            except RPCError as err:
                log.warning("could not wake session %s: %s", session_id, err.message)
                return False
            return True

    return sum(await asyncio.gather(*(send(sid, req) for sid, req in signals)))
