"""The session workflow on the time-skipping server, with real activities and PostgreSQL."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.positions import Side
from domain.session_messages import TerminateInput
from domain.status import EndReason, SessionStatus
from store.audit import AuditRepository
from store.ledger import LedgerRepository, NewFill
from store.sessions import SessionRepository
from tests.workflows.helpers import Handle, start_session
from tests.workflows.histories import keep_history
from workflows.session import TradingSessionWorkflow

CHECK_INTERVAL = timedelta(seconds=30)


async def wait_until_active(handle: Handle) -> None:
    """Poll the live query (queries don't skip time) until the session is active."""
    for _ in range(200):
        view = await handle.query(TradingSessionWorkflow.get_status)
        if view.status is SessionStatus.ACTIVE:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("session never became active")


async def record_losing_trade(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: str, loss: Decimal
) -> None:
    """Buy 10 at 100 and sell 10 at 100 - loss/10: realized PnL is exactly -loss."""
    now = datetime.now(UTC)
    async with sessionmaker.begin() as db:
        await SessionRepository(db).get(session_id, for_update=True)
        ledger = LedgerRepository(db)
        for fill_id, side, price in (("buy", Side.BUY, 100), ("sell", Side.SELL, 100 - loss / 10)):
            await ledger.apply_fill(
                session_id,
                NewFill(fill_id, "ACME", side, Decimal(10), Decimal(price), Decimal(0), now),
            )


async def audit_actions(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: str
) -> list[str]:
    async with sessionmaker() as db:
        return [event.action for event in await AuditRepository(db).for_session(session_id)]


async def test_session_expires_exactly_at_deadline(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, duration=timedelta(minutes=10)
    )

    result = await handle.result()
    await keep_history(handle, "expired_at_deadline")

    assert result.end_reason is EndReason.EXPIRED
    assert result.status is SessionStatus.EXPIRED
    assert values["end_time"] <= result.ended_at < values["end_time"] + timedelta(seconds=1)
    async with sessionmaker() as db:
        row = await SessionRepository(db).get(values["id"])
    assert row.status == SessionStatus.EXPIRED
    assert row.ended_at == result.ended_at
    assert await audit_actions(sessionmaker, values["id"]) == [
        "session.activated",
        "warning.time",
        "algorithm.halted",
        "orders.cancelled",
        "positions.flattened",
        "portfolio.updated",
        "session.ended",
    ]


async def test_manual_termination_ends_session_with_actor_and_reason(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue)
    await wait_until_active(handle)

    await handle.signal(
        TradingSessionWorkflow.request_termination,
        TerminateInput(reason="desk closing early", actor="op-jane"),
    )
    # A second request does not replace the first one's reason or actor.
    await handle.signal(
        TradingSessionWorkflow.request_termination,
        TerminateInput(reason="again", actor="op-bob"),
    )
    result = await handle.result()
    await keep_history(handle, "terminated_by_operator")

    assert result.end_reason is EndReason.TERMINATED
    async with sessionmaker() as db:
        row = await SessionRepository(db).get(values["id"])
        trail = list(await AuditRepository(db).for_session(values["id"]))
    ended = next(e for e in trail if e.action == "session.ended")
    asked = [(e.action, e.actor, e.reason) for e in trail if "termination_request" in e.action]
    assert row.status == SessionStatus.TERMINATED
    assert row.end_detail == "desk closing early"
    assert (ended.action, ended.actor, ended.reason) == (
        "session.ended",
        "op-jane",
        "desk closing early",
    )
    # The workflow audits every request it receives, the one that changed nothing too.
    assert sorted(asked) == [
        ("session.termination_request_ignored", "op-bob", "again"),
        ("session.termination_requested", "op-jane", "desk closing early"),
    ]


async def test_session_waits_for_its_start_time_before_activating(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    handle, values = await start_session(
        time_env,
        sessionmaker,
        task_queue,
        start_in=timedelta(minutes=5),
        duration=timedelta(minutes=5),
    )
    view = await handle.query(TradingSessionWorkflow.get_status)
    assert view.status is SessionStatus.PENDING

    result = await handle.result()

    assert result.end_reason is EndReason.EXPIRED
    async with sessionmaker() as db:
        events = list(await AuditRepository(db).for_session(values["id"]))
    assert [e.action for e in events][:2] == ["session.activated", "warning.time"]


async def test_pending_session_terminated_before_start_never_activates(
    time_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, start_in=timedelta(hours=1)
    )
    await handle.signal(
        TradingSessionWorkflow.request_termination,
        TerminateInput(reason="cancelled before the open", actor="op-jane"),
    )

    result = await handle.result()

    assert result.end_reason is EndReason.TERMINATED
    assert "session.activated" not in await audit_actions(sessionmaker, values["id"])
