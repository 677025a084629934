"""Webhook delivery activities: find a notification's subscribers, POST it, record the outcome.

Temporal retries a failed delivery with backoff (see workflows/notifications.py); each attempt
is written to ``webhook_deliveries`` so operators see progress without reading histories.
"""

import time
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ApplicationError,
    ApplicationErrorCategory,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError

from domain import signing
from domain.alerts import Audience
from domain.notifications import (
    DELIVERY_HEADER,
    DELIVERY_MAX_ATTEMPTS,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliverInput,
    DeliverNotificationInput,
    DeliverResult,
    DeliveryFailedInput,
    DeliveryOutcome,
    DeliveryTargets,
    NotificationEvent,
    classify_status,
    delivery_id,
    notification_workflow_id,
    retry_delay,
)
from domain.session_messages import NotificationRef
from store.alerts import AlertRepository
from store.models import Notification
from store.notifications import NotificationRepository
from store.webhooks import WebhookRepository

# A receiver should acknowledge at once and work later; one that takes longer is retried.
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Kept short in the database: enough to diagnose, never a whole error page.
MAX_ERROR_CHARS = 500


class NotificationActivities:
    """Built once per worker with the shared session factory and HTTP client."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], http_client: httpx.AsyncClient
    ) -> None:
        self.sessionmaker = sessionmaker
        self.http = http_client

    @activity.defn
    async def start_delivery(self, input: NotificationRef) -> None:
        """Start the notification's delivery workflow, which outlives the session's.

        Started from an activity rather than as a child workflow, so the session never
        waits on webhooks and a retried call finds the running delivery and leaves it be.
        """
        if input.notification_id is None:
            return
        await start_delivery_workflow(self.sessionmaker, input.notification_id)

    @activity.defn
    async def list_delivery_targets(self, input: DeliverNotificationInput) -> DeliveryTargets:
        """Active subscriptions for the notification's account, plus those for every account."""
        async with self.sessionmaker() as db:
            notification = await _notification(db, input.notification_id)
            ids = await _targets(db, notification)
        return DeliveryTargets(notification_id=input.notification_id, subscription_ids=ids)

    @activity.defn
    async def deliver_webhook(self, input: DeliverInput) -> DeliverResult:
        """POST the signed notification once; raise to have Temporal retry, or give up on 4xx."""
        attempt = activity.info().attempt
        async with self.sessionmaker() as db:
            webhooks = WebhookRepository(db)
            done = await webhooks.delivery(input.notification_id, input.subscription_id)
            if done is not None and done.delivered_at is not None:
                # An earlier attempt got through but its completion was lost: don't resend.
                return DeliverResult(delivered=True, detail="delivered before")
            subscription = await webhooks.get(input.subscription_id)
            notification = await _notification(db, input.notification_id)
        if subscription is None or not subscription.active:
            return DeliverResult(delivered=False, detail="subscription deactivated")
        body = _event(notification).body()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signing.sign(subscription.secret, body),
            TIMESTAMP_HEADER: str(int(time.time())),
            EVENT_HEADER: notification.kind,
            DELIVERY_HEADER: delivery_id(input.notification_id, input.subscription_id),
        }
        try:
            response = await self.http.post(
                subscription.url, content=body, headers=headers, timeout=HTTP_TIMEOUT
            )
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"[:MAX_ERROR_CHARS]
            raise await self._failed(input, attempt, error, DeliveryOutcome.RETRY) from err
        outcome = classify_status(response.status_code)
        if outcome is DeliveryOutcome.DELIVERED:
            await self._record(input, attempt, None, outcome)
            return DeliverResult(delivered=True, detail=f"HTTP {response.status_code}")
        error = f"HTTP {response.status_code}: {response.text[:200]}"[:MAX_ERROR_CHARS]
        raise await self._failed(input, attempt, error, outcome)

    @activity.defn
    async def record_delivery_failure(self, input: DeliveryFailedInput) -> None:
        """A delivery gave up: keep its last error and raise an alert for an operator (once)."""
        async with self.sessionmaker.begin() as db:
            notification = await _notification(db, input.notification_id)
            await WebhookRepository(db).record_gave_up(
                input.notification_id, input.subscription_id, input.error[:MAX_ERROR_CHARS]
            )
            # A failed alert is alerted, but not announced: that would feed itself.
            operators = notification.audience == Audience.OPERATORS
            await AlertRepository(db).raise_alert(
                notify=not operators,
                kind="webhook_delivery_failed",
                message=(
                    f"notification {input.notification_id} ({notification.kind}) was not "
                    f"delivered to webhook subscription {input.subscription_id}: {input.error}"
                )[:2000],
                session_id=notification.session_id,
                dedupe_key=f"webhook:{delivery_id(input.notification_id, input.subscription_id)}",
            )
        if not operators:
            await announce_alert(
                self.sessionmaker,
                f"webhook:{delivery_id(input.notification_id, input.subscription_id)}",
            )
        activity.logger.warning(
            "webhook delivery %s gave up",
            delivery_id(input.notification_id, input.subscription_id),
        )

    @activity.defn
    async def mark_notification_delivered(self, input: DeliverNotificationInput) -> None:
        """Every subscription had its delivery (or its alert): the outbox row is done."""
        async with self.sessionmaker.begin() as db:
            await NotificationRepository(db).mark_delivered(input.notification_id)

    async def _failed(
        self, input: DeliverInput, attempt: int, error: str, outcome: DeliveryOutcome
    ) -> ApplicationError:
        """Record the failed attempt; the error to raise so Temporal retries it or gives up."""
        await self._record(input, attempt, error, outcome)
        rejected = outcome is DeliveryOutcome.REJECTED
        activity.logger.warning(
            "webhook delivery %s attempt %d failed: %s",
            delivery_id(input.notification_id, input.subscription_id),
            attempt,
            error,
        )
        # A receiver being down is expected, not our bug: BENIGN keeps the SDK from logging a
        # traceback per attempt; the line above and webhook_deliveries say what happened.
        return ApplicationError(
            error,
            type="WebhookRejected" if rejected else "WebhookFailed",
            non_retryable=rejected,
            category=ApplicationErrorCategory.BENIGN,
        )

    async def _record(
        self, input: DeliverInput, attempt: int, error: str | None, outcome: DeliveryOutcome
    ) -> None:
        retrying = outcome is DeliveryOutcome.RETRY and attempt < DELIVERY_MAX_ATTEMPTS
        async with self.sessionmaker.begin() as db:
            await WebhookRepository(db).record_attempt(
                input.notification_id,
                input.subscription_id,
                attempt=attempt,
                error=error,
                next_attempt_at=datetime.now(UTC) + retry_delay(attempt) if retrying else None,
                delivered=outcome is DeliveryOutcome.DELIVERED,
            )


