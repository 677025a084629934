"""Routes for a session's performance: live figures and the snapshots the workflow stored."""

from typing import Annotated

from fastapi import APIRouter, Query

from starter.api.body import StrictJsonRoute
from starter.api.deps import PerformanceDep
from starter.api.schemas import PerformanceReport, SessionIdPath, SnapshotOut

router = APIRouter(prefix="/sessions", tags=["performance"], route_class=StrictJsonRoute)


@router.get("/{session_id}/performance")
async def performance(session_id: SessionIdPath, figures: PerformanceDep) -> PerformanceReport:
    """The latest stored snapshot, if any, and figures computed from the store right now."""
    return await figures.report(session_id)


@router.get("/{session_id}/performance/history")
async def performance_history(
    session_id: SessionIdPath,
    figures: PerformanceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SnapshotOut]:
    """Stored snapshots (periodic and final), newest first."""
    return await figures.history(session_id, limit)
