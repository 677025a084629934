"""Repositories against real PostgreSQL; every test's writes are rolled back by ``db``."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.positions import Side
from domain.status import IllegalTransitionError, SessionStatus
from store.audit import AuditRepository
from store.ledger import LedgerRepository, NewFill
from store.models import AuditEvent, TradingSession
from store.sessions import SessionNotFoundError, SessionRepository
from tests.factories import new_session_id, session_values

D = Decimal
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def fill(
    fill_id: str,
    side: Side,
    quantity: str,
    price: str,
    *,
    symbol: str = "ACME",
    fee: str = "0",
) -> NewFill:
    return NewFill(
        fill_id=fill_id,
        symbol=symbol,
        side=side,
        quantity=D(quantity),
        price=D(price),
        fee=D(fee),
        executed_at=T0,
    )


def unique_account() -> str:
    return f"acc-{uuid.uuid4().hex[:12]}"


async def create_session(db: AsyncSession, **overrides: Any) -> str:
    row, created = await SessionRepository(db).insert_if_absent(session_values(**overrides))
    assert created
    return row.id


async def stored_realized_pnl(db: AsyncSession, session_id: str) -> Decimal:
    """Read the column itself, not an object the identity map may hold."""
    stmt = select(TradingSession.realized_pnl).where(TradingSession.id == session_id)
    return (await db.execute(stmt)).scalar_one()


# --- sessions ---------------------------------------------------------------------------


async def test_insert_if_absent_creates_a_pending_session(db: AsyncSession) -> None:
    values = session_values(loss_limit=D(500))

    row, created = await SessionRepository(db).insert_if_absent(values)

    assert created
    assert row.id == values["id"]
    assert row.status == SessionStatus.PENDING
    assert row.loss_limit == D(500)
    assert row.realized_pnl == 0


async def test_second_insert_with_same_id_returns_the_first_row(db: AsyncSession) -> None:
    sessions = SessionRepository(db)
    first_values = session_values(account_id="acc-first", loss_limit=D(500))
    await sessions.insert_if_absent(first_values)
    db.expunge_all()  # the answer must come from the database, not from memory

    row, created = await sessions.insert_if_absent(
        session_values(id=first_values["id"], account_id="acc-second", loss_limit=D(9000))
    )

    assert not created
    assert row.id == first_values["id"]
    assert row.account_id == "acc-first"
    assert row.loss_limit == D(500)


async def test_second_insert_with_same_idempotency_key_returns_the_first_row(
    db: AsyncSession,
) -> None:
    sessions = SessionRepository(db)
    key = f"key-{uuid.uuid4().hex}"
    first_values = session_values(idempotency_key=key)
    await sessions.insert_if_absent(first_values)
    db.expunge_all()
    other_id = new_session_id()

    row, created = await sessions.insert_if_absent(session_values(id=other_id, idempotency_key=key))

    assert not created
    assert row.id == first_values["id"]
    assert row.idempotency_key == key
    with pytest.raises(SessionNotFoundError):
        await sessions.get(other_id)


async def test_get_of_unknown_session_raises_not_found(db: AsyncSession) -> None:
    with pytest.raises(SessionNotFoundError, match="no-such-session"):
        await SessionRepository(db).get("no-such-session")


async def test_transition_moves_a_session_along_its_lifecycle(db: AsyncSession) -> None:
    sessions = SessionRepository(db)
    session_id = await create_session(db)
    ended_at = T0 + timedelta(hours=1)

    active, changed = await sessions.transition(session_id, SessionStatus.ACTIVE)
    assert (active.status, changed) == (SessionStatus.ACTIVE, True)
    ending, changed = await sessions.transition(session_id, SessionStatus.ENDING)
    assert (ending.status, changed) == (SessionStatus.ENDING, True)
    ended, changed = await sessions.transition(
        session_id,
        SessionStatus.EXPIRED,
        end_reason="EXPIRED",
        end_detail="deadline reached",
        ended_at=ended_at,
    )
    assert (ended.status, changed) == (SessionStatus.EXPIRED, True)

    db.expunge_all()
    stored = await sessions.get(session_id)
    assert stored.status == SessionStatus.EXPIRED
    assert stored.end_reason == "EXPIRED"
    assert stored.end_detail == "deadline reached"
    assert stored.ended_at == ended_at


async def test_illegal_transition_raises_and_leaves_status_unchanged(db: AsyncSession) -> None:
    sessions = SessionRepository(db)
    session_id = await create_session(db)
    await sessions.transition(session_id, SessionStatus.ACTIVE)

    with pytest.raises(IllegalTransitionError):
        await sessions.transition(session_id, SessionStatus.PENDING)
    with pytest.raises(IllegalTransitionError):
        await sessions.transition(session_id, SessionStatus.TERMINATED)

    db.expunge_all()
    assert (await sessions.get(session_id)).status == SessionStatus.ACTIVE


async def test_transition_out_of_a_terminal_status_raises(db: AsyncSession) -> None:
    sessions = SessionRepository(db)
    session_id = await create_session(db)
    await sessions.transition(session_id, SessionStatus.ENDING)
    await sessions.transition(session_id, SessionStatus.TERMINATED)

    with pytest.raises(IllegalTransitionError):
        await sessions.transition(session_id, SessionStatus.ACTIVE)


async def test_transition_to_current_status_is_a_no_op(db: AsyncSession) -> None:
    sessions = SessionRepository(db)
    session_id = await create_session(db)
    await sessions.transition(session_id, SessionStatus.ACTIVE)

    row, changed = await sessions.transition(
        session_id, SessionStatus.ACTIVE, end_detail="must not be written"
    )

    assert not changed
    assert row.status == SessionStatus.ACTIVE
    db.expunge_all()
    assert (await sessions.get(session_id)).end_detail is None


async def test_transition_of_unknown_session_raises_not_found(db: AsyncSession) -> None:
    with pytest.raises(SessionNotFoundError):
        await SessionRepository(db).transition("no-such-session", SessionStatus.ACTIVE)


async def test_list_filters_by_account(db: AsyncSession) -> None:
    sessions = SessionRepository(db)
    mine, other = unique_account(), unique_account()
    a = await create_session(db, account_id=mine)
    b = await create_session(db, account_id=mine)
    await create_session(db, account_id=other)

    listed = await sessions.list(account_id=mine)

    assert {row.id for row in listed} == {a, b}


async def test_list_filters_by_status(db: AsyncSession) -> None:
    sessions = SessionRepository(db)
    account = unique_account()
    pending = await create_session(db, account_id=account)
    active = await create_session(db, account_id=account)
    await sessions.transition(active, SessionStatus.ACTIVE)

    active_rows = await sessions.list(status=SessionStatus.ACTIVE, limit=100_000)
    pending_ids = {
        row.id for row in await sessions.list(status=SessionStatus.PENDING, limit=100_000)
    }

    assert all(row.status == SessionStatus.ACTIVE for row in active_rows)
    assert active in {row.id for row in active_rows}
    assert pending in pending_ids
    assert active not in pending_ids


async def test_list_combines_status_and_account_filters(db: AsyncSession) -> None:
    sessions = SessionRepository(db)
    account = unique_account()
    await create_session(db, account_id=account)
    active = await create_session(db, account_id=account)
    await sessions.transition(active, SessionStatus.ACTIVE)
    elsewhere = await create_session(db, account_id=unique_account())
    await sessions.transition(elsewhere, SessionStatus.ACTIVE)

    listed = await sessions.list(status=SessionStatus.ACTIVE, account_id=account)

    assert [row.id for row in listed] == [active]


async def test_list_honours_limit_and_offset(db: AsyncSession) -> None:
    sessions = SessionRepository(db)
    account = unique_account()
    ids = {await create_session(db, account_id=account) for _ in range(3)}

    first = await sessions.list(account_id=account, limit=2)
    rest = await sessions.list(account_id=account, limit=2, offset=2)

    assert len(first) == 2
    assert len(rest) == 1
    assert {row.id for row in [*first, *rest]} == ids


# --- ledger -----------------------------------------------------------------------------


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


async def test_audit_append_with_same_dedupe_key_writes_once(db: AsyncSession) -> None:
    audit = AuditRepository(db)
    session_id = new_session_id()

    first = await audit.append(
        session_id=session_id,
        action="session.ended",
        actor="op-jane",
        reason="end of test",
        dedupe_key=f"{session_id}:ended",
    )
    second = await audit.append(
        session_id=session_id,
        action="session.ended",
        actor="op-john",
        reason="retried",
        dedupe_key=f"{session_id}:ended",
    )

    assert first
    assert not second
    [event] = await audit.for_session(session_id)
    assert (event.action, event.actor, event.reason) == ("session.ended", "op-jane", "end of test")


async def test_audit_append_without_dedupe_key_writes_every_event(db: AsyncSession) -> None:
    audit = AuditRepository(db)
    session_id = new_session_id()

    await audit.append(session_id=session_id, action="note", actor="op-jane")
    await audit.append(session_id=session_id, action="note", actor="op-jane")

    assert len(await audit.for_session(session_id)) == 2


async def test_audit_event_keeps_details_and_workflow_ids(db: AsyncSession) -> None:
    audit = AuditRepository(db)
    session_id = new_session_id()

    await audit.append(
        session_id=session_id,
        action="session.ended",
        actor="system",
        details={"end_reason": "EXPIRED", "realized_pnl": "-12.5"},
        workflow_id="wf-1",
        run_id="run-1",
    )

    [event] = await audit.for_session(session_id)
    assert event.details == {"end_reason": "EXPIRED", "realized_pnl": "-12.5"}
    assert (event.workflow_id, event.run_id) == ("wf-1", "run-1")
    assert event.occurred_at is not None


async def audit_event_id(db: AsyncSession, session_id: str) -> int:
    await AuditRepository(db).append(session_id=session_id, action="session.created", actor="api")
    stmt = select(AuditEvent.id).where(AuditEvent.session_id == session_id)
    return (await db.execute(stmt)).scalar_one()


async def test_audit_event_cannot_be_updated(db: AsyncSession) -> None:
    session_id = new_session_id()
    event_id = await audit_event_id(db, session_id)

    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin_nested():
            await db.execute(
                text("UPDATE audit_events SET actor = 'mallory' WHERE id = :id"), {"id": event_id}
            )

    [event] = await AuditRepository(db).for_session(session_id)
    assert event.actor == "api"


async def test_audit_event_cannot_be_deleted(db: AsyncSession) -> None:
    session_id = new_session_id()
    event_id = await audit_event_id(db, session_id)

    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin_nested():
            await db.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": event_id})

    assert len(await AuditRepository(db).for_session(session_id)) == 1


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


async def test_audit_trail_cannot_be_truncated(db: AsyncSession) -> None:
    session_id = new_session_id()
    await audit_event_id(db, session_id)

    with pytest.raises(DBAPIError, match="append-only"):
        async with db.begin_nested():
            await db.execute(text("TRUNCATE audit_events"))

    assert len(await AuditRepository(db).for_session(session_id)) == 1
