"""Scenario 1: the worker dies (kill -9) between cancel and flatten; a new one finishes."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from starter.api.schemas import FillBody, MarkBody, StartSessionBody, TerminateBody
from starter.services.sessions import SessionService
from tests.faults.conftest import (
    ONCE_PER_SESSION,
    TERMINAL,
    Proc,
    duplicated_effects,
    eventually,
    scalar,
    session_status,
    stack_env,
    start_worker,
)
from tests.fixtures.services import trades_of


async def test_worker_killed_before_flatten_ends_session_once_after_restart(
    service: SessionService,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    dev_server: str,
    database_url: str,
    task_queue: str,
    procs: list[Proc],
    tmp_path: Path,
    figures: dict[str, Any],
) -> None:
    figures["sessions"] = 1
    env = stack_env(dev_server, database_url, task_queue)
    procs.append(start_worker(env, tmp_path / "worker-1.log"))
    session_id = f"crash-{uuid.uuid4().hex[:10]}"
    account = f"acc-{uuid.uuid4().hex[:10]}"
    await service.start_session(
        StartSessionBody(
            session_id=session_id,
            account_id=account,
            algorithm_id="algo-1",
            end_time=datetime.now(UTC) + timedelta(hours=1),
            loss_limit=Decimal(1000),
        )
    )
    await eventually(
        lambda: _is(sessionmaker, session_id, "ACTIVE"), 30, "the session to become ACTIVE"
    )
    for symbol, side, price, mark in (("ACME", "BUY", "100", "104"), ("BOLT", "SELL", "50", "49")):
        request = FillBody(
            fill_id=f"{symbol}-1",
            symbol=symbol,
            side=side,
            quantity=Decimal(10),
            price=Decimal(price),
        )
        await trades_of(service).record_fill(session_id, request)
        await trades_of(service).record_mark(
            session_id, MarkBody(symbol=symbol, price=Decimal(mark))
        )

    # Hold the positions: halt and cancel never touch them, flatten waits on this lock.
    async with engine.connect() as blocker:
        transaction = await blocker.begin()
        await blocker.execute(
            text("SELECT * FROM positions WHERE session_id = :s FOR UPDATE"), {"s": session_id}
        )
        await service.terminate(session_id, TerminateBody(reason="fault drill", actor="op-test"))
        await eventually(
            lambda: _flatten_waiting_on_lock(sessionmaker, session_id),
            30,
            "flatten to wait on the positions lock after cancel_orders",
        )
        procs[0].kill9()
        await transaction.rollback()
    procs.append(start_worker(env, tmp_path / "worker-2.log"))

    # Flatten runs inside a local activity (run_steps): the dead worker's workflow task times
    # out (10 s) and the new worker replays the workflow and runs the call again; halt and
    # cancel find their records and are not repeated.
    await eventually(
        lambda: _is_terminal(sessionmaker, session_id), 75, "the session to end after restart"
    )
    figures["sessions_lost"] = 0
    figures["duplicated_effects"] = await duplicated_effects(sessionmaker, [session_id])
    figures["unhandled_errors"] = sum(len(p.error_lines()) for p in procs)

    async with sessionmaker() as db:
        closing = (
            await db.execute(
                text(
                    "SELECT symbol, count(*) FROM fills WHERE session_id = :s "
                    "AND fill_id LIKE 'flatten:%' GROUP BY symbol ORDER BY symbol"
                ),
                {"s": session_id},
            )
        ).all()
        open_positions = (
            await db.execute(
                text("SELECT count(*) FROM positions WHERE session_id = :s AND quantity <> 0"),
                {"s": session_id},
            )
        ).scalar_one()
        actions: dict[str, int] = dict(
            (
                await db.execute(
                    text(
                        "SELECT action, count(*) FROM audit_events WHERE session_id = :s "
                        "GROUP BY action"
                    ),
                    {"s": session_id},
                )
            ).all()
        )
        settlements = (
            await db.execute(
                text("SELECT count(*) FROM portfolio_settlements WHERE session_id = :s"),
                {"s": session_id},
            )
        ).scalar_one()
        realized, portfolio = (
            await db.execute(
                text(
                    "SELECT s.realized_pnl, p.realized_pnl FROM trading_sessions s "
                    "JOIN portfolios p ON p.account_id = s.account_id WHERE s.id = :s"
                ),
                {"s": session_id},
            )
        ).one()

    assert await session_status(sessionmaker, session_id) == "TERMINATED"
    assert [tuple(row) for row in closing] == [("ACME", 1), ("BOLT", 1)]
    assert open_positions == 0
    assert settlements == 1
    assert portfolio == realized  # the account's only session, settled once
    # Closing at the marks: ACME +40, BOLT +10, less the paper broker's fees.
    assert Decimal(30) < realized < Decimal(50)
    for action in ONCE_PER_SESSION:
        assert actions.get(action) == 1, (action, actions)
    assert figures["duplicated_effects"] == 0
    assert figures["unhandled_errors"] == 0, [p.error_lines() for p in procs]


async def _is(sm: async_sessionmaker[AsyncSession], session_id: str, status: str) -> bool:
    return await session_status(sm, session_id) == status


async def _is_terminal(sm: async_sessionmaker[AsyncSession], session_id: str) -> bool:
    return await session_status(sm, session_id) in TERMINAL


async def _flatten_waiting_on_lock(sm: async_sessionmaker[AsyncSession], session_id: str) -> bool:
    cancelled = await scalar(
        sm,
        "SELECT count(*) FROM termination_steps WHERE session_id = :s AND step = 'cancel_orders'",
        s=session_id,
    )
    waiting = await scalar(
        sm,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query ILIKE '%positions%'",
    )
    return bool(cancelled) and bool(waiting)
