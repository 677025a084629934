"""Alerts for operators: ``GET /alerts`` and ``POST /alerts/{id}/ack``."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from domain.alerts import AlertState
from domain.text import Identifier
from starter.api.auth import AckAlerts, ReadAlerts
from starter.api.body import StrictJsonRoute
from starter.api.deps import AlertsDep
from starter.api.schemas_operations import AckBody, AlertOut, AlertPage
from store.alerts import AlertFilter

router = APIRouter(prefix="/alerts", tags=["operations"], route_class=StrictJsonRoute)

AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("")
async def list_alerts(
    alerts: AlertsDep,
    _: ReadAlerts,
    kind: Annotated[Identifier | None, Query(description="Only this kind.")] = None,
    session_id: Annotated[Identifier | None, Query(description="Only this session's.")] = None,
    state: Annotated[AlertState | None, Query(description="open or acknowledged.")] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Only ids below this (paging).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlertPage:
    """Alerts, newest first; the next page is ``before_id=<next_before_id>``."""
    where = AlertFilter(kind=kind, session_id=session_id, state=state)
    return await alerts.page(where, before_id=before_id, limit=limit)


@router.post("/{alert_id}/ack")
async def acknowledge_alert(
    alert_id: AlertId, alerts: AlertsDep, principal: AckAlerts, body: AckBody | None = None
) -> AlertOut:
    """Acknowledge an alert (audited); acknowledging it again keeps the first."""
    body = body or AckBody()
    return await alerts.acknowledge(alert_id, principal.recorded_actor(body.actor), body.reason)
