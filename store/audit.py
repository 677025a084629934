"""Append-only audit trail. Rows are only ever inserted; a trigger refuses the rest."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditEvent


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
