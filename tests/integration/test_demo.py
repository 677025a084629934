"""The live demo against the real stack: its driver trades, marks and obeys the gate; a run
passes unlucky sessions through REDUCING and kill-switches an account of its own."""

import asyncio
import random
import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from starter.dev.demo import KILL_REASON, demo
from starter.dev.demo_driver import DriverStats, drive_session, plans, start_session
from store.models import Mark
from tests.integration.api_helpers import session_body, wait_for_status
from tests.integration.polling import eventually


async def marks_stored(sessionmaker: async_sessionmaker[AsyncSession], session_id: str) -> int:
    async with sessionmaker() as db:
        stmt = select(func.count()).select_from(Mark).where(Mark.session_id == session_id)
        return (await db.execute(stmt)).scalar_one()


async def orders_booked(api: httpx.AsyncClient, session_id: str) -> int:
    return len((await api.get(f"/sessions/{session_id}/orders")).json())


async def test_demo_driver_trades_until_the_session_ends_and_never_orders_past_a_closed_gate(
    api: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [plan] = plans(1, minutes=1)
    await start_session(api, plan)
    await wait_for_status(api, plan.session_id, {"ACTIVE"})
    stats = DriverStats(plan=plan, price=plan.start_price)
    driver = asyncio.create_task(
        drive_session(api, plan, rng=random.Random(7), tick_seconds=0.1, stats=stats)
    )

    async def traded() -> bool | None:
        return True if stats.fills >= 3 else None

    await eventually(traded, timeout=15)
    await api.post(f"/sessions/{plan.session_id}/pause", json={"reason": "demo test"})

    async def gate_closed() -> bool | None:
        gate = (await api.get(f"/sessions/{plan.session_id}/gate")).json()
        return True if gate["open"] is False else None

    await eventually(gate_closed, timeout=10)
    booked_when_closed = await orders_booked(api, plan.session_id)
    closed_ticks_before = stats.gate_closed_ticks
    await asyncio.sleep(1.0)
    booked_after_a_second = await orders_booked(api, plan.session_id)
    await api.post(f"/sessions/{plan.session_id}/terminate", json={"reason": "end of demo test"})
    final = await asyncio.wait_for(driver, timeout=30)

    assert booked_after_a_second == booked_when_closed
    assert stats.gate_closed_ticks > closed_ticks_before
    assert final.status == "TERMINATED"
    assert final.fills >= 3
    assert await orders_booked(api, plan.session_id) == final.orders
    assert final.marks > 0
    assert await marks_stored(sessionmaker, plan.session_id) == final.marks
    performance = (await api.get(f"/sessions/{plan.session_id}/performance")).json()
    # the termination may add a closing fill of its own when it flattens the position
    assert performance["live"]["fills"] >= final.fills


async def test_a_demo_run_passes_unlucky_sessions_through_reducing_and_kills_an_account(
    api: httpx.AsyncClient,
) -> None:
    account = f"demo-kill-{uuid.uuid4().hex[:8]}"
    # 3 sessions: lucky, unlucky (REDUCING from 60 % of its limit), one on the kill account
    run = await demo(api, 3, 0.2, tick=0.1, seed=11, kill_after=3, kill_account=account)

    lucky, unlucky, killed = run.stats
    assert (lucky.plan.account_id, unlucky.plan.reducing_at) == ("demo", 0.6)
    assert unlucky.reducing_ticks > 0
    assert "REDUCING" in unlucky.states
    audit = (await api.get(f"/sessions/{unlucky.plan.session_id}/audit")).json()
    changes = [e["details"]["to"] for e in audit if e["action"] == "trading_state.changed"]
    assert "REDUCING" in changes
    assert (lucky.status, lucky.killed) == ("EXPIRED", False)

    assert (killed.plan.account_id, killed.killed) == (account, True)
    ended = (await api.get(f"/sessions/{killed.plan.session_id}")).json()
    assert (ended["status"], ended["end_reason"]) == ("TERMINATED", "TERMINATED")
    assert ended["end_detail"] == f"kill switch: {KILL_REASON}"
    assert run.drill is not None
    assert run.drill.rearmed
    switch = (await api.get(f"/kill-switch/{run.drill.switch_id}")).json()
    assert (switch["sessions_targeted"], switch["sessions_ended"]) == (1, 1)
    assert (switch["reason"], switch["engaged"]) == (KILL_REASON, False)
    # re-armed: the next run may start sessions on the account again
    again = await api.post("/sessions", json=session_body(account_id=account))
    assert again.status_code == 201, again.text
    await api.post(f"/sessions/{again.json()['id']}/terminate", json={"reason": "end of test"})
