"""The termination sequence of the session workflow: its steps in order, CLEANUP_FAILED, retry.

The steps run in two calls (``termination_calls.py``).
"""

from collections.abc import Awaitable, Callable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.termination import TerminationActivities
    from domain.session_messages import SYSTEM_ACTOR, SessionSpec, SessionState
    from domain.status import SessionStatus
    from domain.termination import TERMINATION_SEQUENCE, TerminationStep
    from domain.termination_messages import (
        CleanupFailedInput,
        CleanupRetryInput,
        RetryCleanupInput,
        StepInput,
    )
    from workflows.policies import DATABASE_RETRY, STEP_ATTEMPTS, WRITE_TIMEOUT, step_backoff
    from workflows.session_calls import CALL_FAILED, deliver
    from workflows.termination_calls import gave_up, run_steps


async def wind_down(
    spec: SessionSpec,
    state: SessionState,
    wait_for_retry: Callable[[], Awaitable[RetryCleanupInput]],
    status_changed: Callable[[], None],
) -> None:
    """Run the steps in order from ``state.cleanup_step``; a step that gives up leaves the
    session CLEANUP_FAILED until an operator's retry, then resumes from that step.

    ``state.cleanup_step`` counts the steps done.
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
    while state.cleanup_step < len(TERMINATION_SEQUENCE):
        first = TERMINATION_SEQUENCE[state.cleanup_step]
        try:
            done = await run_steps(first, step_input)
        except CALL_FAILED as err:
            failed, error = gave_up(err, first)
            # Steps before the failed one are recorded: the next attempt starts at it.
            state.cleanup_step = TERMINATION_SEQUENCE.index(failed)
            failures = state.step_failures.get(failed, 0) + 1
            state.step_failures[failed] = failures
            if failures < STEP_ATTEMPTS:
                await workflow.sleep(
                    step_backoff(failures),
                    summary=f"retry {failed} ({failures + 1}/{STEP_ATTEMPTS})",
                )
                continue
            state.step_failures[failed] = 0  # an operator's retry gets a fresh budget
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


async def _park_until_retried(
    step_input: StepInput,
    step: TerminationStep,
    cause: str,
    state: SessionState,
    wait_for_retry: Callable[[], Awaitable[RetryCleanupInput]],
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
        summary=f"clean-up failed at {step}",
    )
    state.status = SessionStatus.CLEANUP_FAILED
    status_changed()
    await deliver(alert)
    request = await wait_for_retry()
    await workflow.execute_activity_method(
        TerminationActivities.resume_cleanup,
        CleanupRetryInput(
            step=step_input,
            actor=request.actor,
            reason=request.reason,
            attempt=state.cleanup_failures,
        ),
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=DATABASE_RETRY,
        summary=f"resume clean-up at {step}",
    )
    state.status = SessionStatus.ENDING
    status_changed()
