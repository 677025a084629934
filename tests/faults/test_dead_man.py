"""Scenario: every worker stops; the broker's dead-man's switch cancels the open orders.

A real worker process re-arms the paper broker's switch from the fleet sweep; a real API
process runs the venue's timer. While the worker lives, the orders outlive the timeout many
times over; once it is killed, nobody re-arms the switch and the venue cancels the account's
open orders by itself after the timeout. Nothing else changes: the session stays ACTIVE with
its gate, positions, fills and PnL as they were.
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from starter.dev.devserver import free_port
from tests.faults.conftest import Proc, eventually, scalar, stack_env, start_api, start_worker

TIMEOUT = 3.0  # TRADING_BROKER_CANCEL_AFTER_SECONDS; the sweep re-arms every second


async def world(sm: async_sessionmaker[AsyncSession], session_id: str) -> dict[str, Any]:
    """Everything but the orders that the broker's timer must leave alone."""
    facts: dict[str, Any] = {}
    for name, sql in {
        "session": "SELECT status || ' gate=' || gate_open || ' pnl=' || realized_pnl "
        "FROM trading_sessions WHERE id = :s",
        "positions": "SELECT string_agg(symbol || ':' || quantity, ',') FROM positions "
        "WHERE session_id = :s",
        "fills": "SELECT count(*) FROM fills WHERE session_id = :s",
        "audit": "SELECT string_agg(action, ',' ORDER BY id) FROM audit_events "
        "WHERE session_id = :s AND action <> 'orders.cancelled_by_broker'",
    }.items():
        facts[name] = await scalar(sm, sql, s=session_id)
    return facts


async def open_orders(sm: async_sessionmaker[AsyncSession], session_id: str) -> int:
    found: int = await scalar(
        sm, "SELECT count(*) FROM orders WHERE session_id = :s AND status = 'OPEN'", s=session_id
    )
    return found


async def test_broker_cancels_the_open_orders_by_itself_when_no_worker_rearms_its_switch(
    sessionmaker: async_sessionmaker[AsyncSession],
    dev_server: str,
    database_url: str,
    task_queue: str,
    procs: list[Proc],
    tmp_path: Path,
    figures: dict[str, Any],
) -> None:
    figures["sessions"] = 1
    env = stack_env(
        dev_server,
        database_url,
        task_queue,
        TRADING_CHECK_INTERVAL_SECONDS="1",
        TRADING_BROKER_CANCEL_AFTER_SECONDS=str(TIMEOUT),
        TRADING_PAPER_VENUE_TICK_SECONDS="0.2",
    )
    worker = start_worker(env, tmp_path / "worker.log")
    procs.append(worker)
    port = free_port()
    api_proc = start_api(env, port, tmp_path / "api.log")
    procs.append(api_proc)
    session_id, account = f"dms-{uuid.uuid4().hex[:10]}", f"acc-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:

        async def api_up() -> bool:
            try:
                return (await api.get("/health/live")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(api_up, 30, "the API to answer")
        body = {
            "session_id": session_id,
            "account_id": account,
            "algorithm_id": "algo-1",
            "end_time": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "loss_limit": "1000",
        }
        assert (await api.post("/sessions", json=body)).status_code == 201

        async def active() -> bool:
            return bool((await api.get(f"/sessions/{session_id}")).json()["status"] == "ACTIVE")

        await eventually(active, 30, "the session to become ACTIVE")
        fill = {"fill_id": "f1", "symbol": "ACME", "side": "BUY", "quantity": "10", "price": "100"}
        assert (await api.post(f"/sessions/{session_id}/fills", json=fill)).status_code == 201
        for n in (1, 2):
            order = {"order_id": f"o{n}", "symbol": "ACME", "side": "SELL", "quantity": "5"}
            answer = await api.post(f"/sessions/{session_id}/orders", json=order)
            assert answer.status_code == 201, answer.text

        async def armed() -> Any:
            return await scalar(
                sessionmaker,
                "SELECT deadline FROM broker_cancel_after WHERE account_id = :a",
                a=account,
            )

        await eventually(armed, 30, "the sweep to arm the account's switch")
        # The worker re-arms it every sweep: the orders outlive the timeout twice over.
        await asyncio.sleep(2 * TIMEOUT)
        alive_open = await open_orders(sessionmaker, session_id)
        before = await world(sessionmaker, session_id)

        worker.kill9()  # every worker of the deployment stops
        stopped = time.monotonic()
        last_deadline = await armed()

        async def all_cancelled() -> bool:
            return await open_orders(sessionmaker, session_id) == 0

        await eventually(all_cancelled, TIMEOUT + 15, "the broker to cancel the open orders")
        cancelled_after = time.monotonic() - stopped
        after = await world(sessionmaker, session_id)

    cancelled_at = await scalar(
        sessionmaker,
        "SELECT min(updated_at) FROM orders WHERE session_id = :s AND cancelled_by = 'dead_man'",
        s=session_id,
    )
    by_dead_man = await scalar(
        sessionmaker,
        "SELECT count(*) FROM orders WHERE session_id = :s AND cancelled_by = 'dead_man'",
        s=session_id,
    )
    audit = await scalar(
        sessionmaker,
        "SELECT details->>'orders' FROM audit_events WHERE session_id = :s "
        "AND action = 'orders.cancelled_by_broker'",
        s=session_id,
    )
    figures["cancelled_after_s"] = round(cancelled_after, 1)
    figures["unhandled_errors"] = len(api_proc.error_lines())

    assert alive_open == 2
    assert by_dead_man == 2
    assert audit == "2"
    assert cancelled_at >= last_deadline  # not before the timeout
    assert cancelled_after < TIMEOUT + 3  # the sweep's last arm, the timeout, a venue tick
    assert after == before  # nothing else changed
    assert str(after["session"]).startswith("ACTIVE gate=true")  # its workflow, unserved, waits
    assert figures["unhandled_errors"] == 0, api_proc.error_lines()
