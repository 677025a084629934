"""What the pre-trade checks read about a session when an order arrives (domain.risk)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from domain.orders import OrderStatus
from store.models import Mark, MarketMark, Order, Position


@dataclass(frozen=True)
class OrderFacts:
    """The session's position and latest mark in the order's symbol, its open orders, the
    times of its orders in the last second, and the database's clock."""

    held: Decimal
    mark: Decimal | None
    open_orders: int
    recent_order_times: tuple[datetime, ...]
    now: datetime


class RiskRepository:
    """Reads only; the caller holds the session's row lock, so no order slips in between."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def order_facts(self, session_id: str, symbol: str) -> OrderFacts:
        now = (await self.db.execute(select(func.now()))).scalar_one()
        held = (
            await self.db.execute(
                select(Position.quantity).where(
                    Position.session_id == session_id, Position.symbol == symbol
                )
            )
        ).scalar_one_or_none()
        # The latest mark as store.ledger.with_latest_mark has it: newest by marked_at of the
        # session's own and the market's, the session's own on a tie.
        own = select(Mark.price, Mark.marked_at, literal(1).label("own")).where(
            Mark.session_id == session_id, Mark.symbol == symbol
        )
        market = select(MarketMark.price, MarketMark.marked_at, literal(0).label("own")).where(
            MarketMark.symbol == symbol
        )
        marks = union_all(own, market).subquery()
        mark = (
            await self.db.execute(
                select(marks.c.price)
                .order_by(marks.c.marked_at.desc(), marks.c.own.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        open_orders = (
            await self.db.execute(
                select(func.count())
                .select_from(Order)
                .where(Order.session_id == session_id, Order.status == OrderStatus.OPEN)
            )
        ).scalar_one()
        recent = (
            await self.db.execute(
                select(Order.created_at).where(
                    Order.session_id == session_id, Order.created_at > now - timedelta(seconds=1)
                )
            )
        ).scalars()
        return OrderFacts(
            held=held if held is not None else Decimal(0),
            mark=mark,
            open_orders=open_orders,
            recent_order_times=tuple(recent),
            now=now,
        )
