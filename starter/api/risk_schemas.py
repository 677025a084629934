"""HTTP models of the risk controls: the kill switch, a session's limits and their usage.

Kept beside ``schemas.py`` (which holds every other model) so that file stays one concept.
"""

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from domain.kill_switch import KillScope, ScopeKind
from domain.text import Actor, Amount, Identifier, Reason
from starter.api.schemas import Body, LimitUsage, Money, SessionRiskOut


class KillScopeBody(Body):
    """Exactly one of: ``account_id``, ``algorithm_id``, or ``all: true``."""

    account_id: Identifier | None = None
    algorithm_id: Identifier | None = None
    all: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "KillScopeBody":
        given = [n for n in ("account_id", "algorithm_id", "all") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("scope takes exactly one of account_id, algorithm_id or all: true")
        return self

    def to_scope(self) -> KillScope:
        if self.account_id is not None:
            return KillScope(kind=ScopeKind.ACCOUNT, value=self.account_id)
        if self.algorithm_id is not None:
            return KillScope(kind=ScopeKind.ALGORITHM, value=self.algorithm_id)
        return KillScope(kind=ScopeKind.ALL)


class KillSwitchBody(Body):
    """Press the kill switch: every open session in the scope ends, and the scope stays
    locked until an admin re-arms it."""

    scope: KillScopeBody
    reason: Annotated[Reason, Field(min_length=1)]
    actor: Actor = "api"


class RearmBody(Body):
    actor: Actor = "api"
    reason: Reason | None = None


class KillSwitchOut(BaseModel):
    """A kill switch and how far its sessions are: ended, or still winding down."""

    id: int
    scope: KillScope
    reason: str
    engaged_by: str
    engaged_at: datetime
    engaged: bool = Field(description="True until re-armed: new sessions in scope are refused.")
    rearmed_at: datetime | None
    rearmed_by: str | None
    sessions_targeted: int = Field(description="Open sessions whose gate the switch closed.")
    sessions_ended: int
    sessions_winding_down: int
    winding_down: list[str] = Field(description="The first 100 sessions still winding down.")
    signals_sent: int = Field(description="Sessions whose workflow was told to terminate.")
    signal_failures: dict[str, str] = Field(
        default_factory=dict, description="Sessions not reached yet (retried), and why."
    )
    fanout_started: bool = Field(
        default=True, description="False if Temporal was unreachable: press again to retry."
    )


class AccountLimitsBody(Body):
    """An account's limits across its sessions; ``daily_loss_limit`` null turns it off."""

    daily_loss_limit: Amount | None = Field(
        description="The most the account may lose in a UTC day over all its sessions "
        "(realized + unrealized of open ones, final realized of ended ones); null: none."
    )
    actor: Actor = "api"
    reason: Reason | None = None

    @model_validator(mode="after")
    def _positive(self) -> "AccountLimitsBody":
        if self.daily_loss_limit is not None and self.daily_loss_limit <= 0:
            raise ValueError("daily_loss_limit must be a positive amount")
        return self


class AccountRiskOut(BaseModel):
    """An account's figures of the UTC day against its daily loss limit."""

    account_id: str
    day: date
    daily_loss_limit: Money | None
    realized_pnl: Money = Field(description="Realized PnL of the day's sessions.")
    unrealized_pnl: Money = Field(description="Unrealized PnL of their open positions.")
    loss: Money = Field(description="max(0, -(realized + unrealized)).")
    used_pct: float | None
    sessions: int = Field(description="Sessions of the account that traded this UTC day.")
    open_sessions: int
    warned: bool = Field(description="The 80 % warning was sent today.")
    limit_reached: bool = Field(description="The limit was reached today (account killed).")
    kill_switch_id: int | None = Field(
        description="The account's engaged kill switch, if any: re-arm it to trade again."
    )


__all__ = [
    "AccountLimitsBody",
    "AccountRiskOut",
    "KillScopeBody",
    "KillSwitchBody",
    "KillSwitchOut",
    "LimitUsage",
    "RearmBody",
    "SessionRiskOut",
]
