"""Scenario 7: many sessions through their whole life under a random fill and mark feed.

Some sessions breach a tight loss limit, some are ended by an operator, the rest expire; every
one of them must end once, flat, with a complete audit trail and one settlement.
"""

import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from starter.api.schemas import FillBody, MarkBody, StartSessionBody, TerminateBody
from starter.services.errors import ConflictError
from starter.services.sessions import SessionService
from tests.faults.conftest import (
    ONCE_PER_SESSION,
    TERMINAL,
    duplicated_effects,
    eventually,
    session_status,
)
from tests.fixtures.services import trades_of

SEED = 7
CENT = Decimal("0.01")
WARNINGS = ("warning.time", "warning.loss")
# How long past its deadline a session may take to end: the expiry plus the cleanup steps.
END_GRACE = 40.0


@dataclass(frozen=True)
class Load:
    """How many sessions, how long they live, and how fast their feed ticks."""

    sessions: int
    life: tuple[float, float]  # seconds, drawn uniformly
    stagger: float  # seconds over which the starts are spread
    tick: tuple[float, float]  # seconds between two feed events of one session


@dataclass
class Plan:
    session_id: str
    role: str  # breach | operator | expire
    life: float
    loss_limit: Decimal
    rng: random.Random
    price: Decimal = Decimal(100)
    position: int = 0
    fills: int = 0
    marks: int = 0
    refused: int = 0
    events: list[str] = field(default_factory=list)


def plans(load: Load, run: str) -> list[Plan]:
    """One in five breaches a tight limit, one in five is terminated, the rest expire."""
    rng = random.Random(SEED)
    roles = ("breach", "operator", "expire", "expire", "expire")
    return [
        Plan(
            session_id=f"soak-{run}-{index}",
            role=roles[index % len(roles)],
            life=rng.uniform(*load.life),
            loss_limit=Decimal(rng.randint(40, 120))
            if index % len(roles) == 0
            else Decimal(1_000_000),
            rng=random.Random(SEED * 1000 + index),
        )
        for index in range(load.sessions)
    ]


