"""Failure analysis for operators: ``GET /jobs/failures`` and ``GET /jobs/stats``."""

from typing import Annotated

from fastapi import APIRouter, Query

from starter.api.body import StrictJsonRoute
from starter.api.deps import JobsDep
from starter.api.schemas import Failures, JobStats

router = APIRouter(prefix="/jobs", tags=["operations"], route_class=StrictJsonRoute)

Hours = Annotated[float, Query(gt=0, le=24 * 90, description="Look back this many hours.")]
Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("/failures")
async def failures(jobs: JobsDep, hours: Hours = 24, limit: Limit = 50) -> Failures:
    """Workflows that failed or timed out in the window, and sessions stuck in CLEANUP_FAILED."""
    return await jobs.failures(hours, limit)


@router.get("/stats")
async def stats(jobs: JobsDep, hours: Hours = 24) -> JobStats:
    """Counts by execution status of the workflows that closed in the window."""
    return await jobs.stats(hours)
