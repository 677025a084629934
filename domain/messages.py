"""Typed inputs and results of the session workflow, its signals, updates and activities.

Every field added later gets a default, so histories recorded before it still decode.
"""

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from domain.limits import DEFAULT_WARNING_THRESHOLDS, WarningKind
from domain.status import EndReason, SessionStatus

SYSTEM_ACTOR = "system"


class SessionSpec(BaseModel):
    """What a session is: fixed at start except the limits that updates may change."""

    session_id: str
    account_id: str
    algorithm_id: str
    start_time: datetime
    end_time: datetime
    loss_limit: Decimal
    warning_thresholds: list[float] = Field(default_factory=lambda: [*DEFAULT_WARNING_THRESHOLDS])


class TerminationRequest(BaseModel):
    """An operator's (or the system's) word to end a session now."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)
    actor: str = Field(min_length=1, max_length=200)


class SessionState(BaseModel):
    """Everything the workflow must carry across continue-as-new."""

    status: SessionStatus = SessionStatus.PENDING
    end_time: datetime
    loss_limit: Decimal
    last_check_at: datetime | None = None
    checks: int = 0
    realized_pnl: Decimal = Decimal(0)
    unrealized_pnl: Decimal = Decimal(0)
    loss: Decimal = Decimal(0)
    time_warnings_sent: list[float] = Field(default_factory=list)
    loss_warnings_sent: list[float] = Field(default_factory=list)
    paused: bool = False
    gate_changes: int = 0
    last_snapshot_at: datetime | None = None
    cleanup_step: int = 0
    cleanup_failures: int = 0
    pending_termination: TerminationRequest | None = None
    end_reason: EndReason | None = None
    end_detail: str | None = None
    ended_by: str | None = None
    ended_at: datetime | None = None


class SessionWorkflowInput(BaseModel):
    spec: SessionSpec
    check_interval_seconds: float = 30.0
    max_session_seconds: float = 7 * 24 * 3600.0
    performance_interval_seconds: float = 300.0
    # Continue-as-new after this many checks in one run even if Temporal has not suggested
    # it yet; None leaves it to Temporal. Tests use a small number to exercise the hand-over.
    continue_as_new_after_checks: int | None = None
    state: SessionState | None = None


class SessionView(BaseModel):
    """Live state answered by the ``get_status`` query."""

    session_id: str
    status: SessionStatus
    end_time: datetime
    loss_limit: Decimal
    loss: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    loss_used: float
    time_used: float
    checks: int
    last_check_at: datetime | None
    paused: bool = False
    time_warnings_sent: list[float] = Field(default_factory=list)
    loss_warnings_sent: list[float] = Field(default_factory=list)
    end_reason: EndReason | None
    ended_at: datetime | None

    @field_serializer("loss_limit", "loss", "realized_pnl", "unrealized_pnl")
    def _plain_decimal(self, value: Decimal) -> str:
        """Money as people write it: "420", never "420.0000000000000000" or "0E-8"."""
        return format(value.normalize(), "f")


class SessionResult(BaseModel):
    session_id: str
    status: SessionStatus
    end_reason: EndReason
    ended_at: datetime
    realized_pnl: Decimal


class ActivateInput(BaseModel):
    session_id: str
    workflow_id: str
    run_id: str
    at: datetime


class CheckInput(BaseModel):
    session_id: str
    # When the check was due; the activity measures how late it started (tick lateness).
    due_at: datetime | None = None


class PnlSnapshot(BaseModel):
    """What PostgreSQL knows of a session's PnL at one instant."""

    session_id: str
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    open_positions: int


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


class CheckRequest(BaseModel):
    """Signal that the session's loss needs its workflow: check now (the data is in the store).

    ``source`` says who found it (``fill``, ``mark``, ``marks`` for a market batch,
    ``sweep``) and ``reason`` why (a ``domain.sweep.WakeReason``). ``gate_closed`` says the
    sender already closed the session's trading gate on a breach it saw, in the transaction
    that found it; the workflow's own check confirms the breach or opens the gate again.
    """

    source: str = "api"
    reason: str | None = None
    gate_closed: bool = False


class ExtendDeadlineInput(BaseModel):
    """Update: move the deadline later (never earlier; end the session to shorten it)."""

    model_config = ConfigDict(extra="forbid")

    end_time: datetime
    actor: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=500)


class SetLossLimitInput(BaseModel):
    """Update: change the loss limit; below the current loss it ends the session at once."""

    model_config = ConfigDict(extra="forbid")

    loss_limit: Decimal
    actor: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=500)


class GateRequest(BaseModel):
    """Signal to pause (close the trading gate) or resume (open it) without ending."""

    model_config = ConfigDict(extra="forbid")

    actor: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=500)


class WarningInput(BaseModel):
    session_id: str
    account_id: str
    kind: WarningKind
    threshold: float
    used: float
    at: datetime
    workflow_id: str
    run_id: str


class LimitChangeInput(BaseModel):
    session_id: str
    end_time: datetime | None = None
    loss_limit: Decimal | None = None
    actor: str
    reason: str | None = None
    change_id: str
    workflow_id: str
    run_id: str


class GateInput(BaseModel):
    session_id: str
    open: bool
    actor: str
    reason: str | None = None
    change_id: str
    workflow_id: str
    run_id: str


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


class SnapshotInput(BaseModel):
    """Take a performance snapshot: ``periodic`` while running, ``final`` at the end."""

    session_id: str
    kind: str = "periodic"
    taken_at: datetime


class NotificationRef(BaseModel):
    """A queued notification, by id, so the workflow can have it delivered."""

    notification_id: int | None = None


class CleanupFailedInput(BaseModel):
    """A termination step exhausted its retries; ``attempt`` counts failures per session."""

    step: StepInput
    failed_step: str
    error: str
    attempt: int


class RetryCleanupRequest(BaseModel):
    """Signal: an operator fixed the cause; resume termination from the failed step."""

    model_config = ConfigDict(extra="forbid")

    actor: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=500)


class RetryCleanupInput(BaseModel):
    step: StepInput
    actor: str
    reason: str | None = None
    attempt: int