class ErrorLog(logging.Handler):
    """ERROR records of the in-process worker, and workflow tasks that failed (a bug)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR or "Failed activation" in message:
            self.lines.append(f"{record.name}: {message[:300]}")


@pytest.fixture
def error_log() -> Any:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.mark.parametrize(
    "load",
    [
        pytest.param(Load(30, life=(20, 40), stagger=5, tick=(0.4, 1.2)), id="30-sessions"),
        pytest.param(
            Load(200, life=(60, 120), stagger=30, tick=(1.5, 4.0)),
            id="200-sessions",
            marks=[pytest.mark.slow, pytest.mark.timeout(900)],
        ),
    ],
)
async def test_sessions_under_random_feed_each_end_once_flat_and_fully_audited(
    load: Load,
    service: SessionService,
    worker: Any,
    error_log: ErrorLog,
    sessionmaker: async_sessionmaker[AsyncSession],
    figures: dict[str, Any],
) -> None:
    run = uuid.uuid4().hex[:8]
    sessions = plans(load, run)
    ids = [plan.session_id for plan in sessions]
    figures["sessions"] = len(sessions)

    async def life_of(index: int, plan: Plan) -> None:
        await asyncio.sleep(load.stagger * index / len(sessions))
        await service.start_session(
            StartSessionBody(
                session_id=plan.session_id,
                account_id=f"acc-soak-{run}",
                algorithm_id=f"algo-{plan.role}",
                end_time=datetime.now(UTC) + timedelta(seconds=plan.life),
                loss_limit=plan.loss_limit,
            )
        )
        tasks = [_feed(service, plan, load)]
        if plan.role == "operator":
            tasks.append(_operator(service, plan))
        await asyncio.gather(*tasks)

    started = time.monotonic()
    await asyncio.gather(*(life_of(i, plan) for i, plan in enumerate(sessions)))
    for plan in sessions:
        await eventually(
            partial(_is_terminal, sessionmaker, plan.session_id), END_GRACE, "every session to end"
        )
    figures["seconds_to_last_end"] = round(time.monotonic() - started, 1)

    # After the end nothing more is taken: a late fill is refused, not booked.
    late_refused = 0
    for plan in sessions:
        with contextlib.suppress(ConflictError):
            await trades_of(service).record_fill(plan.session_id, _fill(plan, "late", "BUY", 1))
            continue
        late_refused += 1

    rows = await _per_session(sessionmaker, ids)
    problems = [p for plan in sessions for p in _problems(plan, rows[plan.session_id])]
    reasons: dict[str, int] = {}
    for row in rows.values():
        reasons[row["status"]] = reasons.get(row["status"], 0) + 1
    figures["sessions_lost"] = sum(1 for row in rows.values() if row["status"] not in TERMINAL)
    figures["duplicated_effects"] = await duplicated_effects(sessionmaker, ids) + sum(
        max(0, n - 1)
        for row in rows.values()
        for n in (
            *(row["actions"].get(w, 0) for w in WARNINGS),
            row["settlements"],
            row["ended_notifications"],
        )
    )
    figures["unhandled_errors"] = len(error_log.lines)
    figures["reasons"] = reasons
    figures["fills"] = sum(plan.fills for plan in sessions)
    figures["marks"] = sum(plan.marks for plan in sessions)
    figures["refused_after_end"] = sum(plan.refused for plan in sessions) + late_refused
    figures["problems"] = len(problems)

    assert figures["sessions_lost"] == 0, reasons
    assert late_refused == len(sessions)
    assert problems == [], problems[:20]
    assert figures["duplicated_effects"] == 0
    assert figures["unhandled_errors"] == 0, error_log.lines[:10]
    # The mix really happened: each way to end was taken by the sessions meant for it.
    assert reasons.get("LOSS_LIMIT", 0) >= 1, reasons
    assert reasons.get("TERMINATED", 0) >= 1, reasons
    assert reasons.get("EXPIRED", 0) >= 1, reasons


async def _feed(service: SessionService, plan: Plan, load: Load) -> None:
    """Fills and marks from a random walk until the session refuses them (it has ended).

    A session meant to breach only buys into a falling price, so its loss grows each tick.
    """
    give_up = time.monotonic() + plan.life + END_GRACE
    rng = plan.rng
    while time.monotonic() < give_up:
        await asyncio.sleep(rng.uniform(*load.tick))
        if plan.role == "breach":
            plan.price -= Decimal(rng.uniform(0.3, 1.0)).quantize(CENT)
        else:
            plan.price += Decimal(rng.gauss(0, 0.3)).quantize(CENT)
        plan.price = max(plan.price, Decimal(1))
        try:
            if rng.random() < 0.5:
                side = (
                    "BUY"
                    if plan.role == "breach" or plan.position <= 0
                    else rng.choice(("BUY", "SELL"))
                )
                quantity = rng.randint(1, 10)
                if side == "SELL":
                    quantity = min(quantity, plan.position)
                await trades_of(service).record_fill(
                    plan.session_id, _fill(plan, f"f{plan.fills}", side, quantity)
                )
                plan.fills += 1
                plan.position += quantity if side == "BUY" else -quantity
            else:
                await trades_of(service).record_mark(
                    plan.session_id, MarkBody(symbol="SOAK", price=plan.price)
                )
                plan.marks += 1
        except ConflictError:
            plan.refused += 1
            return


async def _operator(service: SessionService, plan: Plan) -> None:
    """An operator ends the session somewhere in the middle of its life."""
    await asyncio.sleep(plan.life * plan.rng.uniform(0.25, 0.6))
    with contextlib.suppress(ConflictError):
        await service.terminate(plan.session_id, TerminateBody(reason="soak", actor="operator"))


def _fill(plan: Plan, fill_id: str, side: str, quantity: int) -> FillBody:
    return FillBody(
        fill_id=fill_id, symbol="SOAK", side=side, quantity=Decimal(quantity), price=plan.price
    )


async def _is_terminal(sm: async_sessionmaker[AsyncSession], session_id: str) -> bool:
    return await session_status(sm, session_id) in TERMINAL


async def _per_session(
    sm: async_sessionmaker[AsyncSession], ids: list[str]
) -> dict[str, dict[str, Any]]:
    """Status, open positions, audit action counts, settlements and end notifications."""
    rows: dict[str, dict[str, Any]] = {}
    async with sm() as db:
        for session_id, status in (
            await db.execute(
                text("SELECT id, status FROM trading_sessions WHERE id = ANY(:ids)"), {"ids": ids}
            )
        ).all():
            rows[session_id] = {
                "status": status,
                "open_positions": 0,
                "actions": {},
                "settlements": 0,
                "ended_notifications": 0,
            }
        queries = {
            "open_positions": "SELECT session_id, count(*) FROM positions "
            "WHERE session_id = ANY(:ids) AND quantity <> 0 GROUP BY 1",
            "settlements": "SELECT session_id, count(*) FROM portfolio_settlements "
            "WHERE session_id = ANY(:ids) GROUP BY 1",
            "ended_notifications": "SELECT session_id, count(*) FROM notifications "
            "WHERE session_id = ANY(:ids) AND kind = 'session.ended' GROUP BY 1",
        }
        for name, sql in queries.items():
            for session_id, count in (await db.execute(text(sql), {"ids": ids})).all():
                rows[session_id][name] = count
        for session_id, action, count in (
            await db.execute(
                text(
                    "SELECT session_id, action, count(*) FROM audit_events "
                    "WHERE session_id = ANY(:ids) GROUP BY 1, 2"
                ),
                {"ids": ids},
            )
        ).all():
            rows[session_id]["actions"][action] = count
    missing = set(ids) - rows.keys()
    assert not missing, f"sessions without a row: {sorted(missing)[:5]}"
    return rows


def _problems(plan: Plan, row: dict[str, Any]) -> list[str]:
    """What is wrong with one session's end, each as a readable line."""
    where = f"{plan.session_id} ({plan.role}, {row['status']})"
    problems = []
    if row["status"] not in TERMINAL:
        problems.append(f"{where}: not terminal")
    if row["open_positions"]:
        problems.append(f"{where}: {row['open_positions']} positions not flat")
    for action in ONCE_PER_SESSION:
        if row["actions"].get(action, 0) != 1:
            problems.append(f"{where}: {action} x{row['actions'].get(action, 0)}")
    for action in WARNINGS:
        if row["actions"].get(action, 0) > 1:
            problems.append(f"{where}: {action} x{row['actions'][action]}")
    if row["settlements"] != 1:
        problems.append(f"{where}: {row['settlements']} settlements")
    if row["ended_notifications"] != 1:
        problems.append(f"{where}: {row['ended_notifications']} session.ended notifications")
    return problems
