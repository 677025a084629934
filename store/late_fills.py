"""What the late-fill follow-up reads: ended sessions a late fill left unfinished."""

from collections.abc import Sequence

from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.late_fills import LATE_FILL_NOTIFICATION
from domain.status import TERMINAL_STATUSES
from store.models import Fill, Notification, Position, TradingSession


def late_fill_notification_key(session_id: str, fill_id: str) -> str:
    """One ``session.late_fill`` notification per late fill."""
    return f"{session_id}:{LATE_FILL_NOTIFICATION}:{fill_id}"


class LateFillRepository:
    """Never commits: the caller owns the transaction."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def sessions_to_follow_up(self, shard: int, shards: int) -> Sequence[str]:
        """Ended sessions of a sweep shard that hold an open position, or have a late fill
        not yet announced (its follow-up has not finished). One statement for the shard;
        the partial indexes of migration 0008 keep it to the few rows that matter."""
        open_position = exists().where(
            Position.session_id == TradingSession.id, Position.quantity != 0
        )
        notified = exists().where(
            Notification.dedupe_key
            == func.concat(TradingSession.id, f":{LATE_FILL_NOTIFICATION}:", Fill.fill_id)
        )
        unannounced = exists().where(
            and_(Fill.session_id == TradingSession.id, Fill.late, ~notified)
        )
        stmt = (
            select(TradingSession.id)
            .where(
                TradingSession.status.in_([s.value for s in TERMINAL_STATUSES]),
                TradingSession.shard_key % shards == shard,
                open_position | unannounced,
            )
            .order_by(TradingSession.id)
        )
        return (await self.db.execute(stmt)).scalars().all()

    async def unannounced(self, session_id: str) -> Sequence[Fill]:
        """The session's late fills without their ``session.late_fill`` notification."""
        key = func.concat(session_id, f":{LATE_FILL_NOTIFICATION}:", Fill.fill_id)
        stmt = (
            select(Fill)
            .where(
                Fill.session_id == session_id,
                Fill.late,
                ~exists().where(Notification.dedupe_key == key),
            )
            .order_by(Fill.executed_at, Fill.id)
        )
        return (await self.db.execute(stmt)).scalars().all()

    async def late_count(self, session_id: str) -> int:
        stmt = select(func.count()).where(Fill.session_id == session_id, Fill.late)
        return (await self.db.execute(stmt)).scalar_one()
