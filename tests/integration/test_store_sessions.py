"""SessionRepository against real PostgreSQL; every test's writes are rolled back by ``db``."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from domain.status import IllegalTransitionError, SessionStatus
from store.sessions import SessionNotFoundError, SessionRepository
from tests.fixtures.factories import new_session_id, session_values
from tests.fixtures.store import T0, D, create_session, unique_account


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
