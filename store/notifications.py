"""The notification outbox. Rows are written with the event; delivery marks them sent."""

from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Notification


class NotificationRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def enqueue(
        self,
        *,
        session_id: str,
        account_id: str,
        kind: str,
        payload: dict[str, Any],
        dedupe_key: str,
    ) -> bool:
        """Queue one notification; the dedupe key makes a retried write a no-op."""
        stmt = (
            insert(Notification)
            .values(
                session_id=session_id,
                account_id=account_id,
                kind=kind,
                payload=payload,
                dedupe_key=dedupe_key,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Notification.id)
        )
        return (await self.db.execute(stmt)).scalar_one_or_none() is not None
