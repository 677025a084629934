"""Notification delivery: one workflow per notification, one retried activity per webhook."""

import asyncio
from datetime import timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from domain.notifications import (
        DELIVERY_BACKOFF,
        DELIVERY_INITIAL_INTERVAL,
        DELIVERY_MAX_ATTEMPTS,
        DELIVERY_MAX_INTERVAL,
        DeliverInput,
        DeliverNotificationInput,
        DeliveryFailedInput,
        DeliveryResult,
        notification_workflow_id,
    )
    from workflows.policies import DATABASE_RETRY

__all__ = [
    "NotificationDeliveryWorkflow",
    "notification_workflow_id",
]

Outcome = Literal["delivered", "failed", "skipped"]
# One POST with a 10 s HTTP timeout plus two short writes; past this the attempt is retried.
DELIVERY_TIMEOUT = timedelta(seconds=30)
# Reads and writes of the outbox and delivery rows.
DATABASE_TIMEOUT = timedelta(seconds=15)
# Backoff 1 s, 2 s, 4 s ... capped at 5 min; after the last attempt an operator is alerted.
# A 4xx answer (but 408/429) is a non-retryable ApplicationError and stops at once.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=DELIVERY_INITIAL_INTERVAL,
    backoff_coefficient=DELIVERY_BACKOFF,
    maximum_interval=DELIVERY_MAX_INTERVAL,
    maximum_attempts=DELIVERY_MAX_ATTEMPTS,
)


@workflow.defn(name="NotificationDelivery")
class NotificationDeliveryWorkflow:
    @workflow.run
    async def run(self, input: DeliverNotificationInput) -> DeliveryResult:
        """Deliver to every target at once, alert on those that give up, then mark it sent."""
        targets = await workflow.execute_activity_method(
            NotificationActivities.list_delivery_targets,
            input,
            start_to_close_timeout=DATABASE_TIMEOUT,
            retry_policy=DATABASE_RETRY,
            summary=f"subscribers of notification {input.notification_id}",
        )
        # Side by side: one slow or dead receiver must not hold up the others.
        outcomes = await asyncio.gather(
            *(self._deliver(input.notification_id, sid) for sid in targets.subscription_ids)
        )
        result = DeliveryResult(notification_id=input.notification_id)
        for subscription_id, outcome in zip(targets.subscription_ids, outcomes, strict=True):
            if outcome == "delivered":
                result.delivered.append(subscription_id)
            elif outcome == "failed":
                result.failed.append(subscription_id)
            else:
                result.skipped.append(subscription_id)
        await workflow.execute_activity_method(
            NotificationActivities.mark_notification_delivered,
            input,
            start_to_close_timeout=DATABASE_TIMEOUT,
            retry_policy=DATABASE_RETRY,
            summary=f"{len(result.delivered)} delivered, {len(result.failed)} gave up",
        )
        workflow.logger.info(
            "notification %d: %d delivered, %d failed, %d skipped",
            input.notification_id,
            len(result.delivered),
            len(result.failed),
            len(result.skipped),
        )
        return result

    async def _deliver(self, notification_id: int, subscription_id: int) -> Outcome:
        delivery = DeliverInput(notification_id=notification_id, subscription_id=subscription_id)
        try:
            outcome = await workflow.execute_activity_method(
                NotificationActivities.deliver_webhook,
                delivery,
                start_to_close_timeout=DELIVERY_TIMEOUT,
                retry_policy=DELIVERY_RETRY,
                summary=f"POST to webhook {subscription_id}",
            )
        except ActivityError as err:
            await workflow.execute_activity_method(
                NotificationActivities.record_delivery_failure,
                DeliveryFailedInput(
                    notification_id=notification_id,
                    subscription_id=subscription_id,
                    error=_reason(err),
                ),
                start_to_close_timeout=DATABASE_TIMEOUT,
                retry_policy=DATABASE_RETRY,
                summary=f"webhook {subscription_id} gave up: alert",
            )
            return "failed"
        return "delivered" if outcome.delivered else "skipped"


def _reason(err: ActivityError) -> str:
    """The innermost message: ``HTTP 500: ...`` rather than ``Activity task failed``."""
    cause: BaseException = err
    while cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, FailureError) and cause.message:
        return cause.message
    return str(cause) or type(cause).__name__
