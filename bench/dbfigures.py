"""Figures read from the sessions table, and the loss-check query timed on the bench data."""

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.status import EndReason, SessionStatus, is_terminal
from store.ledger import LedgerRepository
from store.models import AuditEvent, KillSwitchSession, TradingSession

# The audit events of a closed trading gate: the termination's first step writes the first;
# a breach found by the sweep or by a mark batch closes the gate in its own transaction and
# writes the second (actor ``risk``).
HALT_ACTIONS = ("algorithm.halted", "gate.closed")
ROUNDS = 5  # timed calls per sampled session


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    status: SessionStatus
    end_time: float
    ended_at: float | None
    updated_at: float | None
    end_reason: str | None


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


async def count_active(sessionmaker: async_sessionmaker[AsyncSession], prefix: str) -> int:
    async with sessionmaker() as db:
        stmt = (
            select(func.count())
            .select_from(TradingSession)
            .where(TradingSession.status == SessionStatus.ACTIVE)
            .where(TradingSession.id.startswith(prefix))
        )
        return int((await db.execute(stmt)).scalar_one())


async def session_rows(
    sessionmaker: async_sessionmaker[AsyncSession], prefix: str
) -> list[SessionRow]:
    stmt = select(
        TradingSession.id,
        TradingSession.status,
        TradingSession.end_time,
        TradingSession.ended_at,
        TradingSession.updated_at,
        TradingSession.end_reason,
    ).where(TradingSession.id.startswith(prefix))
    async with sessionmaker() as db:
        rows = (await db.execute(stmt)).all()
    return [
        SessionRow(
            session_id=row.id,
            status=SessionStatus(row.status),
            end_time=row.end_time.timestamp(),
            ended_at=_epoch(row.ended_at),
            updated_at=_epoch(row.updated_at),
            end_reason=row.end_reason,
        )
        for row in rows
    ]


async def wait_until_ended(
    sessionmaker: async_sessionmaker[AsyncSession],
    prefix: str,
    due_by: float,
    expected_halts: Sequence[str],
    grace: float,
) -> list[SessionRow]:
    """Wait (up to ``grace`` s) for every session due by ``due_by`` and every breach to end."""
    deadline = time.time() + grace
    halts = set(expected_halts)
    while True:
        rows = await session_rows(sessionmaker, prefix)
        waiting = [
            row
            for row in rows
            if not is_terminal(row.status) and (row.end_time <= due_by or row.session_id in halts)
        ]
        if not waiting or time.time() >= deadline:
            return rows
        await asyncio.sleep(0.5)


@dataclass
class EndFigures:
    """Expiry lateness and breach-to-halt in milliseconds; a session that had not ended
    when measured counts with the time waited so far (a lower bound) and as missing."""

    expiry_lateness_ms: list[float] = field(default_factory=list)
    expiries_missing: int = 0
    breach_to_halt_ms: list[float] = field(default_factory=list)
    breach_to_row_ms: list[float] = field(default_factory=list)
    breach_to_gate_closed_ms: list[float] = field(default_factory=list)
    expiry_to_gate_closed_ms: list[float] = field(default_factory=list)
    breaches_missing: int = 0
    end_statuses: Counter[str] = field(default_factory=Counter)


async def halt_times(
    sessionmaker: async_sessionmaker[AsyncSession], prefix: str
) -> dict[str, float]:
    """When each session's gate was first closed, from the audit trail (empty before issue 9)."""
    stmt = (
        select(AuditEvent.session_id, func.min(AuditEvent.occurred_at))
        .where(AuditEvent.action.in_(HALT_ACTIONS), AuditEvent.session_id.startswith(prefix))
        .group_by(AuditEvent.session_id)
    )
    async with sessionmaker() as db:
        return {sid: at.timestamp() for sid, at in (await db.execute(stmt)).all()}


