"""The market feed of issue 13: a batch of marks for every symbol each period, one POST /marks.

Each symbol's price walks in small Gaussian steps (0.05 a second around 100: a long position
of a few hundred shares moves by a few hundred in a run, far from a 10 000 limit). The flash
crash is one batch in which the crash symbols fall far enough to take every session holding
them through its limit; they stay down afterwards.
"""

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

from bench.figures import Distribution
from bench.plan import LOSS_LIMIT, RandomWalk, money
from bench.sinks import BatchAnswer, Sink, SinkError

log = logging.getLogger("bench")
MARK_STEP = 0.05  # price step per batch
START_PRICE = 100.0


def crash_price(position: int) -> Decimal:
    """A price at which a long ``position`` bought near 100 loses 30 % more than the limit."""
    price = START_PRICE - 1.3 * float(LOSS_LIMIT) / position
    if price < 1.0:
        raise ValueError(f"a position of {position} cannot lose {LOSS_LIMIT} from 100")
    return money(price)


@dataclass
class CrashRecord:
    """The flash-crash batch: when it was sent and answered, and what the API said."""

    symbols: list[str]
    sent_at: float | None = None
    answered_at: float | None = None
    answer: BatchAnswer | None = None
    error: str | None = None


@dataclass
class BatchCounters:
    sent: int = 0
    failed: int = 0
    latency_ms: list[float] = field(default_factory=list)
    # Sessions checked by the API for the batches (each holder of a marked symbol, once).
    sessions_checked: int = 0
    checked_at: list[tuple[float, int]] = field(default_factory=list)
    sessions_halted: int = 0
    sessions_woken: int = 0
    late_starts: int = 0  # batches that began more than one period after they were due
    errors: dict[str, int] = field(default_factory=dict)

    def checked_between(self, begin: float, end: float) -> int:
        return sum(n for at, n in self.checked_at if begin <= at < end)

    def summary(self) -> dict[str, object]:
        return {
            "batches": self.sent,
            "failed": self.failed,
            "latency_ms": Distribution.of(self.latency_ms).__dict__,
            "sessions_checked": self.sessions_checked,
            "sessions_halted": self.sessions_halted,
            "sessions_woken": self.sessions_woken,
            "late_starts": self.late_starts,
        }


class MarketFeed:
    """Prices of ``symbols``; ``run`` posts them all every ``period`` seconds."""

    def __init__(
        self,
        symbols: list[str],
        sink: Sink,
        period: float,
        seed: int,
        crash: CrashRecord | None = None,
        crash_at: float | None = None,
        crash_to: Decimal | None = None,
    ) -> None:
        rng = random.Random(seed * 7919)
        self.walks = {s: RandomWalk(rng, START_PRICE, MARK_STEP) for s in symbols}
        self.prices = {s: walk.next() for s, walk in self.walks.items()}
        self.sink = sink
        self.period = period
        self.crash = crash
        self.crash_at = crash_at
        self.crash_to = crash_to
        self.counters = BatchCounters()
        # Fills are priced with the latest batch's prices: the feed starts before them.
        self.started = asyncio.Event()

    def price(self, symbol: str) -> Decimal:
        return self.prices[symbol]

    async def run(self, begin: float, run_end: float) -> None:
        due = begin
        while due < run_end:
            await asyncio.sleep(max(0.0, due - time.time()))
            if time.time() - due > self.period:
                self.counters.late_starts += 1
            crashing = self._crash_due(due)
            for symbol, walk in self.walks.items():
                self.prices[symbol] = walk.next()
            if crashing:
                assert self.crash is not None
                assert self.crash_to is not None
                for symbol in self.crash.symbols:
                    self.walks[symbol].price = float(self.crash_to)
                    self.prices[symbol] = self.crash_to
            await self._post(dict(self.prices), crashing)
            self.started.set()
            due += self.period

    def _crash_due(self, due: float) -> bool:
        return (
            self.crash is not None
            and self.crash_at is not None
            and self.crash.sent_at is None
            and due >= self.crash_at
        )

    async def _post(self, marks: dict[str, Decimal], crashing: bool) -> None:
        counters = self.counters
        sent = time.time()
        if crashing:
            assert self.crash is not None
            self.crash.sent_at = sent
        try:
            answer = await self.sink.market_marks(marks)
        except SinkError as err:
            counters.failed += 1
            key = str(err)[:120]
            counters.errors[key] = counters.errors.get(key, 0) + 1
            if crashing:
                assert self.crash is not None
                self.crash.error = key
            return
        answered = time.time()
        counters.sent += 1
        counters.latency_ms.append((answered - sent) * 1000)
        counters.sessions_checked += answer.sessions_affected
        counters.checked_at.append((sent, answer.sessions_affected))
        counters.sessions_halted += answer.sessions_halted
        counters.sessions_woken += answer.sessions_woken
        if crashing:
            assert self.crash is not None
            self.crash.answered_at = answered
            self.crash.answer = answer