def _event(row: Notification) -> NotificationEvent:
    return NotificationEvent.model_validate(row, from_attributes=True)


async def start_delivery_workflow(
    sessionmaker: async_sessionmaker[AsyncSession], notification_id: int
) -> None:
    """From inside an activity: start the notification's delivery workflow, unless nobody
    subscribed (then the outbox row, which the SSE stream reads, is all there is to it)."""
    async with sessionmaker.begin() as db:
        notification = await _notification(db, notification_id)
        if not await _targets(db, notification):
            # A delivery workflow per warning and end would cost more than the session's
            # whole termination.
            await NotificationRepository(db).mark_delivered(notification_id)
            return
    try:
        await activity.client().start_workflow(
            "NotificationDelivery",
            DeliverNotificationInput(notification_id=notification_id),
            id=notification_workflow_id(notification_id),
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
    except WorkflowAlreadyStartedError:
        activity.logger.info("notification %d delivered already", notification_id)


async def announce_alert(sessionmaker: async_sessionmaker[AsyncSession], dedupe_key: str) -> None:
    """After the alert's transaction committed: deliver its notification to the operators'
    webhooks. Best effort: the alert and its outbox row stand (the operators' SSE stream and
    ``GET /alerts`` show it) even when Temporal refuses the start, which is logged."""
    try:
        async with sessionmaker() as db:
            notification_id = await AlertRepository(db).notification_id(dedupe_key)
        if notification_id is not None:
            await start_delivery_workflow(sessionmaker, notification_id)
    except (RPCError, RuntimeError) as err:
        activity.logger.error("alert %s not sent to operator webhooks: %s", dedupe_key, err)


async def _targets(db: AsyncSession, notification: Notification) -> list[int]:
    """The active subscriptions this notification goes to (by its audience)."""
    return await WebhookRepository(db).targets(
        notification.account_id, Audience(notification.audience)
    )


async def _notification(db: AsyncSession, notification_id: int) -> Notification:
    notification = await NotificationRepository(db).get(notification_id)
    if notification is None:
        raise ApplicationError(
            f"notification {notification_id} not found",
            type="NotificationNotFound",
            non_retryable=True,
        )
    return notification
