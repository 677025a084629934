"""LedgerRepository (fills, positions, marks, PnL) on real PostgreSQL, rolled back by ``db``."""

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from domain.positions import Side
from store.ledger import LedgerRepository
from store.sessions import SessionNotFoundError
from tests.fixtures.store import T0, D, create_session, fill, stored_realized_pnl


async def test_fill_updates_position_and_session_realized_pnl(db: AsyncSession) -> None:
    ledger = LedgerRepository(db)
    session_id = await create_session(db)

    await ledger.apply_fill(session_id, fill("f1", Side.BUY, "10", "100"))
    row, created = await ledger.apply_fill(session_id, fill("f2", Side.SELL, "4", "110", fee="1"))

    # (110 - 100) * 4 - 1 = 39
    assert created
    assert row.realized_pnl == D(39)
    assert await stored_realized_pnl(db, session_id) == D(39)
    [position] = await ledger.positions(session_id)
    assert (position.symbol, position.quantity, position.average_price) == ("ACME", D(6), D(100))


async def test_fills_across_symbols_sum_into_session_realized_pnl(db: AsyncSession) -> None:
    ledger = LedgerRepository(db)
    session_id = await create_session(db)

    await ledger.apply_fill(session_id, fill("a1", Side.BUY, "10", "100", symbol="AAA"))
    await ledger.apply_fill(session_id, fill("b1", Side.SELL, "5", "20", symbol="BBB"))
    await ledger.apply_fill(session_id, fill("a2", Side.SELL, "10", "60", symbol="AAA"))
    await ledger.apply_fill(session_id, fill("b2", Side.BUY, "5", "18", symbol="BBB", fee="0.5"))

    # AAA: (60 - 100) * 10 = -400 ; BBB short: (18 - 20) * 5 * -1 - 0.5 = 9.5 ; -390.5
    assert await stored_realized_pnl(db, session_id) == D("-390.5")
    positions = {p.symbol: p.quantity for p in await ledger.positions(session_id)}
    assert positions == {"AAA": 0, "BBB": 0}


async def test_duplicate_fill_id_is_applied_once(db: AsyncSession) -> None:
    ledger = LedgerRepository(db)
    session_id = await create_session(db)
    await ledger.apply_fill(session_id, fill("f1", Side.BUY, "10", "100"))
    await ledger.apply_fill(session_id, fill("f2", Side.SELL, "5", "90", fee="2"))

    again, created = await ledger.apply_fill(session_id, fill("f2", Side.SELL, "5", "90", fee="2"))

    # (90 - 100) * 5 - 2 = -52, once
    assert not created
    assert again.fill_id == "f2"
    assert again.realized_pnl == D(-52)
    assert await ledger.fill_count(session_id) == 2
    assert await stored_realized_pnl(db, session_id) == D(-52)
    [position] = await ledger.positions(session_id)
    assert position.quantity == 5


async def test_same_fill_id_in_another_session_is_a_different_fill(db: AsyncSession) -> None:
    ledger = LedgerRepository(db)
    first = await create_session(db)
    second = await create_session(db)

    _, created_first = await ledger.apply_fill(first, fill("f1", Side.BUY, "1", "100"))
    _, created_second = await ledger.apply_fill(second, fill("f1", Side.BUY, "1", "100"))

    assert created_first
    assert created_second
    assert await ledger.fill_count(first) == 1
    assert await ledger.fill_count(second) == 1


async def test_latest_mark_is_chosen_by_marked_at_not_by_arrival(db: AsyncSession) -> None:
    ledger = LedgerRepository(db)
    session_id = await create_session(db)
    # AAA: the newer mark arrives first, a late older one must not replace it
    await ledger.add_mark(session_id, "AAA", D(105), T0 + timedelta(seconds=10))
    await ledger.add_mark(session_id, "AAA", D(99), T0)
    # BBB: arrivals in time order, the last one is the latest
    await ledger.add_mark(session_id, "BBB", D(20), T0)
    await ledger.add_mark(session_id, "BBB", D(21), T0 + timedelta(seconds=10))

    assert await ledger.latest_marks(session_id) == {"AAA": D(105), "BBB": D(21)}


