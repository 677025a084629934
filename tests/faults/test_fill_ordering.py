"""Scenario 5 (ledger): duplicate and out-of-order fills; realized PnL is order-independent."""

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

# BUY 10 @ 100 (t1), BUY 10 @ 110 fee 1 (t2), SELL 10 @ 120 (t3), in execution order:
#   after t1: +10 @ 100; after t2: +20 @ 105, realized -1 (fee);
#   t3 closes 10 at 120 - 105 = 15 each: realized +150; position +10 @ 105.
#   Session realized PnL: -1 + 150 = 149.
FILLS = {
    "f1": (Side.BUY, "10", "100", "0", 1),
    "f2": (Side.BUY, "10", "110", "1", 2),
    "f3": (Side.SELL, "10", "120", "0", 3),
}
EXPECTED_FILL_PNL = {"f1": D(0), "f2": D(-1), "f3": D(150)}


def new_fill(fill_id: str) -> NewFill:
    side, quantity, price, fee, minute = FILLS[fill_id]
    return NewFill(
        fill_id=fill_id,
        symbol="ACME",
        side=side,
        quantity=D(quantity),
        price=D(price),
        fee=D(fee),
        executed_at=T0 + timedelta(minutes=minute),
    )


async def ledger_state(db: AsyncSession, session_id: str) -> tuple[D, dict[str, D], Position]:
    realized = (
        await db.execute(select(TradingSession.realized_pnl).where(TradingSession.id == session_id))
    ).scalar_one()
    fills = {
        f.fill_id: f.realized_pnl
        for f in (
            await db.execute(
                select(Fill)
                .where(Fill.session_id == session_id)
                .execution_options(populate_existing=True)
            )
        ).scalars()
    }
    position = await db.get_one(Position, (session_id, "ACME"), populate_existing=True)
    return realized, fills, position


@pytest.mark.parametrize("order", list(permutations(FILLS)), ids="-".join)
async def test_realized_pnl_is_the_same_whatever_order_fills_arrive_in(
    db: AsyncSession, order: tuple[str, ...]
) -> None:
    row, _ = await SessionRepository(db).insert_if_absent(session_values())
    ledger = LedgerRepository(db)
    for fill_id in order:
        _, created = await ledger.apply_fill(row.id, new_fill(fill_id))
        assert created
    # Every fill again (a redelivery): nothing changes.
    for fill_id in order:
        _, created = await ledger.apply_fill(row.id, new_fill(fill_id))
        assert not created

    realized, fills, position = await ledger_state(db, row.id)
    assert realized == D(149)
    assert fills == EXPECTED_FILL_PNL
    assert position.quantity == D(10)
    assert position.average_price == D(105)


async def test_late_fill_that_reopens_a_flat_position_is_replayed(db: AsyncSession) -> None:
    # SELL 5 @ 90 at t0 arrives after BUY 5 @ 100 at t1 and SELL 5 @ 95 at t2.
    # In execution order: short 5 @ 90; BUY 5 @ 100 closes it: (100 - 90) * 5 against a
    # short = -50; SELL 5 @ 95 opens short 5 @ 95. Realized -50, position -5 @ 95.
    row, _ = await SessionRepository(db).insert_if_absent(session_values())
    ledger = LedgerRepository(db)
    for fill_id, side, price, minute in (
        ("b", Side.BUY, "100", 1),
        ("s2", Side.SELL, "95", 2),
        ("s1", Side.SELL, "90", 0),
    ):
        await ledger.apply_fill(
            row.id,
            NewFill(fill_id, "ACME", side, D(5), D(price), D(0), T0 + timedelta(minutes=minute)),
        )
    realized, fills, position = await ledger_state(db, row.id)
    assert realized == D(-50)
    assert fills == {"s1": D(0), "b": D(-50), "s2": D(0)}
    assert (position.quantity, position.average_price) == (D(-5), D(95))
