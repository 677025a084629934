"""Scenarios 5 and 6 through the service the API calls: duplicate and late fills, and a
manual termination racing a loss breach."""

import asyncio
import contextlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from starter.api.schemas import FillBody, StartSessionBody, TerminateBody
from starter.services.errors import ConflictError
from starter.services.sessions import SessionService
from tests.faults.conftest import TERMINAL, duplicated_effects, eventually, session_status
from tests.fixtures.services import trades_of

RACES = 10


def fill(fill_id: str, side: str, price: str, minute: int | None = None) -> FillBody:
    executed_at = None if minute is None else datetime.now(UTC) - timedelta(minutes=60 - minute)
    return FillBody(
        fill_id=fill_id,
        symbol="ACME",
        side=side,
        quantity=Decimal(10),
        price=Decimal(price),
        executed_at=executed_at,
    )


async def start(service: SessionService, loss_limit: str) -> str:
    session_id = f"race-{uuid.uuid4().hex[:10]}"
    await service.start_session(
        StartSessionBody(
            session_id=session_id,
            account_id="acc-race",
            algorithm_id="algo-1",
            end_time=datetime.now(UTC) + timedelta(hours=1),
            loss_limit=Decimal(loss_limit),
        )
    )
    return session_id


async def test_duplicate_late_and_after_end_fills_apply_once_or_are_refused(
    service: SessionService,
    worker: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    figures: dict[str, Any],
) -> None:
    figures["sessions"] = 1
    session_id = await start(service, "1000")
    await eventually(lambda: _is(sessionmaker, session_id, {"ACTIVE"}), 30, "ACTIVE")
    # Executed in the order a, b, c; they arrive c, a, c again, b, a again.
    # a BUY 10 @ 100, b BUY 10 @ 110 -> 20 @ 105; c SELL 10 @ 120 -> realized +150.
    arrivals = [("c", "SELL", "120", 3), ("a", "BUY", "100", 1), ("c", "SELL", "120", 3)]
    arrivals += [("b", "BUY", "110", 2), ("a", "BUY", "100", 1)]
    created = [
        (await trades_of(service).record_fill(session_id, fill(f, side, price, minute)))[1]
        for f, side, price, minute in arrivals
    ]
    assert created == [True, True, False, True, False]
    with pytest.raises(ConflictError):  # same id, other values
        await trades_of(service).record_fill(session_id, fill("a", "BUY", "101", 1))
    assert (await service.get_session(session_id)).realized_pnl == Decimal(150)

    await service.terminate(session_id, TerminateBody(reason="done", actor="op"))
    await eventually(lambda: _is(sessionmaker, session_id, TERMINAL), 45, "the end")
    with pytest.raises(ConflictError):
        await trades_of(service).record_fill(session_id, fill("late", "SELL", "130"))
    # A redelivered fill after the end is still recognised, not refused or applied again.
    _, again = await trades_of(service).record_fill(session_id, fill("b", "BUY", "110", 2))
    assert not again
    ledger = await _ledger(sessionmaker, session_id)
    figures["duplicated_effects"] = await duplicated_effects(sessionmaker, [session_id])
    assert ledger["fills"] == 4  # a, b, c and the closing fill
    assert ledger["realized"] == ledger["sum_of_fills"]
    assert ledger["open_positions"] == 0
    assert figures["duplicated_effects"] == 0


async def test_termination_racing_a_loss_breach_ends_each_session_once(
    service: SessionService,
    worker: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    figures: dict[str, Any],
) -> None:
    figures["sessions"] = RACES
    ids = [await start(service, "100") for _ in range(RACES)]
    for session_id in ids:
        await eventually(partial(_is, sessionmaker, session_id, {"ACTIVE"}), 30, "ACTIVE")
        await trades_of(service).record_fill(session_id, fill("open", "BUY", "100"))

    async def race(session_id: str) -> None:
        # SELL 10 @ 85 realizes -150: past the 100 limit, at the same moment as the operator.
        async def breach() -> None:
            with contextlib.suppress(ConflictError):
                await trades_of(service).record_fill(session_id, fill("breach", "SELL", "85"))

        async def terminate() -> None:
            # Jitter spreads the winners: sometimes the breach's check ends it first.
            await asyncio.sleep(random.uniform(0, 0.3))
            with contextlib.suppress(ConflictError):
                await service.terminate(session_id, TerminateBody(reason="op", actor="op"))

        await asyncio.gather(breach(), terminate())

    await asyncio.gather(*(race(s) for s in ids))
    for session_id in ids:
        await eventually(partial(_is, sessionmaker, session_id, TERMINAL), 60, "the end")

    reasons: dict[str, int] = {}
    async with sessionmaker() as db:
        rows = (
            await db.execute(
                text(
                    "SELECT s.id, s.status, s.end_reason, "
                    "(SELECT count(*) FROM audit_events a WHERE a.session_id = s.id "
                    " AND a.action = 'session.ended') AS ended_events "
                    "FROM trading_sessions s WHERE s.id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        ).all()
    for session_id, status, end_reason, ended_events in rows:
        reasons[status] = reasons.get(status, 0) + 1
        assert status == end_reason, session_id
        assert ended_events == 1, session_id
        ledger = await _ledger(sessionmaker, session_id)
        assert ledger["open_positions"] == 0, session_id
        assert ledger["realized"] == ledger["sum_of_fills"], session_id
    figures["duplicated_effects"] = await duplicated_effects(sessionmaker, ids)
    figures["reasons"] = reasons
    assert figures["duplicated_effects"] == 0
    assert len(rows) == RACES


async def _is(sm: async_sessionmaker[AsyncSession], session_id: str, wanted: set[str]) -> bool:
    return await session_status(sm, session_id) in wanted


async def _ledger(sm: async_sessionmaker[AsyncSession], session_id: str) -> dict[str, Any]:
    async with sm() as db:
        row = (
            await db.execute(
                text(
                    "SELECT s.realized_pnl, "
                    "(SELECT coalesce(sum(realized_pnl), 0) FROM fills f "
                    " WHERE f.session_id = s.id),"
                    "(SELECT count(*) FROM fills f WHERE f.session_id = s.id),"
                    "(SELECT count(*) FROM positions p WHERE p.session_id = s.id "
                    " AND p.quantity <> 0) FROM trading_sessions s WHERE s.id = :s"
                ),
                {"s": session_id},
            )
        ).one()
    return dict(zip(("realized", "sum_of_fills", "fills", "open_positions"), row, strict=True))
