"""The termination sequence's activity calls, step by step, for the session workflow."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.performance import PerformanceActivities
    from activities.session import SessionActivities
    from activities.termination import TerminationActivities
    from domain.messages import (
        SYSTEM_ACTOR,
        CleanupFailedInput,
        FinishInput,
        FinishResult,
        NotificationRef,
        RetryCleanupInput,
        RetryCleanupRequest,
        SessionSpec,
        SessionState,
        SnapshotInput,
        StepInput,
    )
    from domain.status import SessionStatus
    from domain.termination import TERMINATION_SEQUENCE, TerminationStep
    from workflows.policies import DATABASE_RETRY, WRITE_TIMEOUT
    from workflows.session_calls import deliver
    from workflows.short_calls import short_call

# Steps talk to brokers and webhooks as well as our database. Past about five minutes of
# failures a person should look: the session goes CLEANUP_FAILED and waits for retry_cleanup.
# Run locally, backoffs past LOCAL_RETRY_THRESHOLD are durable timers: the same five minutes.
STEP_TIMEOUT = timedelta(seconds=30)
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=10,
)


# A step that gave up: a regular activity's failure (and a local one's timeout) arrives as an
# ActivityError, but a local activity's own exception arrives unwrapped, as ApplicationError.
STEP_GAVE_UP = (ActivityError, ApplicationError)

StepActivity = Callable[[TerminationActivities, StepInput], Awaitable[Any]]
# The steps that take the common input; the final snapshot and status build their own.
_STEP_ACTIVITIES: dict[TerminationStep, StepActivity] = {
    TerminationStep.HALT_ALGORITHM: TerminationActivities.halt_algorithm,
    TerminationStep.CANCEL_ORDERS: TerminationActivities.cancel_orders,
    TerminationStep.FLATTEN_POSITIONS: TerminationActivities.flatten_positions,
    TerminationStep.UPDATE_PORTFOLIO: TerminationActivities.update_portfolio,
    TerminationStep.NOTIFY: TerminationActivities.notify_ended,
}


async def run_step(step: TerminationStep, input: StepInput) -> Any:
    """Run one step as a local activity (see ``short_call``).

    Raises one of STEP_GAVE_UP when its retries are exhausted.
    """
    if step is TerminationStep.FINAL_PERFORMANCE:
        return await short_call(
            PerformanceActivities.record_snapshot,
            SnapshotInput(session_id=input.session_id, kind="final", taken_at=input.ended_at),
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
    if step is TerminationStep.FINAL_STATUS:
        return await short_call(
            SessionActivities.finish_session,
            FinishInput(
                session_id=input.session_id,
                reason=input.end_reason,
                detail=input.detail,
                actor=input.actor,
                ended_at=input.ended_at,
                workflow_id=input.workflow_id,
                run_id=input.run_id,
            ),
            start_to_close_timeout=STEP_TIMEOUT,
            # Only our own database is involved: wait it out rather than give up.
            retry_policy=DATABASE_RETRY,
        )
    return await short_call(
        _STEP_ACTIVITIES[step], input, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY
    )


async def wind_down(
    spec: SessionSpec,
    state: SessionState,
    wait_for_retry: Callable[[], Awaitable[RetryCleanupRequest]],
    status_changed: Callable[[], None],
) -> None:
    """Run the steps in order from ``state.cleanup_step``; a step that gives up leaves the
    session CLEANUP_FAILED until an operator's retry, then resumes from that step."""
    if state.end_reason is None or state.ended_at is None:
        raise ApplicationError("winding down a session that has not ended", non_retryable=True)
    info = workflow.info()
    step_input = StepInput(
        session_id=spec.session_id,
        account_id=spec.account_id,
        algorithm_id=spec.algorithm_id,
        end_reason=state.end_reason,
        detail=state.end_detail or "",
        actor=state.ended_by or SYSTEM_ACTOR,
        ended_at=state.ended_at,
        workflow_id=info.workflow_id,
        run_id=info.run_id,
    )
    while state.cleanup_step < len(TERMINATION_SEQUENCE):
        step = TERMINATION_SEQUENCE[state.cleanup_step]
        try:
            result = await run_step(step, step_input)
        except STEP_GAVE_UP as err:
            await _park_until_retried(step_input, step, err, state, wait_for_retry, status_changed)
            continue
        if step is TerminationStep.FINAL_STATUS:
            final = FinishResult.model_validate(result)
            state.status = final.status
            state.realized_pnl = final.realized_pnl
            status_changed()
        elif step is TerminationStep.NOTIFY:
            await deliver(NotificationRef.model_validate(result))
        state.cleanup_step += 1


async def _park_until_retried(
    step_input: StepInput,
    step: TerminationStep,
    err: ActivityError | ApplicationError,
    state: SessionState,
    wait_for_retry: Callable[[], Awaitable[RetryCleanupRequest]],
    status_changed: Callable[[], None],
) -> None:
    state.cleanup_failures += 1
    cause = str(err.cause or err)
    workflow.logger.error("termination step %s failed: %s", step, cause)
    # This path and the resume below stay regular activities: rare, so no load to save.
    alert = await workflow.execute_activity_method(
        TerminationActivities.mark_cleanup_failed,
        CleanupFailedInput(
            step=step_input, failed_step=step, error=cause, attempt=state.cleanup_failures
        ),
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
    )
    state.status = SessionStatus.CLEANUP_FAILED
    status_changed()
    await deliver(alert)
    request = await wait_for_retry()
    await workflow.execute_activity_method(
        TerminationActivities.resume_cleanup,
        RetryCleanupInput(
            step=step_input,
            actor=request.actor,
            reason=request.reason,
            attempt=state.cleanup_failures,
        ),
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
    )
    state.status = SessionStatus.ENDING
    status_changed()
