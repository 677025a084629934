"""Routes of a session's trading data: fills and marks, each checked as it is recorded."""

from fastapi import APIRouter, Response, status

from starter.api.auth import IngestTrades
from starter.api.body import StrictJsonRoute
from starter.api.deps import TradesDep
from starter.api.schemas import FillBody, FillOut, MarkBody, MarkOut, SessionIdPath

router = APIRouter(prefix="/sessions", tags=["sessions"], route_class=StrictJsonRoute)


@router.post("/{session_id}/fills", status_code=status.HTTP_201_CREATED)
async def record_fill(
    session_id: SessionIdPath,
    body: FillBody,
    trades: TradesDep,
    response: Response,
    _: IngestTrades,
) -> FillOut:
    """Record a fill once (a repeated fill id returns the stored one) and check at once."""
    fill, created = await trades.record_fill(session_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return fill


@router.post("/{session_id}/marks", status_code=status.HTTP_201_CREATED)
async def record_mark(
    session_id: SessionIdPath, body: MarkBody, trades: TradesDep, _: IngestTrades
) -> MarkOut:
    """Record a mark price; open positions are valued at the latest mark."""
    return await trades.record_mark(session_id, body)
