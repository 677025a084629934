"""Several termination steps in one activity call, each exactly as its own activity runs it.

A local activity costs the worker a workflow activation on top of its own work, and a session's
end used to take nine of them; in two calls, an expiry wave of sessions costs the
(single-core) worker far fewer. Each step keeps its own code, transaction, record and
audit event, so a retried call finds the steps done before and repeats none of their effects.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notifications import NotificationActivities
from activities.performance import PerformanceActivities
from activities.session import SessionActivities
from activities.termination import TerminationActivities
from domain.session_messages import NotificationRef
from domain.termination import (
    STEP_FAILED,
    RunStepsInput,
    RunStepsResult,
    TerminationStep,
    final_snapshot_input,
    finish_input,
    steps_between,
)
from domain.termination_messages import FinishResult, StepInput, StepResult


@dataclass(frozen=True)
class StepActivity:
    """The activity method that is a step, the class it belongs to, and its input."""

    owner: type
    method: Callable[[Any, Any], Awaitable[Any]]
    input: Callable[[StepInput], Any]


def _same(step: StepInput) -> StepInput:
    return step


# Which activity method (and input) each step is; ``run_steps`` runs them in order.
STEP_ACTIVITIES: dict[TerminationStep, StepActivity] = {
    TerminationStep.HALT_ALGORITHM: StepActivity(
        TerminationActivities, TerminationActivities.halt_algorithm, _same
    ),
    TerminationStep.CANCEL_ORDERS: StepActivity(
        TerminationActivities, TerminationActivities.cancel_orders, _same
    ),
    TerminationStep.FLATTEN_POSITIONS: StepActivity(
        TerminationActivities, TerminationActivities.flatten_positions, _same
    ),
    TerminationStep.UPDATE_PORTFOLIO: StepActivity(
        TerminationActivities, TerminationActivities.update_portfolio, _same
    ),
    TerminationStep.FINAL_PERFORMANCE: StepActivity(
        PerformanceActivities, PerformanceActivities.record_snapshot, final_snapshot_input
    ),
    TerminationStep.FINAL_STATUS: StepActivity(
        SessionActivities, SessionActivities.finish_session, finish_input
    ),
    TerminationStep.NOTIFY: StepActivity(
        TerminationActivities, TerminationActivities.notify_ended, _same
    ),
}


class TerminationSequenceActivities:
    """Built once per worker from the activity objects whose methods the steps are."""

    def __init__(
        self,
        termination: TerminationActivities,
        performance: PerformanceActivities,
        sessions: SessionActivities,
        notifications: NotificationActivities,
    ) -> None:
        self.termination = termination
        self.performance = performance
        self.sessions = sessions
        self.notifications = notifications
        self._objects: dict[type, object] = {
            type(o): o for o in (termination, performance, sessions, notifications)
        }

    @activity.defn
    async def run_steps(self, input: RunStepsInput) -> RunStepsResult:
        """Run the steps in order; the first to fail fails the call, naming itself.

        Raises ApplicationError of type STEP_FAILED with the step as first detail (and
        non-retryable if the step's own error was), so the workflow parks at that step.
        """
        result = RunStepsResult()
        timeout = input.step_timeout.total_seconds()
        for step in steps_between(input.first, input.last):
            try:
                # Each step gets the time it had as an activity of its own.
                async with asyncio.timeout(timeout):
                    outcome = await self._run(step, input)
            except Exception as err:
                raise _step_failed(step, err) from err
            result.ran.append(step)
            if isinstance(outcome, StepResult) and outcome.already_done:
                result.already_done.append(step)
            elif isinstance(outcome, FinishResult):
                result.finished = outcome
            elif isinstance(outcome, NotificationRef):
                result.notification = outcome
        if result.notification is not None:
            result.delivery_started = await self._hand_over(result.notification, timeout)
        return result

    async def _run(self, step: TerminationStep, input: RunStepsInput) -> Any:
        activity = STEP_ACTIVITIES[step]
        return await activity.method(self._objects[activity.owner], activity.input(input.step))

    async def _hand_over(self, notification: NotificationRef, timeout: float) -> bool:
        """Start the notification's delivery; on failure leave it to the workflow's own call.

        NOTIFY is recorded by now: failing the call here would spend the step's bounded
        retries on the hand-over, which as a call of its own retries as long as it takes.
        """
        try:
            async with asyncio.timeout(timeout):
                await self.notifications.start_delivery(notification)
        except Exception as err:
            activity.logger.warning(
                "delivery of notification %s not started here: %r",
                notification.notification_id,
                err,
            )
            return False
        return True


def _step_failed(step: TerminationStep, err: Exception) -> ApplicationError:
    """The step's error, named after the step; a refusal stays non-retryable."""
    kind = err.type if isinstance(err, ApplicationError) and err.type else type(err).__name__
    return ApplicationError(
        str(err) or kind,
        step.value,
        kind,
        type=STEP_FAILED,
        non_retryable=isinstance(err, ApplicationError) and err.non_retryable,
    )