def end_figures(
    rows: Sequence[SessionRow],
    due_by: float,
    breaches: dict[str, float],
    measured_at: float,
    halts: dict[str, float] | None = None,
) -> EndFigures:
    figures = EndFigures()
    for session_id, posted in breaches.items():
        if halts and session_id in halts:
            figures.breach_to_gate_closed_ms.append((halts[session_id] - posted) * 1000)
    for row in rows:
        figures.end_statuses[row.status.value] += 1
        if row.session_id in breaches:
            posted = breaches[row.session_id]
            if row.end_reason == EndReason.LOSS_LIMIT and row.ended_at is not None:
                figures.breach_to_halt_ms.append((row.ended_at - posted) * 1000)
                written = row.updated_at if row.updated_at is not None else row.ended_at
                figures.breach_to_row_ms.append((written - posted) * 1000)
            else:
                figures.breaches_missing += 1
                if not is_terminal(row.status):
                    figures.breach_to_halt_ms.append((measured_at - posted) * 1000)
            continue
        if halts and row.session_id in halts and row.end_time <= due_by:
            figures.expiry_to_gate_closed_ms.append((halts[row.session_id] - row.end_time) * 1000)
        if row.end_reason == EndReason.EXPIRED and row.ended_at is not None:
            figures.expiry_lateness_ms.append((row.ended_at - row.end_time) * 1000)
        elif row.end_time <= due_by and not is_terminal(row.status):
            figures.expiries_missing += 1
            figures.expiry_lateness_ms.append((measured_at - row.end_time) * 1000)
    return figures


@dataclass
class QueryTimings:
    client_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)


async def time_loss_check(
    engine: AsyncEngine, session_ids: Sequence[str], sample: int
) -> QueryTimings:
    """Time ``LedgerRepository.pnl`` — the check's own statements — for a sample of sessions.

    Client time is the wall time of the call (one statement, as the activity pays it);
    server time is planning + execution of the same statements with the same parameters,
    from ``EXPLAIN (ANALYZE)``.
    """
    chosen = random.Random(1).sample(list(session_ids), min(sample, len(session_ids)))
    timings = QueryTimings()
    captured: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        captured.append((statement, parameters))

    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    async with sessionmaker() as db:
        if chosen:
            await LedgerRepository(db).pnl(chosen[0])  # connect and warm the statement cache
        for _ in range(ROUNDS):
            for session_id in chosen:
                began = time.perf_counter()
                await LedgerRepository(db).pnl(session_id)
                timings.client_ms.append((time.perf_counter() - began) * 1000)
            await db.rollback()
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        try:
            for session_id in chosen:
                captured.clear()
                await LedgerRepository(db).pnl(session_id)
                timings.server_ms.append(await _explain(db, list(captured)))
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", capture)
    return timings


async def _explain(db: AsyncSession, statements: list[tuple[str, Any]]) -> float:
    connection = await db.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    total = 0.0
    for statement, parameters in statements:
        plan = await raw.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *parameters)
        top = (json.loads(plan) if isinstance(plan, str) else plan)[0]
        total += float(top["Planning Time"]) + float(top["Execution Time"])
    return total


@dataclass(frozen=True)
class KillTarget:
    """One session a kill switch targeted: its row and the switch's records of it."""

    session_id: str
    status: SessionStatus
    end_reason: str | None
    ended_at: float | None
    updated_at: float | None
    signalled_at: float | None
    gate_closed_at: float | None  # the switch's own gate.closed audit event


async def kill_targets(
    sessionmaker: async_sessionmaker[AsyncSession], kill_switch_id: int
) -> list[KillTarget]:
    """Every session of the switch (``kill_switch_sessions``) with its row and its audited
    closing (``gate.closed`` whose dedupe key is the switch's)."""
    gate = (
        select(AuditEvent.session_id, func.min(AuditEvent.occurred_at).label("at"))
        .where(
            AuditEvent.action == "gate.closed",
            AuditEvent.dedupe_key.startswith(f"kill-switch:{kill_switch_id}:gate:"),
        )
        .group_by(AuditEvent.session_id)
        .subquery()
    )
    stmt = (
        select(
            KillSwitchSession.session_id,
            TradingSession.status,
            TradingSession.end_reason,
            TradingSession.ended_at,
            TradingSession.updated_at,
            KillSwitchSession.signalled_at,
            gate.c.at,
        )
        .join(TradingSession, TradingSession.id == KillSwitchSession.session_id)
        .outerjoin(gate, gate.c.session_id == KillSwitchSession.session_id)
        .where(KillSwitchSession.kill_switch_id == kill_switch_id)
    )
    async with sessionmaker() as db:
        rows = (await db.execute(stmt)).all()
    return [
        KillTarget(
            session_id=row[0],
            status=SessionStatus(row[1]),
            end_reason=row[2],
            ended_at=_epoch(row[3]),
            updated_at=_epoch(row[4]),
            signalled_at=_epoch(row[5]),
            gate_closed_at=_epoch(row[6]),
        )
        for row in rows
    ]
