"""Notifications: the event envelope, webhook delivery rules and types, the SSE stream cursor.

Every field added later to a workflow or activity model gets a default, so histories recorded
before it still decode.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

SIGNATURE_HEADER = "X-Trading-Signature"
TIMESTAMP_HEADER = "X-Trading-Timestamp"
EVENT_HEADER = "X-Trading-Event"
DELIVERY_HEADER = "X-Trading-Delivery"

# Webhook retries: quick at first for a blip, then spaced out to ride through a receiver's
# deploy or outage; 12 attempts span about 20 minutes before an operator is alerted.
DELIVERY_INITIAL_INTERVAL = timedelta(seconds=1)
DELIVERY_BACKOFF = 2.0
DELIVERY_MAX_INTERVAL = timedelta(minutes=5)
DELIVERY_MAX_ATTEMPTS = 12

# Timeout the receiver sees statuses as a request it may retry, like the 5xx family.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})


def notification_workflow_id(notification_id: int) -> str:
    """The id of the one delivery workflow of a notification."""
    return f"notification-{notification_id}"


def delivery_id(notification_id: int, subscription_id: int) -> str:
    """The idempotency key a receiver sees on every attempt of one delivery."""
    return f"{notification_id}:{subscription_id}"


def retry_delay(attempt: int) -> timedelta:
    """How long Temporal waits after failed ``attempt`` (1-based) before the next one."""
    seconds = DELIVERY_INITIAL_INTERVAL.total_seconds() * DELIVERY_BACKOFF ** (attempt - 1)
    return min(timedelta(seconds=seconds), DELIVERY_MAX_INTERVAL)


class DeliveryOutcome(StrEnum):
    """What a receiver's HTTP status means for the delivery."""

    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"


def classify_status(status_code: int) -> DeliveryOutcome:
    """2xx delivered; 4xx (but 408, 429) rejected for good; anything else worth retrying."""
    if 200 <= status_code < 300:
        return DeliveryOutcome.DELIVERED
    if 400 <= status_code < 500 and status_code not in RETRYABLE_CLIENT_STATUSES:
        return DeliveryOutcome.REJECTED
    return DeliveryOutcome.RETRY


class NotificationEvent(BaseModel):
    """One notification as receivers see it: the webhook body and the SSE ``data``."""

    id: int
    kind: str
    # "operators" for an alert (``kind`` is ``alert.<its kind>``); it may name no session.
    audience: str = "account"
    session_id: str | None
    account_id: str | None
    created_at: datetime
    payload: dict[str, Any]

    def body(self) -> bytes:
        """The exact bytes sent and signed."""
        return self.model_dump_json().encode()


class DeliverNotificationInput(BaseModel):
    """Deliver notification ``notification_id`` to every matching active subscription."""

    notification_id: int


class DeliveryTargets(BaseModel):
    """The subscriptions a notification goes to, fixed when its delivery starts."""

    notification_id: int
    subscription_ids: list[int] = Field(default_factory=list)


class DeliverInput(BaseModel):
    """One notification to one subscription."""

    notification_id: int
    subscription_id: int


class DeliverResult(BaseModel):
    """An attempt that did not raise: delivered now, before, or skipped (deactivated)."""

    delivered: bool
    detail: str = ""


class DeliveryFailedInput(BaseModel):
    """A delivery gave up: what to record and alert on."""

    notification_id: int
    subscription_id: int
    error: str


class DeliveryResult(BaseModel):
    """What the delivery workflow achieved, by subscription id."""

    notification_id: int
    delivered: list[int] = Field(default_factory=list)
    failed: list[int] = Field(default_factory=list)
    skipped: list[int] = Field(default_factory=list)


class StreamCursor:
    """Where one SSE stream is, so a notification that commits late is sent once, not lost.

    Ids are drawn before commit, so id 10 can become visible after id 11 was sent. A re-read
    therefore asks for ids above ``last_id`` and for recent rows not yet sent; nothing at or
    below ``floor`` (where the stream started) is ever sent.
    """

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self.last_id = floor
        self._sent: dict[int, datetime] = {}

    @property
    def recently_sent(self) -> list[int]:
        """Ids sent whose rows a lookback re-read may still return."""
        return sorted(self._sent)

    def take(self, events: Iterable[NotificationEvent]) -> list[NotificationEvent]:
        """The events not sent yet, in id order; they count as sent from now on."""
        fresh = sorted(
            (e for e in events if e.id > self.floor and e.id not in self._sent),
            key=lambda e: e.id,
        )
        for event in fresh:
            self._sent[event.id] = event.created_at
            self.last_id = max(self.last_id, event.id)
        return fresh

    def forget_before(self, moment: datetime) -> None:
        """Drop sent ids created before ``moment``: the lookback no longer reaches them."""
        self._sent = {i: at for i, at in self._sent.items() if at >= moment}
