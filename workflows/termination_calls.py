"""The termination sequence in two local activity calls instead of one per step.

Each local activity costs the worker a workflow activation (sandbox entry, payload visiting,
command encoding) on top of its own work; an expiry wave of a thousand sessions made the
worker's single core the bottleneck at nine per session end. ``run_steps`` runs a stretch of
steps in one call, each exactly as its own activity did, so a session ends in two.
"""

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.termination_sequence import TerminationSequenceActivities
    from domain.termination import (
        STEP_FAILED,
        TERMINATION_SEQUENCE,
        RunStepsInput,
        RunStepsResult,
        TerminationStep,
        steps_between,
    )
    from domain.termination_messages import StepInput
    from workflows.policies import DATABASE_RETRY, LOCAL_RETRY_THRESHOLD, ONE_ATTEMPT, STEP_TIMEOUT


@dataclass(frozen=True)
class StepCall:
    """One call: the steps up to and including ``last``, under one retry policy."""

    last: TerminationStep
    retry_policy: RetryPolicy


# Split where the retry policy changes. The steps that reach the outside world (the
# algorithm, the broker) make one attempt per call: the workflow retries from the step that
# failed, with that step's own budget (policies.STEP_ATTEMPTS), and parks the session
# CLEANUP_FAILED when it is spent. The final status and the notification involve only our
# own database and wait an outage out: once the final status is written the session can no
# longer become CLEANUP_FAILED. The last call also hands the notification to its delivery
# workflow.
STEP_CALLS: tuple[StepCall, ...] = (
    StepCall(TerminationStep.FINAL_PERFORMANCE, ONE_ATTEMPT),
    StepCall(TerminationStep.NOTIFY, DATABASE_RETRY),
)


def call_from(first: TerminationStep) -> StepCall:
    """The call that runs ``first``: on a resume it starts there, mid-call."""
    at = TERMINATION_SEQUENCE.index(first)
    return next(c for c in STEP_CALLS if TERMINATION_SEQUENCE.index(c.last) >= at)


async def run_steps(first: TerminationStep, step_input: StepInput) -> RunStepsResult:
    """Run ``first`` through the end of its call as one local activity.

    Raises ApplicationError (or ActivityError if the call timed out as a whole) when its
    retries are exhausted; ``gave_up`` says at which step.
    """
    call = call_from(first)
    return await workflow.execute_local_activity_method(
        TerminationSequenceActivities.run_steps,
        RunStepsInput(step=step_input, first=first, last=call.last, step_timeout=STEP_TIMEOUT),
        # Each step, and the hand-over, is held to STEP_TIMEOUT inside the call; this bound
        # only catches a worker too stuck to enforce that.
        start_to_close_timeout=STEP_TIMEOUT * (len(steps_between(first, call.last)) + 1),
        retry_policy=call.retry_policy,
        local_retry_threshold=LOCAL_RETRY_THRESHOLD,
        summary=f"{first} .. {call.last}" if first != call.last else str(first),
    )


def gave_up(
    err: ActivityError | ApplicationError, first: TerminationStep
) -> tuple[TerminationStep, str]:
    """The step a call gave up at, and why.

    A step's own failure names the step (a local activity's exception arrives unwrapped, a
    regular one's as the cause). A call that timed out as a whole names none: its first step
    stands for it, and resuming there skips the steps recorded since.
    """
    named = err if isinstance(err, ApplicationError) else err.cause
    if isinstance(named, ApplicationError) and named.type == STEP_FAILED and named.details:
        return TerminationStep(named.details[0]), named.message
    return first, str(err.cause or err)
