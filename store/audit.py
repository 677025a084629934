"""Append-only audit trail. Rows are only ever inserted; a trigger refuses the rest."""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditEvent, TradingSession


class AuditRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def append(
        self,
        *,
        session_id: str,
        action: str,
        actor: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        workflow_id: str | None = None,
        run_id: str | None = None,
        dedupe_key: str | None = None,
    ) -> bool:
        """Write one event; with a ``dedupe_key`` a retried write is a no-op. True if written."""
        stmt = (
            insert(AuditEvent)
            .values(
                session_id=session_id,
                action=action,
                actor=actor,
                reason=reason,
                details=details or {},
                workflow_id=workflow_id,
                run_id=run_id,
                dedupe_key=dedupe_key,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(AuditEvent.id)
        )
        return (await self.db.execute(stmt)).scalar_one_or_none() is not None

    async def for_session(self, session_id: str) -> Sequence[AuditEvent]:
        stmt = (
            select(AuditEvent)
            .where(AuditEvent.session_id == session_id)
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
        )
        return (await self.db.execute(stmt)).scalars().all()

    async def append_many(self, events: Sequence[dict[str, Any]]) -> int:
        """Write many events in one statement (keys as :meth:`append`'s); a retried event
        with the same ``dedupe_key`` is skipped. Returns how many were written."""
        if not events:
            return 0
        rows = [{"reason": None, "workflow_id": None, "run_id": None, **e} for e in events]
        for row in rows:
            row.setdefault("details", {})
            row.setdefault("dedupe_key", None)
        stmt = (
            insert(AuditEvent)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(AuditEvent.id)
        )
        return len((await self.db.execute(stmt)).all())


@dataclass(frozen=True)
class AuditQuery:
    """A window and filters of the audit trail; None means any. ``since`` is inclusive,
    ``until`` exclusive, so consecutive windows neither miss nor repeat an event."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    account_id: str | None = None
    session_id: str | None = None


def audit_statement(query: AuditQuery) -> Select[AuditEvent]:
    """The events matching ``query`` in (occurred_at, id) order, for a streamed export."""
    stmt = select(AuditEvent)
    if query.since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= query.since)
    if query.until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < query.until)
    if query.actor is not None:
        stmt = stmt.where(AuditEvent.actor == query.actor)
    if query.action is not None:
        stmt = stmt.where(AuditEvent.action == query.action)
    if query.session_id is not None:
        stmt = stmt.where(AuditEvent.session_id == query.session_id)
    if query.account_id is not None:
        sessions = select(TradingSession.id).where(TradingSession.account_id == query.account_id)
        stmt = stmt.where(AuditEvent.session_id.in_(sessions))
    return stmt.order_by(AuditEvent.occurred_at, AuditEvent.id)


async def stream_audit(
    db: AsyncSession, query: AuditQuery, batch: int = 500
) -> AsyncIterator[Sequence[AuditEvent]]:
    """The matching events in batches, read through a server-side cursor: memory stays at
    one batch however long the window (the caller's session holds the cursor's transaction)."""
    result = await db.stream_scalars(audit_statement(query).execution_options(yield_per=batch))
    async for partition in result.partitions(batch):
        yield partition
