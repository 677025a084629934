"""The broker port, and the paper broker that implements it on our own database.

A real broker adapter implements :class:`Broker` and is passed to ``create_worker``; its
calls must be idempotent per session, e.g. closing orders with client order ids derived
from the session and symbol, because activities run at least once.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.late_fills import reflatten_fill_id
from domain.positions import Side, quantize_money
from store.dead_man import DeadMansSwitchRepository
from store.ledger import LedgerRepository, NewFill
from store.sessions import SessionRepository
from store.termination import PaperBookRepository


@dataclass(frozen=True)
class ClosingFill:
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    fill_id: str = ""


class Broker(Protocol):
    async def cancel_open_orders(self, session_id: str) -> list[str]:
        """Cancel every open order of the session; return the ids cancelled."""
        ...

    async def flatten_positions(self, session_id: str) -> list[ClosingFill]:
        """Close every open position of the session; return the closing fills.

        Called again when a late fill reopened a position after the session ended: it
        closes what is open now, and nothing when the session is flat.
        """
        ...

    async def cancel_all_after(self, account_id: str, seconds: float) -> datetime | None:
        """Dead-man's switch (Kraken ``cancelAllOrdersAfter``): unless called again within
        ``seconds``, the broker cancels every open order of the account by itself; 0 turns
        it off. Returns the deadline. The fleet sweep re-arms it for every account with an
        open session; if the workers or Temporal stop, the venue's own timer fires."""
        ...


@runtime_checkable
class RearmsInBulk(Protocol):
    """A broker that re-arms every account with an open session in one call (the paper
    broker: one statement); others get one ``cancel_all_after`` per account."""

    async def cancel_all_after_open_accounts(self, seconds: float) -> int: ...


def flatten_fill_id(symbol: str) -> str:
    """One closing fill per symbol and session: a repeat of the step finds it recorded."""
    return f"flatten:{symbol}"


class PaperBroker:
    """Cancels in the orders table; flattens at the latest mark, charging a fee rate. Its
    dead-man's switch is a deadline per account; the venue's timer (``PaperVenue``, run by
    the API, which is where the paper broker's orders arrive) enforces it."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], fee_rate: Decimal = Decimal("0.0005")
    ) -> None:
        self.sessionmaker = sessionmaker
        self.fee_rate = fee_rate

    async def cancel_open_orders(self, session_id: str) -> list[str]:
        async with self.sessionmaker.begin() as db:
            return await PaperBookRepository(db).cancel_open_orders(session_id)

    async def cancel_all_after(self, account_id: str, seconds: float) -> datetime | None:
        async with self.sessionmaker.begin() as db:
            return await DeadMansSwitchRepository(db).arm(account_id, seconds)

    async def cancel_all_after_open_accounts(self, seconds: float) -> int:
        """One statement arms the deadline of every account with an open session."""
        async with self.sessionmaker.begin() as db:
            return await DeadMansSwitchRepository(db).rearm_open_accounts(seconds)

    async def flatten_positions(self, session_id: str) -> list[ClosingFill]:
        """Close at the latest mark (at the entry price when no mark is known: no PnL).

        The first closing fill of a symbol is ``flatten:<symbol>``; one closing what a late
        fill reopened is ``reflatten:<symbol>:<n>``. A flat position is left alone, so a
        repeated call closes nothing twice.
        """
        closing: list[ClosingFill] = []
        async with self.sessionmaker.begin() as db:
            # The session row lock orders us after any fill being applied right now.
            await SessionRepository(db).get(session_id, for_update=True)
            ledger = LedgerRepository(db)
            marks = await ledger.latest_marks(session_id)
            for position in await ledger.positions(session_id):
                if position.quantity == 0:
                    continue
                side = Side.SELL if position.quantity > 0 else Side.BUY
                quantity = abs(position.quantity)
                # Fill prices are money; the average is kept finer than that.
                price = marks.get(position.symbol, quantize_money(position.average_price))
                fee = (quantity * price * self.fee_rate).quantize(Decimal("0.00000001"))
                fill_id, round_ = flatten_fill_id(position.symbol), 1
                while await ledger.get_fill(session_id, fill_id) is not None:
                    round_ += 1
                    fill_id = reflatten_fill_id(position.symbol, round_)
                fill, _ = await ledger.apply_fill(
                    session_id,
                    NewFill(
                        fill_id=fill_id,
                        symbol=position.symbol,
                        side=side,
                        quantity=quantity,
                        price=price,
                        fee=fee,
                        executed_at=datetime.now(UTC),
                    ),
                )
                closing.append(
                    ClosingFill(
                        position.symbol, side, quantity, price, fee, fill.realized_pnl, fill_id
                    )
                )
        return closing
