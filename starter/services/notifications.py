"""Notifications and webhook subscriptions: the outbox read as pages and as a live stream.

The stream's read returns what was committed since a cursor, looking back a while for
notifications whose ids were drawn before others but committed after them.
"""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.notifications import NotificationEvent, StreamCursor
from starter.api.schemas import NotificationOut, WebhookBody, WebhookOut
from starter.services.errors import NotFoundError
from store.notifications import NotificationRepository
from store.webhooks import WebhookRepository

# How long after its id was drawn a notification may commit and still reach open streams.
LATE_COMMIT_WINDOW = timedelta(seconds=30)
# Rows per stream read; a full page is followed at once by the next.
STREAM_PAGE = 200


class NotificationService:
    """The notification outbox and the webhook subscriptions that deliver it."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def page(
        self, *, after_id: int, limit: int, session_id: str | None, account_id: str | None
    ) -> list[NotificationOut]:
        """Queued notifications, oldest first, after ``after_id``."""
        async with self.sessionmaker() as db:
            rows = await NotificationRepository(db).page(
                after_id=after_id, limit=limit, session_id=session_id, account_id=account_id
            )
        return [NotificationOut.model_validate(row, from_attributes=True) for row in rows]

    async def latest_id(self) -> int:
        """The newest notification id: where a stream without Last-Event-ID starts."""
        async with self.sessionmaker() as db:
            return await NotificationRepository(db).latest_id()

    async def unsent(
        self, cursor: StreamCursor, account_id: str | None
    ) -> tuple[list[NotificationEvent], bool]:
        """The events the cursor has not sent yet, and whether the page was full."""
        async with self.sessionmaker() as db:
            rows, now = await NotificationRepository(db).unsent(
                floor=cursor.floor,
                last_id=cursor.last_id,
                sent=cursor.recently_sent,
                lookback=LATE_COMMIT_WINDOW,
                limit=STREAM_PAGE,
                account_id=account_id,
            )
        cursor.forget_before(now - LATE_COMMIT_WINDOW)
        events = [NotificationEvent.model_validate(row, from_attributes=True) for row in rows]
        return cursor.take(events), len(rows) == STREAM_PAGE

    async def subscribe(self, request: WebhookBody) -> WebhookOut:
        """A new webhook subscription (of one account, or all)."""
        async with self.sessionmaker.begin() as db:
            row = await WebhookRepository(db).subscribe(
                url=str(request.url),
                secret=request.secret,
                account_id=request.account_id,
                scope=request.scope,
            )
            return WebhookOut.model_validate(row, from_attributes=True)

    async def subscriptions(self) -> list[WebhookOut]:
        """Every subscription, active or not; secrets are never returned."""
        async with self.sessionmaker() as db:
            rows = await WebhookRepository(db).subscriptions()
        return [WebhookOut.model_validate(row, from_attributes=True) for row in rows]

    async def deactivate(self, subscription_id: int) -> WebhookOut:
        """Stop deliveries to a subscription; 404 for an unknown one."""
        async with self.sessionmaker.begin() as db:
            row = await WebhookRepository(db).deactivate(subscription_id)
            if row is None:
                raise NotFoundError(f"webhook subscription {subscription_id} not found")
            return WebhookOut.model_validate(row, from_attributes=True)
