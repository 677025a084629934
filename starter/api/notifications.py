"""Notifications over HTTP: the outbox as a list and as a live SSE stream; webhook subscriptions.

The stream wakes on PostgreSQL NOTIFY (sent when a notification commits) and re-reads every
few seconds anyway, so a NOTIFY missed while the LISTEN connection was down is never lost.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request, status
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.notifications import NotificationEvent, StreamCursor
from domain.text import HttpUrl, Identifier, check_text
from starter.api.body import StrictJsonRoute
from starter.api.deps import SessionmakerDep
from starter.api.schemas import Request as RequestBody
from starter.services.errors import NotFoundError
from store.listener import NotificationListener
from store.notifications import NotificationRepository
from store.webhooks import WebhookRepository

# The safety net: how often an idle stream re-reads even without a NOTIFY.
FALLBACK_INTERVAL = 2.0
# How long after its id was drawn a notification may commit and still reach open streams.
LATE_COMMIT_WINDOW = timedelta(seconds=30)
# Rows per stream read; a full page is followed at once by the next.
STREAM_PAGE = 200
# Sent once per connection: how long a browser's EventSource waits before reconnecting.
RECONNECT_MS = 2000

WebhookSecret = Annotated[
    str, StringConstraints(min_length=16), AfterValidator(partial(check_text, max_len=256))
]
AccountFilter = Annotated[Identifier | None, Query(description="Only this account's.")]


class NotificationOut(BaseModel):
    """A queued notification; ``delivered_at`` is set once every webhook got it (or alerted)."""

    id: int
    kind: str
    session_id: str
    account_id: str
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class WebhookRequest(RequestBody):
    """A new webhook subscription."""

    url: HttpUrl = Field(description="Where notifications are POSTed (http or https).")
    secret: WebhookSecret = Field(
        description="HMAC-SHA256 key: 16-256 characters, no control characters; never returned."
    )
    account_id: Identifier | None = Field(default=None, description="Unset: every account.")


class WebhookOut(BaseModel):
    """A subscription as the API shows it: never with its secret."""

    id: int
    url: str
    account_id: str | None
    active: bool
    created_at: datetime


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One LISTEN connection for all streams of this process (runs inside the app's lifespan)."""
    sessionmaker: async_sessionmaker[AsyncSession] = app.state.service.sessionmaker
    engine: AsyncEngine = sessionmaker.kw["bind"]
    listener = NotificationListener(engine.url.render_as_string(hide_password=False))
    app.state.notification_listener = listener
    try:
        yield
    finally:
        await listener.close()


router = APIRouter(tags=["notifications"], lifespan=_lifespan, route_class=StrictJsonRoute)


@router.get("/notifications")
async def list_notifications(
    sessionmaker: SessionmakerDep,
    session_id: Annotated[Identifier | None, Query()] = None,
    account_id: AccountFilter = None,
    after_id: Annotated[int, Query(ge=0, description="Only ids above this (paging).")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationOut]:
    """Queued notifications, oldest first; page with the last id seen as ``after_id``."""
    async with sessionmaker() as db:
        rows = await NotificationRepository(db).page(
            after_id=after_id, limit=limit, session_id=session_id, account_id=account_id
        )
    return [NotificationOut.model_validate(row, from_attributes=True) for row in rows]


@router.get("/notifications/stream", response_class=EventSourceResponse)
async def stream_notifications(
    request: Request,
    sessionmaker: SessionmakerDep,
    account_id: AccountFilter = None,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
) -> AsyncIterable[ServerSentEvent]:
    """Server-sent events of new notifications: ``event: <kind>``, ``id: <id>``, JSON data.

    With ``Last-Event-ID`` it first replays what came after that id. Delivery is at least
    once: a client keeps the ids it has seen and drops repeats.
    """
    listener: NotificationListener = request.app.state.notification_listener
    async with listener.subscribe() as wake:
        # Listening before the greeting: once a client sees it, nothing new can slip by.
        if last_event_id is None:
            async with sessionmaker() as db:
                last_event_id = await NotificationRepository(db).latest_id()
        cursor = StreamCursor(last_event_id)
        yield ServerSentEvent(comment="connected", retry=RECONNECT_MS)
        while not listener.closed and not await request.is_disconnected():
            # Cleared before the read: a NOTIFY arriving during it makes the wait return.
            wake.clear()
            await listener.ensure_listening()
            events, full = await _unsent(sessionmaker, cursor, account_id)
            for event in events:
                yield ServerSentEvent(
                    event=event.kind, id=str(event.id), raw_data=event.model_dump_json()
                )
            if not full:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), FALLBACK_INTERVAL)


async def _unsent(
    sessionmaker: async_sessionmaker[AsyncSession], cursor: StreamCursor, account_id: str | None
) -> tuple[list[NotificationEvent], bool]:
    async with sessionmaker() as db:
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


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, tags=["webhooks"])
async def create_webhook(body: WebhookRequest, sessionmaker: SessionmakerDep) -> WebhookOut:
    """Subscribe a URL to notifications (of one account, or all); bodies are signed."""
    async with sessionmaker.begin() as db:
        row = await WebhookRepository(db).subscribe(
            url=str(body.url), secret=body.secret, account_id=body.account_id
        )
        return WebhookOut.model_validate(row, from_attributes=True)


@router.get("/webhooks", tags=["webhooks"])
async def list_webhooks(sessionmaker: SessionmakerDep) -> list[WebhookOut]:
    """Every subscription, active or not; secrets are never returned."""
    async with sessionmaker() as db:
        rows = await WebhookRepository(db).subscriptions()
    return [WebhookOut.model_validate(row, from_attributes=True) for row in rows]


@router.delete("/webhooks/{subscription_id}", tags=["webhooks"])
async def deactivate_webhook(subscription_id: int, sessionmaker: SessionmakerDep) -> WebhookOut:
    """Stop deliveries to a subscription, retries of those under way included."""
    async with sessionmaker.begin() as db:
        row = await WebhookRepository(db).deactivate(subscription_id)
        if row is None:
            raise NotFoundError(f"webhook subscription {subscription_id} not found")
        return WebhookOut.model_validate(row, from_attributes=True)
