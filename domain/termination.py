"""The ordered steps that wind a session down, each once per session, and the messages of
the call that runs several of them (activities/termination_sequence.py)."""

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.session_messages import NotificationRef, SnapshotInput
from domain.termination_messages import FinishInput, FinishResult, StepInput


class TerminationStep(StrEnum):
    HALT_ALGORITHM = "halt_algorithm"
    CANCEL_ORDERS = "cancel_orders"
    FLATTEN_POSITIONS = "flatten_positions"
    UPDATE_PORTFOLIO = "update_portfolio"
    FINAL_PERFORMANCE = "final_performance"
    FINAL_STATUS = "final_status"
    NOTIFY = "notify"


# Halt first so no new order races the clean-up; settle only once the book is flat;
# record performance from the settled figures; announce only what is final.
TERMINATION_SEQUENCE: tuple[TerminationStep, ...] = (
    TerminationStep.HALT_ALGORITHM,
    TerminationStep.CANCEL_ORDERS,
    TerminationStep.FLATTEN_POSITIONS,
    TerminationStep.UPDATE_PORTFOLIO,
    TerminationStep.FINAL_PERFORMANCE,
    TerminationStep.FINAL_STATUS,
    TerminationStep.NOTIFY,
)

# The error type of a step that failed inside a call running several; its first detail
# names the step, so the workflow knows where to park and resume.
STEP_FAILED = "TerminationStepFailed"


def steps_between(first: TerminationStep, last: TerminationStep) -> tuple[TerminationStep, ...]:
    """The steps from ``first`` through ``last``, in sequence order."""
    begin, end = TERMINATION_SEQUENCE.index(first), TERMINATION_SEQUENCE.index(last)
    if begin > end:
        raise ValueError(f"{first} comes after {last}")
    return TERMINATION_SEQUENCE[begin : end + 1]


def final_snapshot_input(step: StepInput) -> SnapshotInput:
    """The final performance snapshot is taken as of the moment the session ended."""
    return SnapshotInput(session_id=step.session_id, kind="final", taken_at=step.ended_at)


def finish_input(step: StepInput) -> FinishInput:
    return FinishInput(
        session_id=step.session_id,
        reason=step.end_reason,
        detail=step.detail,
        actor=step.actor,
        ended_at=step.ended_at,
        workflow_id=step.workflow_id,
        run_id=step.run_id,
    )


class RunStepsInput(BaseModel):
    """Run the steps ``first`` through ``last`` in one call, each within ``step_timeout``."""

    step: StepInput
    first: TerminationStep
    last: TerminationStep
    step_timeout: timedelta


class RunStepsResult(BaseModel):
    """What a call of several steps leaves for the workflow.

    ``ran`` lists every step of the call in order; ``already_done`` those whose activity
    found its record from an earlier attempt (halt to portfolio update say so, the others
    are idempotent without telling). ``delivery_started`` is False when NOTIFY ran but its
    hand-over to the delivery workflow did not get through: the workflow makes it then.
    """

    ran: list[TerminationStep] = Field(default_factory=list)
    already_done: list[TerminationStep] = Field(default_factory=list)
    finished: FinishResult | None = None
    notification: NotificationRef | None = None
    delivery_started: bool = False
