"""The kill-switch scenario (issue 16): with the run's sessions trading, press ``POST
/kill-switch`` once and watch every gate close and every session end.

The press is timed on the client clock: ``sent_at`` just before the request, ``answered_at``
when its answer arrived. From just before it is sent, the run's sessions are polled every
``GATE_POLL`` s until none that has not reached a terminal status has its gate open (the
switch closes them all in the call's own transaction), then every ``END_POLL`` s until
every one of them is terminal, for at most ``wait`` s. A poll's verdict is bracketed: the
last poll that still saw an open gate began at ``last_open_seen_at``, the first that saw
none finished at ``gates_closed_seen_at``; the commit lies between. The audit trail and the
switch's own records (``kill_switch_sessions.signalled_at``) are read afterwards
(``bench.measure.record_kill``).
"""

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.sinks import HttpSink, SinkError
from domain.status import TERMINAL_STATUSES
from store.models import TradingSession

log = logging.getLogger("bench")
GATE_POLL = 0.02  # s between two looks at the gates, until all are closed
END_POLL = 0.1  # s between two looks at the statuses, until all are terminal
MAX_SAMPLES = 400  # (poll began, not terminal, gates open) kept in the JSON
REASON = "benchmark: kill switch scenario"


@dataclass
class KillRecord:
    """When the switch was pressed, what the call answered, and what the polls saw."""

    scope: str
    due_at: float
    wait_seconds: float
    sent_at: float | None = None
    answered_at: float | None = None
    status_code: int | None = None
    answer: dict[str, Any] | None = None
    error: str | None = None
    # The run's sessions not yet terminal just before the call (the switch's targets: all of
    # the run's sessions are in its scope), and how many of them had their gate open.
    open_at_call: int | None = None
    gates_open_at_call: int | None = None
    last_open_seen_at: float | None = None
    gates_closed_seen_at: float | None = None
    all_ended_seen_at: float | None = None
    # Sessions still not terminal when the polling stopped (0 when all ended in time).
    not_ended_at_stop: int | None = None
    gate_polls: int = 0
    end_polls: int = 0
    # GET /kill-switch/{id} once the polling stopped: the switch's own progress.
    progress: dict[str, Any] | None = None
    samples: list[tuple[float, int, int]] = field(default_factory=list)

    @property
    def kill_switch_id(self) -> int | None:
        value = (self.answer or {}).get("id")
        return int(value) if value is not None else None


async def _counts(sessionmaker: async_sessionmaker[AsyncSession], prefix: str) -> tuple[int, int]:
    """(sessions of the run not terminal, of which with their gate open)."""
    not_terminal = TradingSession.status.not_in([s.value for s in TERMINAL_STATUSES])
    stmt = (
        select(
            func.count(),
            func.count().filter(TradingSession.gate_open.is_(True)),
        )
        .select_from(TradingSession)
        .where(TradingSession.id.startswith(prefix), not_terminal)
    )
    async with sessionmaker() as db:
        open_, gates = (await db.execute(stmt)).one()
    return int(open_), int(gates)


class KillSwitchPress:
    """Presses the kill switch once at ``at`` (epoch s) and times its effect."""

    def __init__(
        self,
        sink: HttpSink,
        sessionmaker: async_sessionmaker[AsyncSession],
        prefix: str,
        at: float,
        scope: str,
        wait: float,
    ) -> None:
        self.sink = sink
        self.sessionmaker = sessionmaker
        self.prefix = prefix
        self.record = KillRecord(scope=scope, due_at=at, wait_seconds=wait)

    def _scope(self) -> dict[str, Any]:
        if self.record.scope == "algorithm":
            return {"algorithm_id": "bench-algo"}  # every session of the bench's plan
        return {"all": True}

    async def run(self) -> KillRecord:
        record = self.record
        # The key and the connection are checked (and the connection opened) ahead of time.
        await self.sink.kill_switches()
        await asyncio.sleep(max(0.0, record.due_at - time.time()))
        record.open_at_call, record.gates_open_at_call = await _counts(
            self.sessionmaker, self.prefix
        )
        deadline = time.time() + record.wait_seconds
        gates = asyncio.create_task(self._poll_gates(deadline))
        record.sent_at = time.time()
        try:
            status, answer = await self.sink.kill_switch(self._scope(), REASON)
            record.answered_at = time.time()
            record.status_code, record.answer = status, answer
        except SinkError as err:
            record.answered_at = time.time()
            record.error = str(err)[:300]
            log.error("kill switch not pressed: %s", record.error)
        try:
            await gates
        finally:
            gates.cancel()
        if record.error is None:
            await self._poll_ends(deadline)
        kill_id = record.kill_switch_id
        if kill_id is not None:
            with contextlib.suppress(SinkError):
                record.progress = await self.sink.kill_switch_status(kill_id)
        return record

    async def _poll_gates(self, deadline: float) -> None:
        record = self.record
        while time.time() < deadline:
            began = time.time()
            open_, gates = await _counts(self.sessionmaker, self.prefix)
            done = time.time()
            record.gate_polls += 1
            if len(record.samples) < MAX_SAMPLES:
                record.samples.append((round(began, 3), open_, gates))
            # A snapshot taken before the call was sent says nothing about the call.
            if gates == 0 and record.sent_at is not None and began >= record.sent_at:
                record.gates_closed_seen_at = done
                return
            if gates:
                record.last_open_seen_at = began
            await asyncio.sleep(GATE_POLL)

    async def _poll_ends(self, deadline: float) -> None:
        record = self.record
        while True:
            began = time.time()
            open_, gates = await _counts(self.sessionmaker, self.prefix)
            done = time.time()
            record.end_polls += 1
            if (record.end_polls % 10 == 1 or open_ == 0) and len(record.samples) < MAX_SAMPLES:
                record.samples.append((round(began, 3), open_, gates))
            record.not_ended_at_stop = open_
            if open_ == 0:
                record.all_ended_seen_at = done
                return
            if done >= deadline:
                return
            await asyncio.sleep(END_POLL)
