"""Typed inputs and results of the session workflow, its signals, updates and activities.

Every field added later gets a default, so histories recorded before it still decode.
"""

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from domain.limits import DEFAULT_WARNING_THRESHOLDS
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
    pending_termination: TerminationRequest | None = None
    end_reason: EndReason | None = None
    end_detail: str | None = None
    ended_by: str | None = None
    ended_at: datetime | None = None


class SessionWorkflowInput(BaseModel):
    spec: SessionSpec
    check_interval_seconds: float = 30.0
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
    end_reason: EndReason | None
    ended_at: datetime | None


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
    """Signal that the session's PnL changed (a fill or a mark): check now, not at the tick."""

    source: str = "api"
