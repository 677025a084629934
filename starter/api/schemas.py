"""Every HTTP model of the API, requests and responses; requests forbid unknown fields.

The services take and return these too, so the API and the CLI speak the same shapes.
"""

from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Literal, Self

from fastapi import Path
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

from domain.alerts import Audience
from domain.orders import OrderStatus
from domain.performance import SnapshotKind
from domain.positions import Side
from domain.risk import TradingState
from domain.roles import Role
from domain.session_messages import SessionView
from domain.status import SessionStatus
from domain.text import Actor, Amount, Description, HttpUrl, Identifier, Reason, Symbol, check_text

SessionIdPath = Annotated[Identifier, Path(description="The session's id.")]
# Money leaves the API as a plain decimal string: "1000", "-12.5", never "1E+3" or "0E-8".
Money = Annotated[Decimal, PlainSerializer(lambda d: format(d.normalize(), "f"), return_type=str)]


class Body(BaseModel):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class StartSessionBody(Body):
    session_id: Identifier | None = None
    account_id: Identifier
    algorithm_id: Identifier
    start_time: AwareDatetime | None = Field(
        default=None, description="When trading may begin; defaults to now."
    )
    end_time: AwareDatetime = Field(description="The deadline: the session expires exactly then.")
    loss_limit: Annotated[Amount, Field(gt=0)]
    warning_thresholds: list[Annotated[float, Field(gt=0, lt=1)]] | None = Field(
        default=None, max_length=10, description="Fractions of time and loss that warn; [0.8]."
    )
    reducing_at: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None,
        description="Share of the loss limit from which only position-reducing orders pass "
        "(REDUCING); unset: never.",
    )
    max_drawdown: Annotated[Amount, Field(gt=0)] | None = Field(
        default=None, description="Ends the session DRAWDOWN_LIMIT this far below peak equity."
    )
    profit_target: Annotated[Amount, Field(gt=0)] | None = Field(
        default=None, description="Ends the session PROFIT_TARGET when equity reaches it."
    )
    order_limits: "OrderLimitsBody | None" = Field(
        default=None, description="Pre-trade checks; unset ones take the settings' defaults."
    )

    @model_validator(mode="after")
    def _end_after_start(self) -> "StartSessionBody":
        if self.start_time is not None and self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class OrderLimitsBody(Body):
    """The pre-trade checks of a session (domain.risk.OrderLimits); each optional."""

    max_quantity: Annotated[Amount, Field(gt=0)] | None = None
    max_notional: Annotated[Amount, Field(gt=0)] | None = None
    price_collar_pct: Annotated[Amount, Field(gt=0)] | None = None
    max_orders_per_second: Annotated[int, Field(ge=1, le=100_000)] | None = None
    max_open_orders: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


StartSessionBody.model_rebuild()


class TerminateBody(Body):
    reason: Annotated[Reason, Field(min_length=1)]
    actor: Actor = "api"


class ExtendDeadlineBody(Body):
    end_time: AwareDatetime = Field(description="The new deadline; later than the current one.")
    actor: Actor = "api"
    reason: Reason | None = None


class SetLossLimitBody(Body):
    loss_limit: Annotated[Amount, Field(gt=0)]
    actor: Actor = "api"
    reason: Reason | None = None


class GateChangeBody(Body):
    actor: Actor = "api"
    reason: Reason | None = None


class RetryCleanupBody(Body):
    actor: Actor = "api"
    reason: Reason | None = None


class FillBody(Body):
    fill_id: Identifier
    symbol: Symbol
    side: Side
    quantity: Annotated[Amount, Field(gt=0)]
    price: Annotated[Amount, Field(gt=0)]
    fee: Annotated[Amount, Field(ge=0)] = Decimal(0)
    executed_at: AwareDatetime | None = None
    order_id: Identifier | None = Field(
        default=None,
        description="The session's order this fill executes. Required once the session's "
        "trading ended (ENDING or later): such a late fill must execute an order the session "
        "placed before its halt, or it is refused (409 unknown_order).",
    )


class MarkBody(Body):
    symbol: Symbol
    price: Annotated[Amount, Field(gt=0)]
    marked_at: AwareDatetime | None = None


MAX_MARKS_PER_BATCH = 1000
# A full batch of the longest symbols, prices and timestamps fits in this many bytes.
MAX_MARKS_BATCH_BYTES = MAX_MARKS_PER_BATCH * 192


