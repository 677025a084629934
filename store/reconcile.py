"""What the reconciler reads and writes: open session rows, and the end of one never started."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.status import EndReason, SessionStatus
from store.models import TradingSession
from store.sessions import SessionRepository

# Open: the session may still trade, or its end is not written yet.
OPEN = (
    SessionStatus.PENDING,
    SessionStatus.ACTIVE,
    SessionStatus.ENDING,
    SessionStatus.CLEANUP_FAILED,
)


class ReconcileRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def open_sessions(
        self, shard: int, shards: int, created_before: datetime
    ) -> Sequence[TradingSession]:
        """The open sessions of a sweep shard old enough to have their workflow by now."""
        stmt = (
            select(TradingSession)
            .where(
                TradingSession.status.in_([s.value for s in OPEN]),
                TradingSession.shard_key % shards == shard,
                TradingSession.created_at < created_before,
            )
            .order_by(TradingSession.id)
        )
        return (await self.db.execute(stmt)).scalars().all()

    async def end_unstarted(self, session_id: str, detail: str, at: datetime) -> bool:
        """End a PENDING session whose workflow could not be started: it never traded, so
        there is nothing to wind down. True if this call ended it."""
        sessions = SessionRepository(self.db)
        row = await sessions.get(session_id, for_update=True)
        if row.status != SessionStatus.PENDING:
            return False
        await sessions.transition(session_id, SessionStatus.ENDING)
        reason = EndReason.START_FAILED
        await sessions.transition(
            session_id,
            reason.final_status,
            end_reason=reason,
            end_detail=detail,
            ended_at=at,
            gate_open=False,
            gate_reason=detail,
        )
        return True
