"""The halt webhook's delivery: its own workflow, so the termination never waits on it."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.halt_webhook import HaltWebhookActivities
    from domain.halt_webhook import (
        HALT_WEBHOOK_BACKOFF,
        HALT_WEBHOOK_MAX_INTERVAL,
        HaltDeliveryFailedInput,
        HaltDeliveryInput,
    )
    from workflows.policies import DATABASE_RETRY

HALT_WEBHOOK_WORKFLOW = "HaltWebhookDelivery"
# One POST with a 10 s HTTP timeout and a read of the algorithm's row.
DELIVERY_TIMEOUT = timedelta(seconds=30)
# The alert and audit event of a delivery that gave up: our database only.
DATABASE_TIMEOUT = timedelta(seconds=15)


@workflow.defn(name=HALT_WEBHOOK_WORKFLOW)
class HaltWebhookDeliveryWorkflow:
    @workflow.run
    async def run(self, input: HaltDeliveryInput) -> bool:
        """True once delivered (or no webhook to call); False when it gave up and alerted."""
        try:
            return await workflow.execute_activity_method(
                HaltWebhookActivities.deliver_halt,
                input,
                start_to_close_timeout=DELIVERY_TIMEOUT,
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=input.first_retry_seconds),
                    backoff_coefficient=HALT_WEBHOOK_BACKOFF,
                    maximum_interval=HALT_WEBHOOK_MAX_INTERVAL,
                    maximum_attempts=input.max_attempts,
                ),
                summary=f"POST the halt of session {input.session_id}",
            )
        except ActivityError as err:
            await workflow.execute_activity_method(
                HaltWebhookActivities.record_halt_webhook_failure,
                HaltDeliveryFailedInput(delivery=input, error=_reason(err)),
                start_to_close_timeout=DATABASE_TIMEOUT,
                retry_policy=DATABASE_RETRY,
                summary="alert: the halt webhook gave up",
            )
            return False


def _reason(err: ActivityError) -> str:
    """The innermost message: ``HTTP 503: ...`` rather than ``Activity task failed``."""
    cause: BaseException = err
    while cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, FailureError) and cause.message:
        return cause.message
    return str(cause) or type(cause).__name__
