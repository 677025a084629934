"""The paper broker's order book: orders placed through the API, one per order id."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.late_fills import OrderFacts
from domain.orders import OrderStatus
from domain.positions import Side
from store.models import Fill, Order


@dataclass(frozen=True)
class NewOrder:
    """An order as the algorithm asked for it."""

    order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    limit_price: Decimal | None


class OrderRepository:
    """Never commits: the caller owns the transaction."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, session_id: str, order_id: str) -> Order | None:
        """The order with this id in the session, if any."""
        stmt = select(Order).where(Order.session_id == session_id, Order.order_id == order_id)
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def facts(self, session_id: str, order_id: str) -> OrderFacts | None:
        """The order and the quantity its recorded fills executed so far, if it exists."""
        filled = (
            select(func.coalesce(func.sum(Fill.quantity), 0))
            .where(Fill.session_id == session_id, Fill.order_id == order_id)
            .scalar_subquery()
        )
        stmt = select(Order.symbol, Order.side, Order.quantity, filled).where(
            Order.session_id == session_id, Order.order_id == order_id
        )
        row = (await self.db.execute(stmt)).one_or_none()
        if row is None:
            return None
        symbol, side, quantity, done = row
        return OrderFacts(order_id, symbol, side, quantity, done)

    async def insert_if_absent(self, session_id: str, order: NewOrder) -> tuple[Order, bool]:
        """Book an OPEN order unless its id is known; return (row, created).

        Racing requests with one order id all end here; ON CONFLICT lets exactly one win.
        """
        stmt = (
            insert(Order)
            .values(
                session_id=session_id,
                order_id=order.order_id,
                symbol=order.symbol,
                side=order.side,
                quantity=order.quantity,
                limit_price=order.limit_price,
                status=OrderStatus.OPEN,
            )
            .on_conflict_do_nothing(index_elements=["session_id", "order_id"])
            .returning(Order.id)
        )
        created = (await self.db.execute(stmt)).scalar_one_or_none() is not None
        row = await self.get(session_id, order.order_id)
        if row is None:  # only if the conflicting row vanished in between: a bug upstream
            raise LookupError(f"order {order.order_id!r} of {session_id!r} not found")
        return row, created

    async def list(
        self, session_id: str, *, status: OrderStatus | None = None, limit: int | None = None
    ) -> Sequence[Order]:
        """Oldest first, as they were placed; ``limit`` None means all of them."""
        stmt = select(Order).where(Order.session_id == session_id)
        if status is not None:
            stmt = stmt.where(Order.status == status)
        stmt = stmt.order_by(Order.id).limit(limit)
        return (await self.db.execute(stmt)).scalars().all()

    async def open_orders(self, session_id: str) -> Sequence[Order]:
        """Orders still OPEN: what a halt must cancel."""
        return await self.list(session_id, status=OrderStatus.OPEN)
