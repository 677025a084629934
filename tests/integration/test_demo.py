"""The live demo's session driver against the real stack: it trades, marks and obeys the gate."""

import asyncio
import random

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from starter.dev.demo_driver import DriverStats, drive_session, plans, start_session
from store.models import Mark
from tests.integration.api_helpers import wait_for_status
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