async def test_latest_marks_of_a_session_ignore_other_sessions(db: AsyncSession) -> None:
    ledger = LedgerRepository(db)
    mine = await create_session(db)
    other = await create_session(db)
    await ledger.add_mark(mine, "AAA", D(100), T0)
    await ledger.add_mark(other, "AAA", D(500), T0 + timedelta(hours=1))

    assert await ledger.latest_marks(mine) == {"AAA": D(100)}


async def test_pnl_without_marks_counts_open_positions_at_zero_unrealized(
    db: AsyncSession,
) -> None:
    ledger = LedgerRepository(db)
    session_id = await create_session(db)
    await ledger.apply_fill(session_id, fill("f1", Side.BUY, "10", "100", fee="1"))

    figures = await ledger.pnl(session_id)

    assert figures.realized_pnl == D(-1)
    assert figures.unrealized_pnl == 0
    assert figures.open_positions == 1


async def test_pnl_values_open_positions_at_latest_marks(db: AsyncSession) -> None:
    ledger = LedgerRepository(db)
    session_id = await create_session(db)
    await ledger.apply_fill(session_id, fill("a1", Side.BUY, "10", "100", symbol="AAA"))
    await ledger.apply_fill(session_id, fill("a2", Side.SELL, "4", "110", symbol="AAA"))
    await ledger.apply_fill(session_id, fill("b1", Side.SELL, "5", "20", symbol="BBB"))
    await ledger.apply_fill(session_id, fill("c1", Side.BUY, "2", "50", symbol="CCC"))
    await ledger.apply_fill(session_id, fill("c2", Side.SELL, "2", "55", symbol="CCC"))
    await ledger.add_mark(session_id, "AAA", D(95), T0 + timedelta(minutes=1))
    await ledger.add_mark(session_id, "AAA", D(80), T0)  # older, arrives late
    await ledger.add_mark(session_id, "BBB", D(22), T0)
    await ledger.add_mark(session_id, "CCC", D(70), T0)  # flat: its mark changes nothing

    figures = await ledger.pnl(session_id)

    # realized: AAA (110 - 100) * 4 = 40 ; CCC (55 - 50) * 2 = 10 ; total 50
    # unrealized: AAA (95 - 100) * 6 = -30 ; BBB short (22 - 20) * -5 = -10 ; total -40
    assert figures.realized_pnl == D(50)
    assert figures.unrealized_pnl == D(-40)
    assert figures.open_positions == 2


async def test_pnl_of_session_without_fills_is_zero(db: AsyncSession) -> None:
    session_id = await create_session(db)

    figures = await LedgerRepository(db).pnl(session_id)

    assert (figures.realized_pnl, figures.unrealized_pnl, figures.open_positions) == (
        D(0),
        D(0),
        0,
    )


async def test_pnl_of_unknown_session_raises_not_found(db: AsyncSession) -> None:
    with pytest.raises(SessionNotFoundError, match="no-such-session"):
        await LedgerRepository(db).pnl("no-such-session")


# --- audit ------------------------------------------------------------------------------


async def test_pnl_takes_the_last_recorded_of_marks_with_the_same_time(db: AsyncSession) -> None:
    ledger = LedgerRepository(db)
    session_id = await create_session(db)
    await ledger.apply_fill(session_id, fill("a1", Side.BUY, "10", "100", symbol="AAA"))
    await ledger.add_mark(session_id, "AAA", D(90), T0)
    await ledger.add_mark(session_id, "AAA", D(97), T0)
    await ledger.add_mark(session_id, "ZZZ", D(1), T0)  # a symbol the session does not hold

    figures = await ledger.pnl(session_id)

    assert figures.unrealized_pnl == D(-30)
    assert figures.open_positions == 1
