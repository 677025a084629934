"""Market data per symbol: ``POST /marks``, for the ``market_data`` role (and admins)."""

from fastapi import APIRouter

from starter import marks_service
from starter.auth import MarketData
from starter.body import StrictJsonRoute
from starter.deps import ServiceDep
from starter.schemas import MarketMarksOut, MarketMarksRequest

router = APIRouter(tags=["market data"], route_class=StrictJsonRoute)


@router.post("/marks")
async def record_market_marks(
    body: MarketMarksRequest, service: ServiceDep, _: MarketData
) -> MarketMarksOut:
    """Apply a batch of prices to every ACTIVE session holding the symbols; sessions at
    their limit stop trading at once (gate closed) and their workflows are woken."""
    return await marks_service.record_market_marks(service, body)