class MarketMarkBody(Body):
    symbol: Symbol
    price: Annotated[Amount, Field(gt=0)]
    marked_at: AwareDatetime | None = Field(
        default=None, description="When the price was observed; defaults to now."
    )


class MarketMarksBody(Body):
    """A batch of market prices (``POST /marks``): each applies to every session holding it."""

    marks: list[MarketMarkBody] = Field(min_length=1, max_length=MAX_MARKS_PER_BATCH)


class MarketMarksOut(BaseModel):
    """What one batch did: marks stored, sessions checked, gates closed, workflows woken."""

    marks_applied: int = Field(description="Marks stored (an older one than stored is not).")
    sessions_affected: int = Field(description="ACTIVE sessions holding a marked symbol.")
    sessions_halted: int = Field(description="Sessions at their limit whose gate was closed.")
    sessions_woken: int = Field(
        description="Sessions whose workflow is signalled, right after this answer (the "
        "breached ones' gates are closed before it)."
    )


class LimitUsage(BaseModel):
    """One limit of a session: its value (None: off) and how much of it is used."""

    name: str
    limit: Money | None
    value: Money | None = Field(description="The figure measured against the limit.")
    used_pct: float | None


class SessionRiskOut(BaseModel):
    """Every limit of a session with its usage, and the trading state they lead to."""

    trading_state: str
    reducing_at: float | None
    equity: Money
    peak_equity: Money
    limits: list[LimitUsage]
    order_limits: dict[str, str]


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    account_id: str
    algorithm_id: str
    status: SessionStatus
    start_time: datetime
    end_time: datetime
    loss_limit: Money
    warning_thresholds: list[float]
    realized_pnl: Money
    end_reason: str | None
    end_detail: str | None
    ended_at: datetime | None
    workflow_id: str
    created_at: datetime
    last_checked_at: datetime | None = Field(
        default=None, description="When the session's loss was last checked."
    )
    last_checked_by: str | None = Field(
        default=None, description="By what: sweep, fill, mark or workflow."
    )
    live: SessionView | None = None
    risk: SessionRiskOut | None = Field(default=None, description="Every limit with its usage.")


class FillOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    fill_id: str
    session_id: str
    symbol: str
    side: Side
    quantity: Money
    price: Money
    fee: Money
    realized_pnl: Money
    executed_at: datetime
    order_id: str | None = None
    late: bool = Field(default=False, description="Recorded after the session's trading ended.")
    duplicate: bool = False


class MarkOut(BaseModel):
    session_id: str
    symbol: str
    price: Money
    marked_at: datetime


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class GateOut(BaseModel):
    """The pre-trade check: may this session's algorithm place an order right now?"""

    session_id: str
    open: bool
    status: SessionStatus
    reason: str | None
    trading_state: TradingState = Field(
        default=TradingState.ACTIVE,
        description="ACTIVE: any order; REDUCING: only orders that shrink a position; "
        "HALTED: none.",
    )


# --- orders


class OrderBody(Body):
    """An order to book; ``order_id`` is the algorithm's own id, so a retry is safe."""

    order_id: Identifier
    symbol: Symbol
    side: Side
    quantity: Annotated[Amount, Field(gt=0)]
    limit_price: Annotated[Amount, Field(gt=0)] | None = None


class OrderOut(BaseModel):
    """A booked order; ``duplicate`` is True when the order id was known already."""

    model_config = ConfigDict(from_attributes=True)

    order_id: str
    session_id: str
    symbol: str
    side: Side
    quantity: Money
    limit_price: Money | None
    status: OrderStatus
    created_at: datetime
    duplicate: bool = False


# --- performance


class FiguresOut(BaseModel):
    """Performance figures; money as decimal strings, win rate 0-1, ``time_used_pct`` 0-100,
    ``loss_used_pct`` unclamped (past 100 after a breach that gapped through the limit)."""

    realized_pnl: Money
    unrealized_pnl: Money
    total_pnl: Money
    fees: Money
    fills: int
    round_trips: int
    winning_round_trips: int
    win_rate: float | None
    peak_pnl: Money
    max_drawdown: Money
    duration_seconds: float
    loss: Money
    loss_used_pct: float
    time_used_pct: float


