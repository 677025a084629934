"""The risk controls of the session workflow on the time-skipping server: the REDUCING
state, drawdown from peak equity (80 % warning once, end DRAWDOWN_LIMIT) and the profit
target (end PROFIT_TARGET). Fills and marks go to the store; check_now wakes the workflow
as the API's ingest check would."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.positions import Side
from domain.session_messages import CheckNowInput
from domain.status import EndReason, SessionStatus
from store.audit import AuditRepository
from store.ledger import LedgerRepository, NewFill
from store.sessions import SessionRepository
from tests.workflows.helpers import Handle, start_session
from tests.workflows.histories import keep_history
from tests.workflows.test_lifecycle import checks_reach, notifications, terminate
from tests.workflows.test_session_workflow import record_losing_trade, wait_until_active
from workflows import search_attributes as sa
from workflows.session import TradingSessionWorkflow

Maker = async_sessionmaker[AsyncSession]


async def buy(sessionmaker: Maker, session_id: str, quantity: int, price: int) -> None:
    async with sessionmaker.begin() as db:
        await SessionRepository(db).get(session_id, for_update=True)
        fill = NewFill(
            "buy", "ACME", Side.BUY, Decimal(quantity), Decimal(price), Decimal(0), _now()
        )
        await LedgerRepository(db).apply_fill(session_id, fill)


async def second_losing_trade(sessionmaker: Maker, session_id: str, loss: Decimal) -> None:
    """As record_losing_trade, with fill ids of its own (that one's are taken)."""
    async with sessionmaker.begin() as db:
        await SessionRepository(db).get(session_id, for_update=True)
        ledger = LedgerRepository(db)
        for fill_id, side, price in (("b2", Side.BUY, 100), ("s2", Side.SELL, 100 - loss / 10)):
            fill = NewFill(fill_id, "ACME", side, Decimal(10), Decimal(price), Decimal(0), _now())
            await ledger.apply_fill(session_id, fill)


async def mark(sessionmaker: Maker, session_id: str, price: int, second: int) -> None:
    """A mark of ACME, ``second`` seconds after the session's first: the latest one wins."""
    async with sessionmaker.begin() as db:
        at = _MARKS_FROM + timedelta(seconds=second)
        await LedgerRepository(db).add_mark(session_id, "ACME", Decimal(price), at)


async def check_now(handle: Handle, source: str, checks: int) -> None:
    """Wake the workflow as the API's ingest check does, and wait for its check."""
    await handle.signal(TradingSessionWorkflow.check_now, CheckNowInput(source=source))
    await checks_reach(handle, checks)


async def trading_state_attribute(handle: Handle, expected: str) -> str | None:
    """The TradingState search attribute; upserts land with the next workflow task."""
    found = None
    for _ in range(100):
        found = (await handle.describe()).typed_search_attributes.get(sa.TRADING_STATE)
        if found == expected:
            break
        await asyncio.sleep(0.05)
    return found


_MARKS_FROM = datetime.now(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


async def test_session_enters_reducing_at_its_share_of_the_loss_limit_and_says_so(
    time_env: WorkflowEnvironment, sessionmaker: Maker, task_queue: str
) -> None:
    handle, values = await start_session(time_env, sessionmaker, task_queue, reducing_at=0.5)
    await wait_until_active(handle)
    await record_losing_trade(sessionmaker, values["id"], Decimal(400))  # 40 %: ACTIVE
    await check_now(handle, "fill", 1)
    before = await handle.query(TradingSessionWorkflow.get_status)

    await second_losing_trade(sessionmaker, values["id"], Decimal(100))  # 50 %: REDUCING
    await check_now(handle, "fill", 2)
    view = await handle.query(TradingSessionWorkflow.get_status)
    attribute = await trading_state_attribute(handle, "REDUCING")
    await check_now(handle, "sweep", 3)  # a later wake at the same loss changes nothing
    await terminate(handle)
    await keep_history(handle, "reducing_state")

    assert (before.trading_state, view.trading_state) == ("ACTIVE", "REDUCING")
    assert view.loss == Decimal(500)
    assert attribute == "REDUCING"
    async with sessionmaker() as db:
        trail = list(await AuditRepository(db).for_session(values["id"]))
        row = await SessionRepository(db).get(values["id"])
    changes = [e for e in trail if e.action == "trading_state.changed"]
    assert [(e.details["from"], e.details["to"]) for e in changes] == [("ACTIVE", "REDUCING")]
    assert changes[0].reason == "loss 500 of limit 1000"
    assert row.status == SessionStatus.TERMINATED  # REDUCING is no end: only the operator's


async def test_drawdown_from_peak_warns_once_at_80_percent_and_ends_at_the_limit(
    time_env: WorkflowEnvironment, sessionmaker: Maker, task_queue: str
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, loss_limit=Decimal(10_000), max_drawdown=Decimal(500)
    )
    session_id = values["id"]
    await wait_until_active(handle)
    await buy(sessionmaker, session_id, 10, 100)
    await mark(sessionmaker, session_id, 150, 1)  # equity +500: the peak
    await check_now(handle, "mark", 1)
    await mark(sessionmaker, session_id, 110, 2)  # equity +100: drawdown 400 = 80 %
    await check_now(handle, "mark", 2)
    await mark(sessionmaker, session_id, 111, 3)  # drawdown 390: still past 80 %, no repeat
    await check_now(handle, "sweep", 3)
    warned = await handle.query(TradingSessionWorkflow.get_status)

    await mark(sessionmaker, session_id, 100, 4)  # equity 0: drawdown 500 = the limit
    await handle.signal(TradingSessionWorkflow.check_now, CheckNowInput(source="mark"))
    result = await handle.result()
    await keep_history(handle, "drawdown_limit")

    assert warned.peak_equity == Decimal(500)
    assert warned.drawdown == Decimal(390)
    assert warned.end_reason is None
    assert result.end_reason is EndReason.DRAWDOWN_LIMIT
    assert result.status is SessionStatus.LOSS_LIMIT
    async with sessionmaker() as db:
        row = await SessionRepository(db).get(session_id)
        trail = [e.action for e in await AuditRepository(db).for_session(session_id)]
    assert row.end_detail == "drawdown 500 from peak 500 reached limit 500"
    assert row.peak_equity == Decimal(500)
    assert trail.count("warning.drawdown") == 1
    sent = [n.kind for n in await notifications(sessionmaker, session_id)]
    assert sent.count("warning.drawdown") == 1
    assert "warning.loss" not in sent  # equity never went below zero


async def test_profit_target_reached_ends_the_session_profit_target(
    time_env: WorkflowEnvironment, sessionmaker: Maker, task_queue: str
) -> None:
    handle, values = await start_session(
        time_env, sessionmaker, task_queue, profit_target=Decimal(300)
    )
    session_id = values["id"]
    await wait_until_active(handle)
    await buy(sessionmaker, session_id, 10, 100)
    await mark(sessionmaker, session_id, 120, 1)  # equity +200: not there yet
    await check_now(handle, "mark", 1)
    running = await handle.query(TradingSessionWorkflow.get_status)

    await mark(sessionmaker, session_id, 130, 2)  # equity +300: the target
    await handle.signal(TradingSessionWorkflow.check_now, CheckNowInput(source="mark"))
    result = await handle.result()
    await keep_history(handle, "profit_target")

    assert running.end_reason is None
    assert result.end_reason is EndReason.PROFIT_TARGET
    assert result.status is SessionStatus.TERMINATED
    # The wind-down flattened the position at the paper broker: the profit is realized.
    assert result.realized_pnl > 0
    async with sessionmaker() as db:
        row = await SessionRepository(db).get(session_id)
    assert row.end_reason == EndReason.PROFIT_TARGET
    assert row.end_detail == "equity 300 reached the profit target 300"
