"""The termination sequence of the session workflow: its steps in order, CLEANUP_FAILED, retry.

Runs from after TERMINATION_IN_FEW_CALLS make two calls (``termination_calls.py``); older
runs go on with a call per step (``run_step``).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.termination import TerminationActivities
    from activities.termination_sequence import STEP_ACTIVITIES
    from domain.messages import (
        SYSTEM_ACTOR,
        CleanupFailedInput,
        FinishResult,
        NotificationRef,
        RetryCleanupInput,
        RetryCleanupRequest,
        SessionSpec,
        SessionState,
        StepInput,
    )
    from domain.status import SessionStatus
    from domain.termination import (
        TERMINATION_SEQUENCE,
        RunStepsResult,
        TerminationStep,
    )
    from workflows.policies import DATABASE_RETRY, STEP_RETRY, STEP_TIMEOUT, WRITE_TIMEOUT
    from workflows.session_calls import deliver
    from workflows.short_calls import short_call
    from workflows.termination_calls import TERMINATION_IN_FEW_CALLS, gave_up, run_steps

# A step that gave up: a regular activity's failure (and a local one's timeout) arrives as an
# ActivityError, but a local activity's own exception arrives unwrapped, as ApplicationError.
STEP_GAVE_UP = (ActivityError, ApplicationError)


async def run_step(step: TerminationStep, input: StepInput) -> Any:
    """Run one step as a local activity (see ``short_call``), in runs from before the patch.

    Raises one of STEP_GAVE_UP when its retries are exhausted.
    """
    activity = STEP_ACTIVITIES[step]
    return await short_call(
        activity.method,
        activity.input(input),
        start_to_close_timeout=STEP_TIMEOUT,
        # The final status involves only our own database: wait it out rather than give up.
        retry_policy=DATABASE_RETRY if step is TerminationStep.FINAL_STATUS else STEP_RETRY,
    )


async def wind_down(
    spec: SessionSpec,
    state: SessionState,
    wait_for_retry: Callable[[], Awaitable[RetryCleanupRequest]],
    status_changed: Callable[[], None],
) -> None:
    """Run the steps in order from ``state.cleanup_step``; a step that gives up leaves the
    session CLEANUP_FAILED until an operator's retry, then resumes from that step.

    ``state.cleanup_step`` counts the steps done, whether they ran one per call or several.
    """
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
    in_few_calls = workflow.patched(TERMINATION_IN_FEW_CALLS)
    while state.cleanup_step < len(TERMINATION_SEQUENCE):
        first = TERMINATION_SEQUENCE[state.cleanup_step]
        try:
            if in_few_calls:
                done = await run_steps(first, step_input)
            else:
                done = await _one_step(first, step_input)
        except STEP_GAVE_UP as err:
            failed, error = gave_up(err, first) if in_few_calls else (first, str(err.cause or err))
            # Steps before the failed one are recorded: the resume starts at it.
            state.cleanup_step = TERMINATION_SEQUENCE.index(failed)
            await _park_until_retried(
                step_input, failed, error, state, wait_for_retry, status_changed
            )
            continue
        if done.finished is not None:
            state.status = done.finished.status
            state.realized_pnl = done.finished.realized_pnl
            status_changed()
        if done.notification is not None and not done.delivery_started:
            await deliver(done.notification)
        state.cleanup_step += len(done.ran)


async def _one_step(step: TerminationStep, step_input: StepInput) -> RunStepsResult:
    """``run_step``'s result in the shape of a call of several, for the loop above."""
    result = await run_step(step, step_input)
    if step is TerminationStep.FINAL_STATUS:
        return RunStepsResult(ran=[step], finished=FinishResult.model_validate(result))
    if step is TerminationStep.NOTIFY:
        return RunStepsResult(ran=[step], notification=NotificationRef.model_validate(result))
    return RunStepsResult(ran=[step])


async def _park_until_retried(
    step_input: StepInput,
    step: TerminationStep,
    cause: str,
    state: SessionState,
    wait_for_retry: Callable[[], Awaitable[RetryCleanupRequest]],
    status_changed: Callable[[], None],
) -> None:
    state.cleanup_failures += 1
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
