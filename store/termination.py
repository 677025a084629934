"""Repositories for the termination sequence: step records, the paper book, portfolios.

``AlertRepository`` lives in ``store.alerts``; it is importable from here as before.
"""

from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.alerts import AlertRepository
from store.models import Order, Portfolio, PortfolioSettlement, TerminationStep


class TerminationStepRepository:
    """A recorded step is done: a retried activity reads this and does nothing more."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def result(self, session_id: str, step: str) -> dict[str, Any] | None:
        row = await self.db.get(TerminationStep, (session_id, step))
        return None if row is None else dict(row.result)

    async def record(self, session_id: str, step: str, result: dict[str, Any]) -> None:
        await self.db.execute(
            insert(TerminationStep)
            .values(session_id=session_id, step=step, result=result)
            .on_conflict_do_nothing()
        )

    async def completed(self, session_id: str) -> list[str]:
        stmt = (
            select(TerminationStep.step)
            .where(TerminationStep.session_id == session_id)
            .order_by(TerminationStep.completed_at)
        )
        return list((await self.db.execute(stmt)).scalars())


class PaperBookRepository:
    """The paper broker's order book in our own database."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def cancel_open_orders(self, session_id: str) -> list[str]:
        stmt = (
            update(Order)
            .where(Order.session_id == session_id, Order.status == "OPEN")
            .values(status="CANCELLED")
            .returning(Order.order_id)
        )
        return sorted((await self.db.execute(stmt)).scalars())


class PortfolioRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def settle_session(self, session_id: str, account_id: str, realized_pnl: Decimal) -> bool:
        """Add a session's realized PnL to its account once; False if it was settled before.

        The settlement row's primary key is the session id, so a second attempt inserts
        nothing and leaves the portfolio alone.
        """
        inserted = (
            await self.db.execute(
                insert(PortfolioSettlement)
                .values(session_id=session_id, account_id=account_id, realized_pnl=realized_pnl)
                .on_conflict_do_nothing()
                .returning(PortfolioSettlement.session_id)
            )
        ).scalar_one_or_none()
        if inserted is None:
            return False
        stmt = insert(Portfolio).values(
            account_id=account_id, cash=realized_pnl, realized_pnl=realized_pnl
        )
        await self.db.execute(
            stmt.on_conflict_do_update(
                index_elements=[Portfolio.account_id],
                set_={
                    "cash": Portfolio.cash + stmt.excluded.cash,
                    "realized_pnl": Portfolio.realized_pnl + stmt.excluded.realized_pnl,
                },
            )
        )
        return True

    async def resettle_session(
        self, session_id: str, account_id: str, realized_pnl: Decimal
    ) -> Decimal | None:
        """Bring a settled session's contribution to ``realized_pnl`` (a late fill changed it):
        the portfolio gets the difference once. Returns it, or None when nothing changed.

        The settlement row is locked, so two follow-ups cannot both add the difference;
        a session never settled is settled as :meth:`settle_session` would.
        """
        settled = await self.db.get(
            PortfolioSettlement, session_id, with_for_update=True, populate_existing=True
        )
        if settled is None:
            added = await self.settle_session(session_id, account_id, realized_pnl)
            return realized_pnl if added else None
        difference = realized_pnl - settled.realized_pnl
        if difference == 0:
            return None
        settled.realized_pnl = realized_pnl
        await self.db.execute(
            update(Portfolio)
            .where(Portfolio.account_id == settled.account_id)
            .values(
                cash=Portfolio.cash + difference,
                realized_pnl=Portfolio.realized_pnl + difference,
            )
        )
        await self.db.flush()
        return difference

    async def get(self, account_id: str) -> Portfolio | None:
        return await self.db.get(Portfolio, account_id, populate_existing=True)


__all__ = [
    "AlertRepository",
    "PaperBookRepository",
    "PortfolioRepository",
    "TerminationStepRepository",
]
