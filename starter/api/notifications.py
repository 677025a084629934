"""Notifications over HTTP: the outbox as a list and as a live SSE stream; webhook subscriptions.

The stream wakes on PostgreSQL NOTIFY (sent when a notification commits) and re-reads every
few seconds anyway, so a NOTIFY missed while the LISTEN connection was down is never lost.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Query, Request, status
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.notifications import StreamCursor
from domain.text import Identifier
from starter.api.body import StrictJsonRoute
from starter.api.deps import NotificationsDep
from starter.api.schemas import NotificationOut, WebhookBody, WebhookOut
from starter.services.notifications import NotificationService
from store.listener import NotificationListener

# The safety net: how often an idle stream re-reads even without a NOTIFY.
FALLBACK_INTERVAL = 2.0
# Sent once per connection: how long a browser's EventSource waits before reconnecting.
RECONNECT_MS = 2000

AccountFilter = Annotated[Identifier | None, Query(description="Only this account's.")]


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One LISTEN connection for all streams of this process (runs inside the app's lifespan)."""
    notifications: NotificationService = app.state.services.notifications
    engine: AsyncEngine = notifications.sessionmaker.kw["bind"]
    listener = NotificationListener(engine.url.render_as_string(hide_password=False))
    app.state.notification_listener = listener
    try:
        yield
    finally:
        await listener.close()


router = APIRouter(tags=["notifications"], lifespan=_lifespan, route_class=StrictJsonRoute)


@router.get("/notifications")
async def list_notifications(
    notifications: NotificationsDep,
    session_id: Annotated[Identifier | None, Query()] = None,
    account_id: AccountFilter = None,
    after_id: Annotated[int, Query(ge=0, description="Only ids above this (paging).")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationOut]:
    """Queued notifications, oldest first; page with the last id seen as ``after_id``."""
    return await notifications.page(
        after_id=after_id, limit=limit, session_id=session_id, account_id=account_id
    )


@router.get("/notifications/stream", response_class=EventSourceResponse)
async def stream_notifications(
    request: Request,
    notifications: NotificationsDep,
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
            last_event_id = await notifications.latest_id()
        cursor = StreamCursor(last_event_id)
        yield ServerSentEvent(comment="connected", retry=RECONNECT_MS)
        while not listener.closed and not await request.is_disconnected():
            # Cleared before the read: a NOTIFY arriving during it makes the wait return.
            wake.clear()
            await listener.ensure_listening()
            events, full = await notifications.unsent(cursor, account_id)
            for event in events:
                yield ServerSentEvent(
                    event=event.kind, id=str(event.id), raw_data=event.model_dump_json()
                )
            if not full:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), FALLBACK_INTERVAL)


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, tags=["webhooks"])
async def create_webhook(body: WebhookBody, notifications: NotificationsDep) -> WebhookOut:
    """Subscribe a URL to notifications (of one account, or all); bodies are signed."""
    return await notifications.subscribe(body)


@router.get("/webhooks", tags=["webhooks"])
async def list_webhooks(notifications: NotificationsDep) -> list[WebhookOut]:
    """Every subscription, active or not; secrets are never returned."""
    return await notifications.subscriptions()


@router.delete("/webhooks/{subscription_id}", tags=["webhooks"])
async def deactivate_webhook(subscription_id: int, notifications: NotificationsDep) -> WebhookOut:
    """Stop deliveries to a subscription, retries of those under way included."""
    return await notifications.deactivate(subscription_id)
