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
