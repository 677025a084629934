"""Typed inputs and results of a session's wind-down: the termination steps, the clean-up
that failed and its retry, and the final status.

Every field added later gets a default, so histories recorded before it still decode.
"""

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from domain.session_messages import Actor, Reason
from domain.status import EndReason, SessionStatus


class StepInput(BaseModel):
    """What every termination step needs to know about the ending session."""

    session_id: str
    account_id: str
    algorithm_id: str
    end_reason: EndReason
    detail: str
    actor: str
    ended_at: datetime
    workflow_id: str
    run_id: str


class StepResult(BaseModel):
    """``already_done`` is True when a retry found the step's effect recorded already."""

    step: str
    already_done: bool = False
    details: dict[str, str] = Field(default_factory=dict)


class CleanupFailedInput(BaseModel):
    """A termination step exhausted its retries; ``attempt`` counts failures per session."""

    step: StepInput
    failed_step: str
    error: str
    attempt: int


class RetryCleanupInput(BaseModel):
    """Update: an operator fixed the cause; resume termination from the failed step."""

    model_config = ConfigDict(extra="forbid")

    actor: Actor
    reason: Reason | None = None


class CleanupRetryInput(BaseModel):
    step: StepInput
    actor: str
    reason: str | None = None
    attempt: int


class FinishInput(BaseModel):
    session_id: str
    reason: EndReason
    detail: str
    actor: str
    ended_at: datetime
    workflow_id: str
    run_id: str


class FinishResult(BaseModel):
    status: SessionStatus
    realized_pnl: Decimal
