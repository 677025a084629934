"""Fills, positions and marks: the data a session's PnL is computed from."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVarTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.positions import MONEY_SCALE, Side, apply_fill, unrealized_pnl
from domain.positions import Position as PositionValue
from store.models import Fill, Mark, MarketMark, Position, TradingSession
from store.sessions import SessionNotFoundError

_Ts = TypeVarTuple("_Ts")


def with_latest_mark(
    stmt: Select[*_Ts],
) -> tuple[Select[*_Ts], ColumnElement[Decimal]]:
    """Join each ``Position`` of ``stmt`` to its latest mark; return the statement and the price.

    The latest mark of a (session, symbol) is the newest by ``marked_at`` of the session's
    own marks and the market's mark for the symbol (``POST /marks``); on a tie the
    session's own mark wins. The price is NULL when neither is known. Every path that
    values a position (the ingest check, the workflow's check, the fleet sweep, flatten)
    uses this one rule.
    """
    own = (
        select(Mark.price, Mark.marked_at)
        .where(Mark.session_id == Position.session_id, Mark.symbol == Position.symbol)
        .order_by(Mark.marked_at.desc(), Mark.id.desc())
        .limit(1)
        .lateral("own_mark")
    )
    market_is_newer = and_(
        MarketMark.marked_at.is_not(None),
        or_(own.c.marked_at.is_(None), MarketMark.marked_at > own.c.marked_at),
    )
    price = case((market_is_newer, MarketMark.price), else_=own.c.price)
    joined = stmt.outerjoin(own, true()).outerjoin(MarketMark, MarketMark.symbol == Position.symbol)
    return joined, price


def unrealized_by_session(session_ids: Select[tuple[str]], name: str) -> Subquery:
    """``(session_id, unrealized)`` for the sessions ``session_ids`` selects that hold an open
    position: each position at its latest mark, with the arithmetic of
    ``domain.positions.unrealized_pnl`` (mark x quantity less the booked cost, each at the
    stored scale; PostgreSQL's round() of a numeric rounds half away from zero, as the
    domain does). Sessions without an open position have no row."""
    open_positions = (
        select(Position.session_id, Position.quantity, Position.average_price)
        .select_from(Position)
        .where(Position.session_id.in_(session_ids), Position.quantity != 0)
    )
    joined, mark = with_latest_mark(open_positions)
    valued = joined.add_columns(mark.label("mark")).subquery(f"{name}_valued")
    booked = func.round(valued.c.quantity * valued.c.average_price, MONEY_SCALE)
    position_unrealized = func.round(valued.c.mark * valued.c.quantity - booked, MONEY_SCALE)
    return (
        select(
            valued.c.session_id,
            func.sum(func.coalesce(position_unrealized, 0)).label("unrealized"),
        )
        .group_by(valued.c.session_id)
        .subquery(name)
    )


@dataclass(frozen=True)
class NewFill:
    fill_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    executed_at: datetime
    # Recorded after the session's trading ended (domain.late_fills), and the order it fills.
    late: bool = False
    order_id: str | None = None


@dataclass(frozen=True)
class PnlFigures:
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    open_positions: int


class LedgerRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get_fill(self, session_id: str, fill_id: str) -> Fill | None:
        stmt = select(Fill).where(Fill.session_id == session_id, Fill.fill_id == fill_id)
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def apply_fill(self, session_id: str, fill: NewFill) -> tuple[Fill, bool]:
        """Record a fill once and fold it into the position and realized PnL.

        The caller holds the session row lock, so fills of one session apply one at a time.
        A repeated fill id returns the stored fill and changes nothing. A fill executed
        before the latest one already applied to its symbol replays that symbol's fills in
        execution order, so realized PnL never depends on the order fills arrive in.
        """
        existing = await self.get_fill(session_id, fill.fill_id)
        if existing is not None:
            return existing, False
        position = await self.db.get(Position, (session_id, fill.symbol), with_for_update=True)
        if position is None:
            position = Position(
                session_id=session_id,
                symbol=fill.symbol,
                quantity=Decimal(0),
                average_price=Decimal(0),
            )
            self.db.add(position)
        row = Fill(
            session_id=session_id,
            fill_id=fill.fill_id,
            symbol=fill.symbol,
            side=fill.side,
            quantity=fill.quantity,
            price=fill.price,
            fee=fill.fee,
            realized_pnl=Decimal(0),
            executed_at=fill.executed_at,
            late=fill.late,
            order_id=fill.order_id,
        )
        latest = await self._latest_execution(session_id, fill.symbol)
        session = await self.db.get_one(TradingSession, session_id)
        if latest is not None and fill.executed_at < latest:
            self.db.add(row)
            await self.db.flush()
            session.realized_pnl += await self._replay(session_id, position)
        else:
            held = PositionValue(position.quantity, position.average_price)
            effect = apply_fill(held, fill.side, fill.quantity, fill.price, fill.fee)
            position.quantity = effect.position.quantity
            position.average_price = effect.position.average_price
            row.realized_pnl = effect.realized_pnl
            self.db.add(row)
            session.realized_pnl += effect.realized_pnl
        await self.db.flush()
        return row, True

    async def _latest_execution(self, session_id: str, symbol: str) -> datetime | None:
        stmt = select(func.max(Fill.executed_at)).where(
            Fill.session_id == session_id, Fill.symbol == symbol
        )
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def _replay(self, session_id: str, position: Position) -> Decimal:
        """Recompute the symbol's position and each fill's PnL in (executed_at, id) order;
        return how much the session's realized PnL changes."""
        stmt = (
            select(Fill)
            .where(Fill.session_id == session_id, Fill.symbol == position.symbol)
            .order_by(Fill.executed_at, Fill.id)
        )
        held = PositionValue()
        change = Decimal(0)
        for stored in (await self.db.execute(stmt)).scalars():
            effect = apply_fill(held, Side(stored.side), stored.quantity, stored.price, stored.fee)
            change += effect.realized_pnl - stored.realized_pnl
            stored.realized_pnl = effect.realized_pnl
            held = effect.position
        position.quantity = held.quantity
        position.average_price = held.average_price
        return change

    async def add_mark(self, session_id: str, symbol: str, price: Decimal, at: datetime) -> None:
        await self.db.execute(
            insert(Mark).values(session_id=session_id, symbol=symbol, price=price, marked_at=at)
        )

    async def positions(self, session_id: str) -> list[Position]:
        stmt = select(Position).where(Position.session_id == session_id).order_by(Position.symbol)
        return list((await self.db.execute(stmt)).scalars())

    async def latest_marks(self, session_id: str) -> dict[str, Decimal]:
        """Latest mark per symbol by the mark's own time, so late arrivals don't win.

        The session's own marks and the market's marks of the symbols it traded compete by
        ``marked_at``; on a tie the session's own mark wins (as in :func:`with_latest_mark`).
        """
        own = (
            select(Mark.symbol, Mark.price, Mark.marked_at, literal(1).label("own"))
            .where(Mark.session_id == session_id)
            .ext(distinct_on(Mark.symbol))
            .order_by(Mark.symbol, Mark.marked_at.desc(), Mark.id.desc())
        )
        traded = select(Position.symbol).where(Position.session_id == session_id)
        market = select(
            MarketMark.symbol, MarketMark.price, MarketMark.marked_at, literal(0).label("own")
        ).where(MarketMark.symbol.in_(traded))
        candidates = union_all(own, market).subquery()
        stmt = (
            select(candidates.c.symbol, candidates.c.price)
            .ext(distinct_on(candidates.c.symbol))
            .order_by(candidates.c.symbol, candidates.c.marked_at.desc(), candidates.c.own.desc())
        )
        return {symbol: price for symbol, price in (await self.db.execute(stmt)).all()}

    async def pnl(self, session_id: str) -> PnlFigures:
        """Realized PnL, and unrealized PnL of the open positions at their latest marks.

        One statement, one round trip: it runs on every check and every fill or mark.
        """
        positions = (
            select(TradingSession.realized_pnl, Position.quantity, Position.average_price)
            .outerjoin(
                Position, and_(Position.session_id == TradingSession.id, Position.quantity != 0)
            )
            .where(TradingSession.id == session_id)
        )
        joined, mark = with_latest_mark(positions)
        rows = (await self.db.execute(joined.add_columns(mark))).all()
        if not rows:
            raise SessionNotFoundError(session_id)
        unrealized = Decimal(0)
        open_positions = 0
        for _, quantity, average_price, price in rows:
            if quantity is None:
                continue  # the session has no open position
            open_positions += 1
            unrealized += unrealized_pnl(PositionValue(quantity, average_price), price)
        return PnlFigures(rows[0].realized_pnl, unrealized, open_positions)

    async def fill_count(self, session_id: str) -> int:
        stmt = select(func.count()).select_from(Fill).where(Fill.session_id == session_id)
        return (await self.db.execute(stmt)).scalar_one()
