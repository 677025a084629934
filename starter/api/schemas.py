"""HTTP request and response bodies. Requests forbid unknown fields."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import Path
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from domain.messages import SessionView
from domain.positions import Side
from domain.status import SessionStatus
from domain.text import Actor, Amount, Identifier, Reason, Symbol

SessionIdPath = Annotated[Identifier, Path(description="The session's id.")]
# Money leaves the API as a plain decimal string: "1000", "-12.5", never "1E+3" or "0E-8".
Money = Annotated[Decimal, PlainSerializer(lambda d: format(d.normalize(), "f"), return_type=str)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartSessionRequest(Request):
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

    @model_validator(mode="after")
    def _end_after_start(self) -> "StartSessionRequest":
        if self.start_time is not None and self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class TerminateRequest(Request):
    reason: Annotated[Reason, Field(min_length=1)]
    actor: Actor = "api"


class ExtendDeadlineRequest(Request):
    end_time: AwareDatetime = Field(description="The new deadline; later than the current one.")
    actor: Actor = "api"
    reason: Reason | None = None


class SetLossLimitRequest(Request):
    loss_limit: Annotated[Amount, Field(gt=0)]
    actor: Actor = "api"
    reason: Reason | None = None


class GateChangeRequest(Request):
    actor: Actor = "api"
    reason: Reason | None = None


class RetryCleanupBody(Request):
    actor: Actor = "api"
    reason: Reason | None = None


class FillRequest(Request):
    fill_id: Identifier
    symbol: Symbol
    side: Side
    quantity: Annotated[Amount, Field(gt=0)]
    price: Annotated[Amount, Field(gt=0)]
    fee: Annotated[Amount, Field(ge=0)] = Decimal(0)
    executed_at: AwareDatetime | None = None


class MarkRequest(Request):
    symbol: Symbol
    price: Annotated[Amount, Field(gt=0)]
    marked_at: AwareDatetime | None = None


MAX_MARKS_PER_BATCH = 1000
# A full batch of the longest symbols, prices and timestamps fits in this many bytes.
MAX_MARKS_BATCH_BYTES = MAX_MARKS_PER_BATCH * 192


class MarketMarkIn(Request):
    symbol: Symbol
    price: Annotated[Amount, Field(gt=0)]
    marked_at: AwareDatetime | None = Field(
        default=None, description="When the price was observed; defaults to now."
    )


class MarketMarksRequest(Request):
    """A batch of market prices (``POST /marks``): each applies to every session holding it."""

    marks: list[MarketMarkIn] = Field(min_length=1, max_length=MAX_MARKS_PER_BATCH)


class MarketMarksOut(BaseModel):
    """What one batch did: marks stored, sessions checked, gates closed, workflows woken."""

    marks_applied: int = Field(description="Marks stored (an older one than stored is not).")
    sessions_affected: int = Field(description="ACTIVE sessions holding a marked symbol.")
    sessions_halted: int = Field(description="Sessions at their limit whose gate was closed.")
    sessions_woken: int = Field(description="Sessions whose workflow was signalled.")


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
