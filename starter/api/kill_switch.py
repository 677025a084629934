"""Routes of the emergency kill switch: press it, watch its sessions end, re-arm it."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from starter.api.auth import Kill, ReadRisk, Rearm
from starter.api.body import StrictJsonRoute
from starter.api.deps import KillSwitchDep
from starter.api.risk_schemas import KillSwitchBody, KillSwitchOut, RearmBody

router = APIRouter(prefix="/kill-switch", tags=["risk"], route_class=StrictJsonRoute)

KillSwitchId = Annotated[int, Path(ge=1, le=2**62, description="The kill switch's id.")]


@router.post("", status_code=status.HTTP_201_CREATED)
async def engage(
    body: KillSwitchBody, kill_switch: KillSwitchDep, principal: Kill, response: Response
) -> KillSwitchOut:
    """Close the gate of every open session in the scope at once, then end them all; the
    scope refuses new sessions until re-armed. A scope engaged already answers 200 with its
    switch (and closes and signals anything still open)."""
    body = body.model_copy(update={"actor": principal.recorded_actor(body.actor)})
    out, created = await kill_switch.engage(body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return out


@router.get("")
async def list_kill_switches(
    kill_switch: KillSwitchDep,
    _: ReadRisk,
    engaged: Annotated[bool, Query(description="Only those not re-armed.")] = False,
) -> list[KillSwitchOut]:
    """Kill switches, newest first, with their progress."""
    return await kill_switch.list_switches(engaged_only=engaged)


@router.get("/{kill_switch_id}")
async def get_kill_switch(
    kill_switch_id: KillSwitchId, kill_switch: KillSwitchDep, _: ReadRisk
) -> KillSwitchOut:
    """How many of the switch's sessions ended, and which are still winding down."""
    return await kill_switch.get(kill_switch_id)


@router.post("/{kill_switch_id}/rearm")
async def rearm(
    kill_switch_id: KillSwitchId, body: RearmBody, kill_switch: KillSwitchDep, principal: Rearm
) -> KillSwitchOut:
    """Unlock the switch's scope (admin only): new sessions in it may start again."""
    body = body.model_copy(update={"actor": principal.recorded_actor(body.actor)})
    return await kill_switch.rearm(kill_switch_id, body)
