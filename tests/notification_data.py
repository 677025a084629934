"""Rows the notification tests start from: queued notifications and webhook subscriptions."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.notifications import NotificationRepository
from store.webhooks import WebhookRepository

SECRET = "test-secret-0123456789abcdef"


def warning_payload(session_id: str) -> dict[str, Any]:
    """What record_warning writes for a loss warning at 80 %."""
    return {
        "session_id": session_id,
        "kind": "LOSS",
        "threshold": 0.8,
        "used": 0.82,
        "at": "2025-01-06T10:00:00+00:00",
        "message": "loss used 82% reached the 80% warning threshold",
    }


async def queue_notification(
    sessionmaker: async_sessionmaker[AsyncSession],
    account_id: str,
    kind: str = "warning.loss",
    session_id: str | None = None,
) -> int:
    """Commit one outbox row the way the activities do; return its id."""
    session_id = session_id or f"notify-{uuid.uuid4().hex[:10]}"
    key = f"{session_id}:{kind}:{uuid.uuid4().hex}"
    async with sessionmaker.begin() as db:
        repository = NotificationRepository(db)
        await repository.enqueue(
            session_id=session_id,
            account_id=account_id,
            kind=kind,
            payload=warning_payload(session_id),
            dedupe_key=key,
        )
        notification_id = await repository.id_for(key)
    assert notification_id is not None
    return notification_id


async def subscribe(
    sessionmaker: async_sessionmaker[AsyncSession],
    url: str,
    account_id: str | None,
    secret: str = SECRET,
) -> int:
    async with sessionmaker.begin() as db:
        row = await WebhookRepository(db).subscribe(url=url, secret=secret, account_id=account_id)
    return row.id


async def deactivate(sessionmaker: async_sessionmaker[AsyncSession], ids: list[int]) -> None:
    """Tests share one database: a subscription left active would receive later tests' rows."""
    async with sessionmaker.begin() as db:
        for subscription_id in ids:
            await WebhookRepository(db).deactivate(subscription_id)


def new_account() -> str:
    return f"acc-{uuid.uuid4().hex[:10]}"