class SnapshotOut(BaseModel):
    """A stored snapshot: periodic while the session ran, final once it ended."""

    kind: SnapshotKind
    taken_at: datetime
    figures: FiguresOut


class PerformanceReport(BaseModel):
    """The latest stored snapshot (if any) and the figures computed from the store now."""

    session_id: str
    status: SessionStatus
    as_of: datetime
    live: FiguresOut
    latest: SnapshotOut | None


# --- API keys


class CreateKeyBody(Body):
    role: Role
    account_id: Identifier | None = Field(default=None, description="Required for traders.")
    description: Description | None = None


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key_id: str
    role: Role
    account_id: str | None
    description: str | None
    created_at: datetime
    revoked_at: datetime | None


class IssuedKey(ApiKeyOut):
    """A new key: the only time the secret is ever shown."""

    api_key: str


# --- notifications and webhooks

WebhookSecret = Annotated[
    str, StringConstraints(min_length=16), AfterValidator(partial(check_text, max_len=256))
]


class NotificationOut(BaseModel):
    """A queued notification; ``delivered_at`` is set once every webhook got it (or alerted)."""

    id: int
    kind: str
    audience: Audience = Field(description="`account` (its traders) or `operators` (an alert).")
    session_id: str | None
    account_id: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class WebhookBody(Body):
    """A new webhook subscription."""

    url: HttpUrl = Field(description="Where notifications are POSTed (http or https).")
    secret: WebhookSecret = Field(
        description="HMAC-SHA256 key: 16-256 characters, no control characters; never returned."
    )
    account_id: Identifier | None = Field(default=None, description="Unset: every account.")
    scope: Audience = Field(
        default=Audience.ACCOUNT,
        description="`account`: the notifications of `account_id` (or every account); "
        "`operators`: every alert and nothing else (no `account_id`).",
    )

    @model_validator(mode="after")
    def _operators_take_no_account(self) -> Self:
        if self.scope is Audience.OPERATORS and self.account_id is not None:
            raise ValueError("an operators subscription receives every alert: no account_id")
        return self


class WebhookOut(BaseModel):
    """A subscription as the API shows it: never with its secret."""

    id: int
    url: str
    account_id: str | None
    scope: Audience
    active: bool
    created_at: datetime


# --- jobs (failure analysis)


class FailedWorkflow(BaseModel):
    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    start_time: datetime
    close_time: datetime | None
    session_id: str | None
    last_error: str | None
    error_type: str | None


class FailedSession(BaseModel):
    session_id: str
    account_id: str
    workflow_id: str
    status: str
    updated_at: datetime
    last_error: str | None


class Failures(BaseModel):
    since: datetime
    task_queue: str
    workflows: list[FailedWorkflow]
    sessions: list[FailedSession]


class JobOutcomes(BaseModel):
    """One kind of background job in the window: done, gave up, attempts retried."""

    success: int = 0
    failure: int = 0
    retry: int = 0


class JobStats(BaseModel):
    """Executions on the task queue: started and closed (by status) in the window, running now;
    background jobs by outcome, the success ratio against the objective, and checks per hour."""

    since: datetime
    until: datetime
    task_queue: str
    started: int
    running: int
    closed: dict[str, int]
    jobs: dict[str, JobOutcomes] = Field(
        description="check, sweep, termination, notification, housekeeping (whole hours)."
    )
    success_ratio: float | None = Field(
        description="success / (success + failure) over every job kind; None with no jobs."
    )
    slo_target: float = Field(description="The objective: 0.999.")
    slo_met: bool | None = Field(description="success_ratio >= slo_target; None with no jobs.")
    checks: dict[str, int] = Field(description="Loss checks by source (sweep, workflow).")
    checks_per_hour: float


# --- health


class Check(BaseModel):
    name: Literal["database", "temporal", "worker"]
    ok: bool
    detail: str
    duration_ms: float


class Backlog(BaseModel):
    """Tasks waiting on the task queue (approximate, from describe-task-queue)."""

    workflow_tasks: int
    activity_tasks: int
    oldest_seconds: float


class Readiness(BaseModel):
    status: Literal["ready"]
    task_queue: str
    checks: list[Check]
    backlog: Backlog | None


class NotReady(ErrorResponse):
    """The one error shape, plus every check's outcome; ``error.field`` names the first failure."""

    checks: list[Check]
    backlog: Backlog | None
