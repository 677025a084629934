"""Routes for a session's performance: live figures and the snapshots the workflow stored."""

from typing import Annotated

from fastapi import APIRouter, Query

from starter.api.body import StrictJsonRoute
from starter.api.deps import ServiceDep
from starter.api.schemas import SessionIdPath
from starter.services import performance as performance_service
from starter.services.performance import PerformanceReport, SnapshotOut

router = APIRouter(prefix="/sessions", tags=["performance"], route_class=StrictJsonRoute)


@router.get("/{session_id}/performance")
async def performance(session_id: SessionIdPath, service: ServiceDep) -> PerformanceReport:
    """The latest stored snapshot, if any, and figures computed from the store right now."""
    return await performance_service.performance_report(service, session_id)


@router.get("/{session_id}/performance/history")
async def performance_history(
    session_id: SessionIdPath,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SnapshotOut]:
    """Stored snapshots (periodic and final), newest first."""
    return await performance_service.performance_history(service, session_id, limit)
