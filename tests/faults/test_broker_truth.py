"""Scenarios 8-10 (issue 15): the ledger and the sessions stay true to the broker and to
Temporal. A real worker process on a database of the scenario's own, so its reconciler
sees only the scenario's sessions.

8. A session with an open position is hard-terminated with ``temporal workflow terminate``:
   within one reconciliation interval plus 10 s it is wound down, once.
9. The algorithm's halt webhook is down during a breach: flattened within 5 s anyway, one
   alert once the webhook gives up.
10. A fill after the end, of an order placed before the halt: recorded late, flattened
   again once, realized PnL right.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.session import workflow_id_for
from starter.api.schemas import FillBody, MarkBody, OrderBody, StartSessionBody, TerminateBody
from starter.dev.devserver import free_port, temporal_executable
from starter.runtime.settings import Settings
from starter.services.orders import OrderService
from starter.services.sessions import SessionService
from store.db import create_engine, create_sessionmaker
from store.migrate import upgrade
from store.models import Algorithm
from tests.faults.conftest import (
    ONCE_PER_SESSION,
    Proc,
    duplicated_effects,
    eventually,
    scalar,
    session_status,
    stack_env,
    start_worker,
)
from tests.fixtures.services import trades_of

Sessionmaker = async_sessionmaker[AsyncSession]
# Short cadences, so a scenario takes seconds: a sweep every second, reconciling every 3 s
# the rows older than 2 s (younger ones may still be on their way to their workflow).
RECONCILE_SECONDS = 3.0
FAST = {
    "TRADING_CHECK_INTERVAL_SECONDS": "1",
    "TRADING_RECONCILE_INTERVAL_SECONDS": str(RECONCILE_SECONDS),
    "TRADING_RECONCILE_MIN_AGE_SECONDS": "2",
}


class Stack:
    """The scenario's database, the service the API calls (in-process) and the env of its
    worker process."""

    def __init__(self, url: str, sm: Sessionmaker, service: SessionService) -> None:
        self.url = url
        self.sm = sm
        self.service = service

    def env(self, dev_server: str, **extra: str) -> dict[str, str]:
        queue = self.service.settings.temporal_task_queue
        return stack_env(dev_server, self.url, queue, **FAST, **extra)


@pytest.fixture
async def stack(database_url: str, dev_server: str, dev_client: Client) -> AsyncIterator[Stack]:
    """A fresh database on the shared PostgreSQL server, migrated to head."""
    name = f"faults_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url, pool_size=1)
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url, pool_size=5)
    settings = Settings(
        temporal_address=dev_server,
        database_url=url,
        temporal_task_queue=f"faults-{uuid.uuid4()}",
    )
    sm = create_sessionmaker(engine)
    yield Stack(url, sm, SessionService(dev_client, sm, settings))
    await engine.dispose()


async def start_active(stack: Stack, **overrides: Any) -> str:
    session_id = f"truth-{uuid.uuid4().hex[:10]}"
    values: dict[str, Any] = {
        "session_id": session_id,
        "account_id": f"acc-{uuid.uuid4().hex[:8]}",
        "algorithm_id": "algo-1",
        "end_time": datetime.now(UTC) + timedelta(hours=1),
        "loss_limit": Decimal(1000),
        **overrides,
    }
    await stack.service.start_session(StartSessionBody(**values))
    await eventually(
        lambda: is_status(stack.service.sessionmaker, session_id, "ACTIVE"), 30, "ACTIVE"
    )
    return session_id


async def is_status(sm: Sessionmaker, session_id: str, *wanted: str) -> bool:
    return await session_status(sm, session_id) in wanted


async def audit_counts(sm: Sessionmaker, session_id: str) -> dict[str, int]:
    async with sm() as db:
        rows = await db.execute(
            text("SELECT action, count(*) FROM audit_events WHERE session_id = :s GROUP BY 1"),
            {"s": session_id},
        )
        return {action: int(count) for action, count in rows.all()}


async def alert_kinds(sm: Sessionmaker, session_id: str) -> list[str]:
    async with sm() as db:
        rows = await db.execute(
            text("SELECT kind FROM alerts WHERE session_id = :s ORDER BY id"), {"s": session_id}
        )
        return list(rows.scalars())


async def open_positions(sm: Sessionmaker, session_id: str) -> int:
    return int(
        await scalar(
            sm,
            "SELECT count(*) FROM positions WHERE session_id = :s AND quantity <> 0",
            s=session_id,
        )
    )


async def test_hard_terminated_session_is_wound_down_by_the_reconciler_within_an_interval(
    stack: Stack, dev_server: str, procs: list[Proc], tmp_path: Path, figures: dict[str, Any]
) -> None:
    figures["sessions"] = 1
    sm = stack.service.sessionmaker
    procs.append(start_worker(stack.env(dev_server), tmp_path / "worker.log"))
    session_id = await start_active(stack)
    await OrderService(sm).place_order(
        session_id, OrderBody(order_id="o-1", symbol="ACME", side="BUY", quantity=Decimal(5))
    )
    trades = trades_of(stack.service)
    fill = FillBody(
        fill_id="f-1", symbol="ACME", side="BUY", quantity=Decimal(10), price=Decimal(100)
    )
    await trades.record_fill(session_id, fill)
    await trades.record_mark(session_id, MarkBody(symbol="ACME", price=Decimal(104)))

    terminate = await asyncio.create_subprocess_exec(
        temporal_executable(),
        "workflow",
        "terminate",
        "--workflow-id",
        workflow_id_for(session_id),
        "--address",
        dev_server,
        "--reason",
        "fault drill: hard terminate",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await terminate.communicate()
    assert terminate.returncode == 0, stderr
    terminated_at = time.monotonic()
    await eventually(
        lambda: is_status(sm, session_id, "TERMINATED"),
        RECONCILE_SECONDS + 10,
        "the reconciler to wind the session down",
    )
    figures["wound_down_after_seconds"] = round(time.monotonic() - terminated_at, 1)

    row = await scalar(
        sm,
        "SELECT end_reason || ' ' || gate_open::text FROM trading_sessions WHERE id = :s",
        s=session_id,
    )
    orders = await scalar(
        sm, "SELECT string_agg(status, ',') FROM orders WHERE session_id = :s", s=session_id
    )
    actions = await audit_counts(sm, session_id)
    figures["sessions_lost"] = 0
    figures["duplicated_effects"] = await duplicated_effects(sm, [session_id])
    figures["unhandled_errors"] = sum(len(p.error_lines()) for p in procs)
    assert row == "ORPHANED false"
    assert orders == "CANCELLED"
    assert await open_positions(sm, session_id) == 0
    assert await alert_kinds(sm, session_id) == ["reconcile_orphaned"]
    for action in (*ONCE_PER_SESSION, "session.reconciled.orphaned"):
        assert actions.get(action) == 1, (action, actions)
    assert figures["duplicated_effects"] == 0
    assert figures["unhandled_errors"] == 0, [p.error_lines() for p in procs]


async def test_dead_halt_webhook_does_not_delay_the_flatten_and_alerts_once(
    stack: Stack, dev_server: str, procs: list[Proc], tmp_path: Path, figures: dict[str, Any]
) -> None:
    figures["sessions"] = 1
    sm = stack.service.sessionmaker
    dead = f"http://127.0.0.1:{free_port()}/halt"  # nothing listens there
    async with sm.begin() as db:
        db.add(Algorithm(id="algo-dead", halt_webhook_url=dead, halt_webhook_secret="s"))
    env = stack.env(
        dev_server,
        TRADING_HALT_WEBHOOK_ATTEMPTS="3",
        TRADING_HALT_WEBHOOK_FIRST_RETRY_SECONDS="0.5",
    )
    procs.append(start_worker(env, tmp_path / "worker.log"))
    session_id = await start_active(stack, algorithm_id="algo-dead", loss_limit=Decimal(100))
    trades = trades_of(stack.service)
    fill = FillBody(
        fill_id="f-1", symbol="ACME", side="BUY", quantity=Decimal(10), price=Decimal(100)
    )
    await trades.record_fill(session_id, fill)

    breached_at = time.monotonic()
    await trades.record_mark(session_id, MarkBody(symbol="ACME", price=Decimal(80)))  # loss 200
    await eventually(lambda: _flat_after_breach(sm, session_id), 5, "the breach to flatten")
    figures["flattened_after_seconds"] = round(time.monotonic() - breached_at, 1)
    await eventually(
        lambda: alert_kinds(sm, session_id), 30, "the halt webhook to give up and alert"
    )
    await eventually(lambda: is_status(sm, session_id, "LOSS_LIMIT"), 30, "LOSS_LIMIT")
    await asyncio.sleep(RECONCILE_SECONDS)  # nothing more comes of it

    actions = await audit_counts(sm, session_id)
    figures["sessions_lost"] = 0
    figures["duplicated_effects"] = await duplicated_effects(sm, [session_id])
    expected = ("was not delivered",)  # the one ERROR line: the webhook gave up
    figures["unhandled_errors"] = sum(len(p.error_lines(expected)) for p in procs)
    assert await alert_kinds(sm, session_id) == ["halt_webhook_failed"]
    assert actions.get("algorithm.halt_webhook_failed") == 1
    for action in ONCE_PER_SESSION:
        assert actions.get(action) == 1, (action, actions)
    assert figures["duplicated_effects"] == 0
    assert figures["unhandled_errors"] == 0, [p.error_lines(expected) for p in procs]


async def _flat_after_breach(sm: Sessionmaker, session_id: str) -> bool:
    flattened = await scalar(
        sm,
        "SELECT count(*) FROM fills WHERE session_id = :s AND fill_id = 'flatten:ACME'",
        s=session_id,
    )
    return bool(flattened) and await open_positions(sm, session_id) == 0


async def test_late_fill_after_the_end_is_recorded_and_flattened_again_once(
    stack: Stack, dev_server: str, procs: list[Proc], tmp_path: Path, figures: dict[str, Any]
) -> None:
    figures["sessions"] = 1
    sm = stack.service.sessionmaker
    procs.append(start_worker(stack.env(dev_server), tmp_path / "worker.log"))
    session_id = await start_active(stack)
    await OrderService(sm).place_order(
        session_id, OrderBody(order_id="o-1", symbol="ACME", side="BUY", quantity=Decimal(10))
    )
    trades = trades_of(stack.service)
    first = datetime.now(UTC)
    half = {"symbol": "ACME", "side": "BUY", "quantity": Decimal(5), "order_id": "o-1"}
    await trades.record_fill(
        session_id, FillBody(fill_id="f-1", price=Decimal(100), executed_at=first, **half)
    )
    await trades.record_mark(session_id, MarkBody(symbol="ACME", price=Decimal(110)))
    await stack.service.terminate(session_id, TerminateBody(reason="desk closes"))
    await eventually(lambda: is_status(sm, session_id, "TERMINATED"), 30, "TERMINATED")

    # The broker's report of the other half of o-1, executed before the halt, comes late.
    late = FillBody(
        fill_id="f-2", price=Decimal(101), executed_at=first + timedelta(milliseconds=1), **half
    )
    recorded, created = await trades.record_fill(session_id, late)
    await eventually(
        lambda: scalar(
            sm,
            "SELECT count(*) FROM notifications WHERE session_id = :s "
            "AND kind = 'session.late_fill'",
            s=session_id,
        ),
        RECONCILE_SECONDS + 10,
        "the late fill to be flattened again and announced",
    )
    await asyncio.sleep(2 * RECONCILE_SECONDS)  # two more reconciliations: nothing repeats

    reflattened = await scalar(
        sm,
        "SELECT count(*) FROM fills WHERE session_id = :s AND fill_id LIKE 'reflatten:%'",
        s=session_id,
    )
    realized = await scalar(
        sm, "SELECT realized_pnl FROM trading_sessions WHERE id = :s", s=session_id
    )
    portfolio = await scalar(
        sm,
        "SELECT p.realized_pnl FROM portfolios p JOIN trading_sessions s "
        "ON s.account_id = p.account_id WHERE s.id = :s",
        s=session_id,
    )
    final = await scalar(
        sm,
        "SELECT realized_pnl FROM performance_snapshots WHERE session_id = :s AND kind = 'final'",
        s=session_id,
    )
    actions = await audit_counts(sm, session_id)
    figures["sessions_lost"] = 0
    figures["late_fills"] = 1
    figures["reflattened"] = int(reflattened)
    figures["duplicated_effects"] = await duplicated_effects(sm, [session_id]) + max(
        0, int(reflattened) - 1
    )
    figures["unhandled_errors"] = sum(len(p.error_lines()) for p in procs)
    assert (created, recorded.late) == (True, True)
    assert reflattened == 1
    assert await open_positions(sm, session_id) == 0
    # Bought 10 at an average of 100.5, sold 10 at 110, fees 0.275 twice: 94.45.
    assert realized == portfolio == final == Decimal("94.45")
    for action in (*ONCE_PER_SESSION, "fill.late", "positions.reflattened", "portfolio.resettled"):
        assert actions.get(action) == 1, (action, actions)
    assert figures["duplicated_effects"] == 0
    assert figures["unhandled_errors"] == 0, [p.error_lines() for p in procs]
