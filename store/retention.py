"""Retention: removing the trading data of long-ended sessions. Never commits.

The session row (with its final status and realized PnL) and the audit trail are kept for
good; only fills, marks and positions go. Each purge appends one audit event per session, so
the trail says when and how much was removed.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.status import TERMINAL_STATUSES
from store.models import AuditEvent, Fill, Mark, Position, TradingSession

PURGE_ACTION = "session.data_purged"


@dataclass(frozen=True)
class PurgeCounts:
    """Rows removed per session, by table."""

    session_ids: list[str]
    fills: Counter[str] = field(default_factory=Counter)
    marks: Counter[str] = field(default_factory=Counter)
    positions: Counter[str] = field(default_factory=Counter)


async def sessions_due_for_purge(db: AsyncSession, cutoff: datetime, limit: int) -> list[str]:
    """Ids of up to ``limit`` sessions that ended before ``cutoff`` and still hold data.

    Oldest first; rows another purge holds are skipped, so two runs never fight over them.
    """
    has_data = or_(
        exists().where(Fill.session_id == TradingSession.id),
        exists().where(Mark.session_id == TradingSession.id),
        exists().where(Position.session_id == TradingSession.id),
    )
    stmt = (
        select(TradingSession.id)
        .where(
            TradingSession.status.in_(TERMINAL_STATUSES),
            TradingSession.ended_at < cutoff,
            has_data,
        )
        .order_by(TradingSession.ended_at, TradingSession.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await db.execute(stmt)).scalars())


async def purge_session_data(
    db: AsyncSession, session_ids: Sequence[str], *, actor: str, cutoff: datetime
) -> PurgeCounts:
    """Delete the fills, marks and positions of these sessions and audit each purge."""
    counts = PurgeCounts(session_ids=list(session_ids))
    if not session_ids:
        return counts
    for model, counter in (
        (Fill, counts.fills),
        (Mark, counts.marks),
        (Position, counts.positions),
    ):
        deleted = (
            delete(model)
            .where(model.session_id.in_(session_ids))
            .returning(model.session_id)
            .cte(f"deleted_{model.__tablename__}")
        )
        stmt = select(deleted.c.session_id, func.count()).group_by(deleted.c.session_id)
        counter.update({session_id: n for session_id, n in (await db.execute(stmt)).all()})
    await db.execute(
        insert(AuditEvent)
        .values(
            [
                {
                    "session_id": session_id,
                    "action": PURGE_ACTION,
                    "actor": actor,
                    "reason": "retention",
                    "details": {
                        "cutoff": cutoff.isoformat(),
                        "fills": counts.fills[session_id],
                        "marks": counts.marks[session_id],
                        "positions": counts.positions[session_id],
                    },
                    "dedupe_key": f"{session_id}:purged:{cutoff.date().isoformat()}",
                }
                for session_id in session_ids
            ]
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    return counts
