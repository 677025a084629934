"""Orders of a session's algorithm: the pre-trade check is enforced where they are booked."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domain.orders import OrderStatus
from domain.positions import Side
from domain.text import Amount, Identifier, Symbol
from starter.api.schemas import Money, Request
from starter.services.errors import ConflictError
from starter.services.sessions import SessionService, gate_of, session_row
from store.models import Order
from store.orders import NewOrder, OrderRepository
from store.sessions import SessionRepository


class OrderRequest(Request):
    """An order to book; ``order_id`` is the algorithm's own id, so a retry is safe."""

    order_id: Identifier
    symbol: Symbol
    side: Side
    quantity: Annotated[Amount, Field(gt=0)]
    limit_price: Annotated[Amount, Field(gt=0)] | None = None


class OrderOut(BaseModel):
    """A booked order; ``duplicate`` is True when the order id was known already."""

    model_config = ConfigDict(from_attributes=True)

    order_id: str
    session_id: str
    symbol: str
    side: Side
    quantity: Money
    limit_price: Money | None
    status: OrderStatus
    created_at: datetime
    duplicate: bool = False


class GateClosedError(ConflictError):
    """The session's trading gate refused the order: paused, halting, ended or not started."""

    code = "gate_closed"


async def place_order(
    service: SessionService, session_id: str, request: OrderRequest
) -> tuple[OrderOut, bool]:
    """Book an OPEN order if the gate is open; a repeated order id returns the stored order.

    The gate is read under the session's row lock, the lock that closing it takes too, so
    no order is booked after a halt has closed the gate and moved on to cancel orders.
    """
    order = NewOrder(
        order_id=request.order_id,
        symbol=request.symbol,
        side=request.side,
        quantity=request.quantity,
        limit_price=request.limit_price,
    )
    async with service.sessionmaker.begin() as db:
        orders = OrderRepository(db)
        row = await orders.get(session_id, request.order_id)
        created = False
        if row is None:
            session = await session_row(SessionRepository(db), session_id, for_update=True)
            gate = gate_of(session)
            if not gate.open:
                raise GateClosedError(
                    f"trading gate of session {session_id!r} is closed: {gate.reason}"
                )
            row, created = await orders.insert_if_absent(session_id, order)
        if not created and not _same_order(row, order):
            raise ConflictError(
                f"order {request.order_id!r} was already placed with other values",
                field="order_id",
            )
        out = OrderOut.model_validate(row)
    out.duplicate = not created
    return out, created


async def list_orders(
    service: SessionService, session_id: str, status: OrderStatus | None = None
) -> list[OrderOut]:
    """The session's orders, oldest first; 404 for an unknown session."""
    async with service.sessionmaker() as db:
        await session_row(SessionRepository(db), session_id)
        rows = await OrderRepository(db).list(session_id, status=status)
    return [OrderOut.model_validate(row) for row in rows]


def _same_order(row: Order, order: NewOrder) -> bool:
    fields: tuple[tuple[object, object], ...] = (
        (row.symbol, order.symbol),
        (row.side, order.side),
        (row.quantity, order.quantity),
        (row.limit_price, order.limit_price),
    )
    return all(stored == asked for stored, asked in fields)
