"""Routes for a session's algorithm to place orders, behind the trading gate."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from domain.orders import OrderStatus
from starter.api.body import StrictJsonRoute
from starter.api.deps import OrdersDep
from starter.api.schemas import OrderBody, OrderOut, SessionIdPath

router = APIRouter(prefix="/sessions", tags=["orders"], route_class=StrictJsonRoute)


@router.post("/{session_id}/orders", status_code=status.HTTP_201_CREATED)
async def place_order(
    session_id: SessionIdPath, body: OrderBody, orders: OrdersDep, response: Response
) -> OrderOut:
    """Book an OPEN order; 409 when the trading gate is closed, 200 for a repeated order id."""
    order, created = await orders.place_order(session_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return order


@router.get("/{session_id}/orders")
async def list_orders(
    session_id: SessionIdPath,
    orders: OrdersDep,
    status_filter: Annotated[OrderStatus | None, Query(alias="status")] = None,
) -> list[OrderOut]:
    """The session's orders, oldest first."""
    return await orders.list_orders(session_id, status_filter)
