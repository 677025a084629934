"""Session activities in an ActivityEnvironment against real, committed PostgreSQL rows.

These tests commit (activities own their transactions); unique session ids keep them apart.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.controls import SessionControlActivities
from activities.session import SessionActivities
from domain.positions import Side
from domain.session_messages import SYSTEM_ACTOR, ActivateInput, CheckInput, LimitChangeInput
from domain.status import EndReason, SessionStatus
from domain.termination_messages import FinishInput
from store.audit import AuditRepository
from store.ledger import LedgerRepository
from store.models import AuditEvent, TradingSession
from store.sessions import SessionRepository
from tests.fixtures.factories import new_session_id, session_values
from tests.fixtures.store import fill

D = Decimal
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

Sessionmaker = async_sessionmaker[AsyncSession]


@pytest.fixture
def activities(sessionmaker: Sessionmaker) -> SessionActivities:
    return SessionActivities(sessionmaker)


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


async def create_session(sessionmaker: Sessionmaker) -> str:
    async with sessionmaker.begin() as db:
        row, created = await SessionRepository(db).insert_if_absent(session_values())
    assert created
    return row.id


async def stored_session(sessionmaker: Sessionmaker, session_id: str) -> TradingSession:
    async with sessionmaker() as db:
        return await SessionRepository(db).get(session_id)


async def audit_events(
    sessionmaker: Sessionmaker, session_id: str, action: str
) -> list[AuditEvent]:
    async with sessionmaker() as db:
        events = await AuditRepository(db).for_session(session_id)
    return [event for event in events if event.action == action]


def activate_input(session_id: str) -> ActivateInput:
    return ActivateInput(session_id=session_id, workflow_id="wf-test", run_id="run-1", at=T0)


def finish_input(session_id: str, reason: EndReason = EndReason.TERMINATED) -> FinishInput:
    return FinishInput(
        session_id=session_id,
        reason=reason,
        detail="end of test",
        actor="op-jane",
        ended_at=T0 + timedelta(minutes=42),
        workflow_id="wf-test",
        run_id="run-1",
    )


async def test_activate_twice_leaves_session_active_with_one_audit_event(
    env: ActivityEnvironment, activities: SessionActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await create_session(sessionmaker)

    await env.run(activities.activate_session, activate_input(session_id))
    await env.run(activities.activate_session, activate_input(session_id))

    assert (await stored_session(sessionmaker, session_id)).status == SessionStatus.ACTIVE
    [event] = await audit_events(sessionmaker, session_id, "session.activated")
    assert event.actor == SYSTEM_ACTOR
    assert (event.workflow_id, event.run_id) == ("wf-test", "run-1")


async def test_activate_of_unknown_session_is_refused_without_retry(
    env: ActivityEnvironment, activities: SessionActivities
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.activate_session, activate_input(new_session_id()))

    assert raised.value.non_retryable
    assert raised.value.type == "SessionNotFoundError"


async def test_activate_of_ended_session_is_refused_without_retry(
    env: ActivityEnvironment, activities: SessionActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await create_session(sessionmaker)
    await env.run(activities.finish_session, finish_input(session_id))

    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.activate_session, activate_input(session_id))

    assert raised.value.non_retryable
    assert raised.value.type == "IllegalTransitionError"
    assert (await stored_session(sessionmaker, session_id)).status == SessionStatus.TERMINATED


async def test_check_reports_realized_unrealized_and_open_positions(
    env: ActivityEnvironment, activities: SessionActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await create_session(sessionmaker)
    async with sessionmaker.begin() as db:
        ledger = LedgerRepository(db)
        await ledger.apply_fill(session_id, fill("a1", Side.BUY, "10", "100", symbol="AAA"))
        await ledger.apply_fill(
            session_id, fill("a2", Side.SELL, "4", "110", symbol="AAA", fee="1")
        )
        await ledger.apply_fill(session_id, fill("b1", Side.BUY, "5", "20", symbol="BBB"))
        await ledger.apply_fill(session_id, fill("c1", Side.BUY, "2", "50", symbol="CCC"))
        await ledger.apply_fill(session_id, fill("c2", Side.SELL, "2", "55", symbol="CCC"))
        await ledger.add_mark(session_id, "AAA", D(95), T0 + timedelta(minutes=1))
        await ledger.add_mark(session_id, "AAA", D(130), T0)  # older, must not count
        await ledger.add_mark(session_id, "BBB", D(22), T0)

    snapshot = await env.run(
        activities.check_session, CheckInput(session_id=session_id, loss_limit=D(1000))
    )

    # realized: AAA (110 - 100) * 4 - 1 = 39 ; CCC (55 - 50) * 2 = 10 ; total 49
    # unrealized: AAA (95 - 100) * 6 = -30 ; BBB (22 - 20) * 5 = 10 ; total -20
    # open: AAA and BBB (CCC is flat)
    assert snapshot.session_id == session_id
    assert snapshot.realized_pnl == D(49)
    assert snapshot.unrealized_pnl == D(-20)
    assert snapshot.open_positions == 2


async def test_check_of_fresh_session_reports_zero(
    env: ActivityEnvironment, activities: SessionActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await create_session(sessionmaker)

    snapshot = await env.run(
        activities.check_session, CheckInput(session_id=session_id, loss_limit=D(1000))
    )

    assert (snapshot.realized_pnl, snapshot.unrealized_pnl, snapshot.open_positions) == (
        D(0),
        D(0),
        0,
    )


async def test_check_of_unknown_session_is_refused_without_retry(
    env: ActivityEnvironment, activities: SessionActivities
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await env.run(
            activities.check_session, CheckInput(session_id=new_session_id(), loss_limit=D(1000))
        )

    assert raised.value.non_retryable
    assert raised.value.type == "SessionNotFoundError"


async def test_finish_twice_ends_session_once_with_one_audit_event(
    env: ActivityEnvironment, activities: SessionActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await create_session(sessionmaker)
    await env.run(activities.activate_session, activate_input(session_id))
    async with sessionmaker.begin() as db:
        ledger = LedgerRepository(db)
        await ledger.apply_fill(session_id, fill("f1", Side.BUY, "10", "100", symbol="AAA"))
        await ledger.apply_fill(session_id, fill("f2", Side.SELL, "10", "60", symbol="AAA"))
    request = finish_input(session_id, EndReason.TERMINATED)

    first = await env.run(activities.finish_session, request)
    second = await env.run(activities.finish_session, request)

    # (60 - 100) * 10 = -400
    assert first.status == second.status == SessionStatus.TERMINATED
    assert first.realized_pnl == second.realized_pnl == D(-400)
    stored = await stored_session(sessionmaker, session_id)
    assert stored.status == SessionStatus.TERMINATED
    assert stored.end_reason == EndReason.TERMINATED
    assert stored.end_detail == "end of test"
    assert stored.ended_at == T0 + timedelta(minutes=42)
    [event] = await audit_events(sessionmaker, session_id, "session.ended")
    assert event.actor == "op-jane"
    assert event.reason == "end of test"
    assert event.details["end_reason"] == "TERMINATED"
    assert D(event.details["realized_pnl"]) == D(-400)


@pytest.mark.parametrize("reason", list(EndReason))
async def test_finish_of_pending_session_reaches_the_reason_status(
    reason: EndReason,
    env: ActivityEnvironment,
    activities: SessionActivities,
    sessionmaker: Sessionmaker,
) -> None:
    session_id = await create_session(sessionmaker)

    result = await env.run(activities.finish_session, finish_input(session_id, reason))

    assert result.status == reason.final_status
    stored = await stored_session(sessionmaker, session_id)
    assert stored.status == reason.final_status
    assert stored.end_reason == reason


async def test_finish_of_ended_session_with_another_reason_is_refused_and_keeps_first_end(
    env: ActivityEnvironment, activities: SessionActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await create_session(sessionmaker)
    await env.run(activities.finish_session, finish_input(session_id, EndReason.TERMINATED))

    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.finish_session, finish_input(session_id, EndReason.EXPIRED))

    assert raised.value.non_retryable
    assert (await stored_session(sessionmaker, session_id)).status == SessionStatus.TERMINATED
    assert len(await audit_events(sessionmaker, session_id, "session.ended")) == 1


async def test_finish_of_unknown_session_is_refused_without_retry(
    env: ActivityEnvironment, activities: SessionActivities
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.finish_session, finish_input(new_session_id()))

    assert raised.value.non_retryable
    assert raised.value.type == "SessionNotFoundError"


async def test_a_limit_change_of_an_ended_session_is_refused_and_changes_nothing(
    env: ActivityEnvironment, activities: SessionActivities, sessionmaker: Sessionmaker
) -> None:
    session_id = await create_session(sessionmaker)
    await env.run(activities.finish_session, finish_input(session_id, EndReason.EXPIRED))
    before = await stored_session(sessionmaker, session_id)
    controls = SessionControlActivities(sessionmaker)

    with pytest.raises(ApplicationError) as refused:
        await env.run(
            controls.change_limits,
            LimitChangeInput(
                session_id=session_id,
                end_time=before.end_time + timedelta(hours=1),
                actor="op-late",
                change_id="late-1",
                workflow_id="wf",
                run_id="run",
            ),
        )

    after = await stored_session(sessionmaker, session_id)
    assert refused.value.non_retryable
    assert refused.value.type == "SessionEnded"
    assert after.end_time == before.end_time
    assert await audit_events(sessionmaker, session_id, "session.limits_changed") == []
