"""Orders of a session's algorithm: the pre-trade check is enforced where they are booked."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.orders import OrderStatus
from starter.api.schemas import OrderBody, OrderOut
from starter.services.errors import ConflictError
from starter.services.sessions import gate_of, session_row
from store.models import Order
from store.orders import NewOrder, OrderRepository
from store.sessions import SessionRepository


class GateClosedError(ConflictError):
    """The session's trading gate refused the order: paused, halting, ended or not started."""

    code = "gate_closed"


class OrderService:
    """A session's orders, booked only through an open trading gate."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def place_order(self, session_id: str, request: OrderBody) -> tuple[OrderOut, bool]:
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
        async with self.sessionmaker.begin() as db:
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
        self, session_id: str, status: OrderStatus | None = None
    ) -> list[OrderOut]:
        """The session's orders, oldest first; 404 for an unknown session."""
        async with self.sessionmaker() as db:
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
