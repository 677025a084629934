"""The naive design the issue compares against: one process scans every open session.

Every ``--interval`` seconds it selects the open sessions from the database, computes each
one's loss with the check's own query (``LedgerRepository.pnl``), and ends the breached and
expired ones by writing their rows. No Temporal, no signals: a fill waits for the next scan.
It appends one JSON line per scan to ``--out``; the benchmark reads them back.

    python -m bench.baseline --database-url URL --interval 30 --out scans.jsonl
"""

import argparse
import asyncio
import json
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.limits import Verdict, judge, session_loss
from domain.status import EndReason, SessionStatus
from store.db import create_engine, create_sessionmaker
from store.ledger import LedgerRepository
from store.models import TradingSession
from store.sessions import SessionRepository

_OPEN = (SessionStatus.PENDING, SessionStatus.ACTIVE)


async def _end(
    sessionmaker: async_sessionmaker[AsyncSession], session_id: str, reason: EndReason
) -> None:
    now = datetime.now(UTC)
    async with sessionmaker.begin() as db:
        sessions = SessionRepository(db)
        await sessions.transition(session_id, SessionStatus.ENDING)
        await sessions.transition(
            session_id,
            reason.final_status,
            end_reason=reason,
            end_detail=f"baseline poller: {reason.value}",
            ended_at=now,
        )


async def scan(
    sessionmaker: async_sessionmaker[AsyncSession], due: float, stop: asyncio.Event
) -> dict[str, Any]:
    """One pass over every open session, one after the other, as a naive poller does."""
    began = time.time()
    columns = (
        TradingSession.id,
        TradingSession.status,
        TradingSession.start_time,
        TradingSession.end_time,
        TradingSession.loss_limit,
    )
    async with sessionmaker() as db:
        rows = (await db.execute(select(*columns).where(TradingSession.status.in_(_OPEN)))).all()
    lateness_ms: list[float] = []
    ended: Counter[str] = Counter()
    for row in rows:
        if stop.is_set():
            break
        if row.status == SessionStatus.PENDING:
            if row.start_time > datetime.now(UTC):
                continue
            async with sessionmaker.begin() as db:
                await SessionRepository(db).transition(row.id, SessionStatus.ACTIVE)
        checked = time.time()
        async with sessionmaker() as db:
            figures = await LedgerRepository(db).pnl(row.id)
        lateness_ms.append(round((checked - due) * 1000, 2))
        loss = session_loss(figures.realized_pnl, figures.unrealized_pnl)
        verdict = judge(datetime.now(UTC), row.end_time, loss, row.loss_limit)
        if verdict is not Verdict.CONTINUE:
            await _end(sessionmaker, row.id, EndReason(verdict.value))
            ended[verdict.value] += 1
    return {
        "due": due,
        "began": began,
        "finished": time.time(),
        "open": len(rows),
        "checks": len(lateness_ms),
        "lateness_ms": lateness_ms,
        "ended": dict(ended),
    }


async def poll(database_url: str, interval: float, out: Path) -> None:
    """Scan on a fixed schedule (due, due + interval, ...) until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    engine = create_engine(database_url, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    due = time.time()
    with out.open("a") as scans:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, due - time.time()))
                break
            except TimeoutError:
                pass
            scans.write(json.dumps(await scan(sessionmaker, due, stop)) + "\n")
            scans.flush()
            due += interval
    await engine.dispose()


@dataclass
class ScanFigures:
    """What the poller's scans add up to over a window of the run."""

    scans: int = 0
    checks_in_window: Counter[str] = field(default_factory=Counter)
    lateness_ms: list[float] = field(default_factory=list)


def read_scans(path: Path, windows: dict[str, tuple[float, float]]) -> ScanFigures:
    figures = ScanFigures()
    if not path.exists():
        return figures
    for line in path.read_text().splitlines():
        record = json.loads(line)
        figures.scans += 1
        for lateness in record["lateness_ms"]:
            figures.lateness_ms.append(lateness)
            checked = record["due"] + lateness / 1000
            for name, (begin, end) in windows.items():
                figures.checks_in_window[name] += begin <= checked <= end
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(poll(args.database_url, args.interval, args.out))


if __name__ == "__main__":
    main()
