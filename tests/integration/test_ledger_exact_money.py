"""The ledger on real PostgreSQL stores the same exact money whatever order fills arrive in.

Each fill is applied and then everything is read back from the database, as when every fill
is its own transaction: a figure the arithmetic left finer than its column would be rounded
by PostgreSQL and differ between the in-order and the replay path.
"""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import permutations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.positions import Side
from store.ledger import LedgerRepository, NewFill
from store.models import Fill, Position, TradingSession
from store.sessions import SessionRepository
from tests.fixtures.factories import session_values

D = Decimal
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

Outcome = tuple[Decimal, dict[str, Decimal], dict[str, tuple[Decimal, Decimal]]]


def random_fills(seed: int, count: int = 5) -> list[NewFill]:
    """Fills whose averages repeat (prices with odd cents, quantities of 1-7) and odd fees."""
    rng = random.Random(seed)
    minutes = rng.sample(range(600), count)
    return [
        NewFill(
            fill_id=f"f{n}",
            symbol=rng.choice(["ACME", "ACME", "INIT"]),
            side=rng.choice(list(Side)),
            quantity=D(rng.randint(1, 7)),
            price=D(rng.randint(9_000, 11_000)).scaleb(-2) + D(rng.randint(0, 99)).scaleb(-8),
            fee=D(rng.randint(0, 300)).scaleb(-2),
            executed_at=T0 + timedelta(minutes=minute),
        )
        for n, minute in enumerate(minutes)
    ]


async def apply_in_order(db: AsyncSession, arrival: list[NewFill]) -> Outcome:
    row, _ = await SessionRepository(db).insert_if_absent(session_values())
    session_id = row.id
    ledger = LedgerRepository(db)
    for fill in arrival:
        _, created = await ledger.apply_fill(session_id, fill)
        assert created
        db.expire_all()  # the next fill reads what PostgreSQL stored, not what was computed
    realized = (
        await db.execute(select(TradingSession.realized_pnl).where(TradingSession.id == session_id))
    ).scalar_one()
    fills = await db.execute(
        select(Fill.fill_id, Fill.realized_pnl).where(Fill.session_id == session_id)
    )
    positions = await db.execute(select(Position).where(Position.session_id == session_id))
    return (
        realized,
        {fill_id: pnl for fill_id, pnl in fills.all()},
        {p.symbol: (p.quantity, p.average_price) for p in positions.scalars()},
    )


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_every_arrival_order_stores_the_same_money(db: AsyncSession, seed: int) -> None:
    fills = random_fills(seed)
    in_execution_order = sorted(fills, key=lambda f: f.executed_at)
    expected = await apply_in_order(db, in_execution_order)
    orders = list(permutations(fills))
    # Every order would be 120 sessions per seed; a fixed sample keeps it to a few seconds.
    for arrival in [*random.Random(seed).sample(orders, 12), tuple(reversed(in_execution_order))]:
        assert await apply_in_order(db, list(arrival)) == expected
    realized, per_fill, _ = expected
    assert realized == sum(per_fill.values(), D(0))


async def test_a_round_trip_at_a_repeating_average_stores_the_exact_cents(
    db: AsyncSession,
) -> None:
    # 1 @ 100 + 2 @ 101 cost 302; selling the 3 at 99.37 one by one realizes exactly -3.89,
    # whichever order the fills arrive in (the last sell arrives first here: a replay).
    def fill(fill_id: str, side: Side, price: str, minute: int) -> NewFill:
        return NewFill(fill_id, "ACME", side, D(1), D(price), D(0), T0 + timedelta(minutes=minute))

    buys = [fill("b1", Side.BUY, "100", 1), fill("b2", Side.BUY, "101", 2)]
    buys.append(fill("b3", Side.BUY, "101", 3))
    sells = [fill(f"s{n}", Side.SELL, "99.37", 10 + n) for n in range(3)]

    for arrival in (buys + sells, [sells[2], *buys, *sells[:2]]):
        realized, per_fill, positions = await apply_in_order(db, arrival)
        assert realized == D("-3.89")
        assert sum(per_fill.values(), D(0)) == D("-3.89")
        assert positions == {"ACME": (D(0), D(0))}
