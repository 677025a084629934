"""Typed inputs and results of the session workflow while it runs: its spec and state, its
signals, updates and query, and the activities of a running session.

Every field added later gets a default, so histories recorded before it still decode. The
wind-down's messages are in ``domain.termination_messages``.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
)

from domain.limits import DEFAULT_WARNING_THRESHOLDS, WarningKind
from domain.positions import plain_money
from domain.status import EndReason, SessionStatus
from domain.text import REASON_MAX, Amount, check_text, clean_text_or

SYSTEM_ACTOR = "system"


# Who sent a signal that named nobody (the Web UI and the CLI send what they are given).
UNKNOWN_ACTOR = "unknown"
# An actor as the workflow records it: the API's "key:<id>:<display name>", or an operator's
# name typed into the Web UI or the CLI.
RECORDED_ACTOR_MAX = 200


def _recorded_actor(value: str) -> str:
    return check_text(value, RECORDED_ACTOR_MAX)


def _reason(value: str) -> str:
    return check_text(value, REASON_MAX)


# The rules of domain.text, as the API applies them: an update whose input breaks them is
# refused before it reaches history, whichever client sent it.
Reason = Annotated[str, Field(min_length=1), AfterValidator(_reason)]
Actor = Annotated[str, Field(min_length=1), AfterValidator(_recorded_actor)]
LossLimit = Amount


class SessionSpec(BaseModel):
    """What a session is: fixed at start except the limits that updates may change."""

    session_id: str
    account_id: str
    algorithm_id: str
    start_time: datetime
    end_time: datetime
    loss_limit: Decimal
    warning_thresholds: list[float] = Field(default_factory=lambda: [*DEFAULT_WARNING_THRESHOLDS])
    # Risk controls (domain.risk); None turns one off.
    reducing_at: float | None = None  # share of the loss limit where REDUCING starts
    max_drawdown: Decimal | None = None
    profit_target: Decimal | None = None


# What a termination request may name as the session's end reason.
REQUESTABLE_END_REASONS = (EndReason.TERMINATED, EndReason.ACCOUNT_LOSS_LIMIT)


class TerminateInput(BaseModel):
    """An operator's (or the system's) word to end a session now: the ``terminate`` update's
    input, and what the lenient ``request_termination`` signal becomes (``from_signal``)."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason
    actor: Actor
    # The end reason the session records: TERMINATED unless the system ends it for a limit
    # beyond the session's own (the account's daily loss limit, through its kill switch).
    end_reason: EndReason | None = None

    @field_validator("end_reason")
    @classmethod
    def _requestable(cls, value: EndReason | None) -> EndReason | None:
        if value is not None and value not in REQUESTABLE_END_REASONS:
            raise ValueError(f"a termination request cannot end a session {value}")
        return value

    @classmethod
    def from_signal(cls, payload: Any) -> "TerminateInput":
        """Whatever the signal carried, a request: a missing actor is recorded as unknown,
        an end reason not requestable as TERMINATED."""
        fields = payload if isinstance(payload, dict) else {"reason": payload}
        asked = fields.get("end_reason")
        end_reason = next((r for r in REQUESTABLE_END_REASONS if r.value == asked), None)
        return cls(
            reason=clean_text_or(fields.get("reason"), REASON_MAX, "no reason given"),
            actor=clean_text_or(fields.get("actor"), RECORDED_ACTOR_MAX, UNKNOWN_ACTOR),
            end_reason=end_reason,
        )


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
    cleanup_step: int = 0
    cleanup_failures: int = 0
    # Failed attempts of each termination step since it last succeeded or was retried by an
    # operator: each step has its own budget.
    step_failures: dict[str, int] = Field(default_factory=dict)
    # A wake that arrived (a check_now, a lowered limit) and has not been acted on yet: it
    # must survive continue-as-new, or a check that came in meanwhile would be lost.
    check_requested: bool = False
    # A sender closed the trading gate on a breach it saw; the next check confirms the breach
    # or opens the gate again.
    gate_closed_on_breach: bool = False
    pending_termination: TerminateInput | None = None
    # domain.risk.TradingState as last published, and how often it changed (audit keys).
    trading_state: str = "ACTIVE"
    trading_state_changes: int = 0
    peak_equity: Decimal = Decimal(0)
    drawdown: Decimal = Decimal(0)
    drawdown_warnings_sent: list[float] = Field(default_factory=list)
    end_reason: EndReason | None = None
    end_detail: str | None = None
    ended_by: str | None = None
    ended_at: datetime | None = None


