"""Routes of an account's limits across its sessions: set them, read the day's figures."""

from typing import Annotated

from fastapi import APIRouter, Path

from domain.text import Identifier
from starter.api.auth import ReadRisk, SetLimits
from starter.api.body import StrictJsonRoute
from starter.api.deps import AccountsDep
from starter.api.risk_schemas import AccountLimitsBody, AccountRiskOut

router = APIRouter(prefix="/accounts", tags=["risk"], route_class=StrictJsonRoute)

AccountId = Annotated[Identifier, Path(description="The account's id.")]


@router.put("/{account_id}/limits")
async def set_limits(
    account_id: AccountId, body: AccountLimitsBody, accounts: AccountsDep, principal: SetLimits
) -> AccountRiskOut:
    """Set (or clear, with null) the account's daily loss limit across its sessions: at 80 %
    the account is warned once a day; at the limit every open session of the account ends
    ``ACCOUNT_LOSS_LIMIT`` and the account is locked until its kill switch is re-armed."""
    body = body.model_copy(update={"actor": principal.recorded_actor(body.actor)})
    return await accounts.set_limits(account_id, body)


@router.get("/{account_id}/risk")
async def account_risk(account_id: AccountId, accounts: AccountsDep, _: ReadRisk) -> AccountRiskOut:
    """The account's loss of the UTC day over its sessions against its daily loss limit."""
    return await accounts.risk(account_id)
