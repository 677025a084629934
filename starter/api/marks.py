"""Market data per symbol: ``POST /marks``, for the ``market_data`` role (and admins)."""

from fastapi import APIRouter

from starter.api.auth import MarketData
from starter.api.body import StrictJsonRoute
from starter.api.deps import MarksDep
from starter.api.schemas import MarketMarksBody, MarketMarksOut

router = APIRouter(tags=["market data"], route_class=StrictJsonRoute)


@router.post("/marks")
async def record_market_marks(
    body: MarketMarksBody, marks: MarksDep, _: MarketData
) -> MarketMarksOut:
    """Apply a batch of prices to every ACTIVE session holding the symbols; sessions at
    their limit stop trading at once (gate closed) and their workflows are woken."""
    return await marks.record_market_marks(body)
