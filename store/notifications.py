"""The notification outbox. Rows are written with the event; delivery marks them sent."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.alerts import Audience
from store.models import Notification

# LISTEN on this channel to hear of each committed notification (payload: its id).
NOTIFY_CHANNEL = "notifications"


class NotificationRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def enqueue(
        self,
        *,
        session_id: str | None,
        account_id: str | None,
        kind: str,
        payload: dict[str, Any],
        dedupe_key: str,
        audience: Audience = Audience.ACCOUNT,
    ) -> bool:
        """Queue one notification; the dedupe key makes a retried write a no-op.

        An ``account`` notification names its session and account; an ``operators`` one (an
        alert) may name neither.
        """
        stmt = (
            insert(Notification)
            .values(
                session_id=session_id,
                account_id=account_id,
                audience=audience.value,
                kind=kind,
                payload=payload,
                dedupe_key=dedupe_key,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(Notification.id)
        )
        new_id = (await self.db.execute(stmt)).scalar_one_or_none()
        if new_id is not None:
            # PostgreSQL delivers a NOTIFY only when this transaction commits, and never if
            # it rolls back, so listeners are woken exactly for notifications that exist.
            await self.db.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": NOTIFY_CHANNEL, "payload": str(new_id)},
            )
        return new_id is not None

    async def id_for(self, dedupe_key: str) -> int | None:
        """The id of the notification queued under ``dedupe_key``, if any."""
        stmt = select(Notification.id).where(Notification.dedupe_key == dedupe_key)
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def get(self, notification_id: int) -> Notification | None:
        return await self.db.get(Notification, notification_id)

    async def mark_delivered(self, notification_id: int) -> None:
        """Stamp the notification delivered; a second call keeps the first time."""
        await self.db.execute(
            update(Notification)
            .where(Notification.id == notification_id, Notification.delivered_at.is_(None))
            .values(delivered_at=func.now())
        )

    async def latest_id(self) -> int:
        """The highest id queued so far (0 when none): where a live stream starts."""
        return (
            await self.db.execute(select(func.coalesce(func.max(Notification.id), 0)))
        ).scalar_one()

    async def page(
        self,
        *,
        after_id: int = 0,
        limit: int = 100,
        session_id: str | None = None,
        account_id: str | None = None,
    ) -> list[Notification]:
        """Notifications with an id above ``after_id``, oldest first."""
        stmt = select(Notification).where(
            Notification.id > after_id, *_filters(session_id, account_id)
        )
        return list((await self.db.execute(stmt.order_by(Notification.id).limit(limit))).scalars())

    async def unsent(
        self,
        *,
        floor: int,
        last_id: int,
        sent: list[int],
        lookback: timedelta,
        limit: int,
        account_id: str | None = None,
    ) -> tuple[list[Notification], datetime]:
        """What a stream has not sent yet, and the database's clock.

        That is ids above ``last_id``, and rows above ``floor`` created within ``lookback``
        that are not in ``sent``: they committed after a higher id was already streamed.
        """
        now = (await self.db.execute(select(func.now()))).scalar_one()
        stmt = select(Notification).where(
            Notification.id > floor,
            Notification.id.not_in(sent),
            or_(Notification.id > last_id, Notification.created_at > now - lookback),
            *_filters(None, account_id),
        )
        rows = (await self.db.execute(stmt.order_by(Notification.id).limit(limit))).scalars()
        return list(rows), now


def _filters(session_id: str | None, account_id: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if session_id is not None:
        conditions.append(Notification.session_id == session_id)
    if account_id is not None:
        conditions.append(Notification.account_id == account_id)
    return conditions