class SessionWorkflowInput(BaseModel):
    spec: SessionSpec
    max_session_seconds: float = 7 * 24 * 3600.0
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
    trading_state: str = "ACTIVE"
    reducing_at: float | None = None
    max_drawdown: Decimal | None = None
    drawdown: Decimal = Decimal(0)
    drawdown_used: float | None = None
    peak_equity: Decimal = Decimal(0)
    profit_target: Decimal | None = None

    @field_serializer(
        "loss_limit", "loss", "realized_pnl", "unrealized_pnl", "drawdown", "peak_equity"
    )
    def _plain_decimal(self, value: Decimal) -> str:
        return plain_money(value)


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
    """The workflow's own check; the activity records it on the row with the LossUsedPct the
    workflow publishes, computed with the workflow's limit."""

    session_id: str
    loss_limit: Decimal
    # The session's REDUCING share: the activity records the trading state the loss leads to.
    reducing_at: float | None = None


class PnlSnapshot(BaseModel):
    """What PostgreSQL knows of a session's PnL at one instant."""

    session_id: str
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    open_positions: int
    # The running peak of equity as the store keeps it (this check's equity included).
    peak_equity: Decimal = Decimal(0)


class CheckNowInput(BaseModel):
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
    actor: Actor
    reason: Reason | None = None


class SetLossLimitInput(BaseModel):
    """Update: change the loss limit; below the current loss it ends the session at once."""

    model_config = ConfigDict(extra="forbid")

    loss_limit: LossLimit
    actor: Actor
    reason: Reason | None = None


class GateChangeInput(BaseModel):
    """Pause (close the trading gate) or resume (open it) without ending: the input of the
    ``pause_trading`` / ``resume_trading`` updates, and what the lenient ``pause`` /
    ``resume`` signals become (``from_signal``)."""

    model_config = ConfigDict(extra="forbid")

    actor: Actor
    reason: Reason | None = None

    @classmethod
    def from_signal(cls, payload: Any) -> "GateChangeInput":
        fields = payload if isinstance(payload, dict) else {"reason": payload}
        reason = clean_text_or(fields.get("reason"), REASON_MAX, "")
        return cls(
            actor=clean_text_or(fields.get("actor"), RECORDED_ACTOR_MAX, UNKNOWN_ACTOR),
            reason=reason or None,
        )


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


class SnapshotInput(BaseModel):
    """Take a performance snapshot: ``periodic`` while running, ``final`` at the end."""

    session_id: str
    kind: str = "periodic"
    taken_at: datetime


class NotificationRef(BaseModel):
    """A queued notification, by id, so the workflow can have it delivered."""

    notification_id: int | None = None


class RequestAuditInput(BaseModel):
    """An operator's request as the workflow received it, for the audit trail: every request
    is recorded, whichever path it came by and whether or not it changed anything."""

    session_id: str
    action: str
    actor: str
    reason: str | None = None
    details: dict[str, str] = Field(default_factory=dict)
    # Names the request among the session's (an update's id, or a digest of what a signal
    # said): a retried write, or one redone by a retried workflow task, is recorded once.
    key: str
    workflow_id: str
    run_id: str


class HandlerFailureInput(BaseModel):
    """A handler's activity gave up: the operator is alerted, the session goes on."""

    session_id: str
    handler: str
    actor: str
    error: str
    key: str
    workflow_id: str
    run_id: str
