"""The market's latest price per symbol (``POST /marks``): every session holding it sees it."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import MarketMark


@dataclass(frozen=True)
class NewMarketMark:
    symbol: str
    price: Decimal
    marked_at: datetime


class MarketMarkRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def upsert(self, marks: Sequence[NewMarketMark]) -> list[str]:
        """Store each symbol's mark unless the stored one is newer; return the symbols stored.

        One statement. Within a batch the newest mark of a symbol counts (the later one on a
        tie), so a batch may list a symbol twice; a mark as old as the stored one replaces it.
        """
        newest: dict[str, NewMarketMark] = {}
        for mark in marks:
            known = newest.get(mark.symbol)
            if known is None or mark.marked_at >= known.marked_at:
                newest[mark.symbol] = mark
        if not newest:
            return []
        stmt = insert(MarketMark).values(
            [
                {"symbol": m.symbol, "price": m.price, "marked_at": m.marked_at}
                for m in newest.values()
            ]
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=[MarketMark.symbol],
            set_={
                "price": stmt.excluded.price,
                "marked_at": stmt.excluded.marked_at,
                "recorded_at": func.now(),
            },
            where=MarketMark.marked_at <= stmt.excluded.marked_at,
        ).returning(MarketMark.symbol)
        return sorted((await self.db.execute(upsert)).scalars())
