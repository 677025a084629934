"""Drive the planned sessions: start each one, then feed it marks and fills until it ends."""

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from bench.market import MarketFeed
from bench.plan import (
    BREACH_BUY_PRICE,
    BREACH_QUANTITY,
    BREACH_SELL_PRICE,
    BREACH_SYMBOL,
    WALK_SYMBOL,
    RandomWalk,
    SessionPlan,
)
from bench.sinks import FillEvent, Outcome, Sink, SinkError
from domain.positions import Side

log = logging.getLogger("bench")
OPENING_QUANTITY = Decimal(10)
FILL_SHARE = 0.2  # of feed events; the rest are marks


@dataclass
class FeedCounters:
    """What the driver did, read live by the progress bar."""

    starts_ok: int = 0
    starts_failed: int = 0
    started: list[str] = field(default_factory=list)
    first_start_sent: float | None = None
    last_start_done: float | None = None
    # When each accepted fill or mark was posted: the API checks each one as it records it.
    posts_ok_at: list[float] = field(default_factory=list)
    posts_ended: int = 0
    posts_failed: int = 0
    breaches_posted: dict[str, float] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def posts_ok(self) -> int:
        return len(self.posts_ok_at)

    def accepted(self, posted_at: float) -> None:
        self.posts_ok_at.append(posted_at)

    def posts_ok_between(self, begin: float, end: float) -> int:
        return sum(1 for at in self.posts_ok_at if begin <= at < end)

    @property
    def start_rate(self) -> float | None:
        """Sessions accepted per second over the start burst (first sent to last answered)."""
        if self.first_start_sent is None or self.last_start_done is None:
            return None
        elapsed = self.last_start_done - self.first_start_sent
        return self.starts_ok / elapsed if elapsed > 0 else None

    def failed(self, err: Exception) -> None:
        self.posts_failed += 1
        self.errors[str(err)[:120]] += 1


async def _sleep_until(epoch: float) -> None:
    await asyncio.sleep(max(0.0, epoch - time.time()))


class Workload:
    """One task per session; each stops at its own end, its breach, or the end of the run.

    With a market feed (``market``), sessions open a position in their symbol, trade it
    sparsely (a fill every ``fill_interval`` s on average) and get their marks from the
    feed's batches; otherwise each gets its own marks and fills every ``feed_interval`` s
    (0: none, only the planned breach).
    """

    def __init__(
        self,
        plans: list[SessionPlan],
        sink: Sink,
        feed_interval: float,
        seed: int,
        market: MarketFeed | None = None,
        fill_interval: float = 300.0,
        position: int = 200,
    ):
        self.plans = plans
        self.sink = sink
        self.feed_interval = feed_interval
        self.seed = seed
        self.market = market
        self.fill_interval = fill_interval
        self.position = Decimal(position)
        self.counters = FeedCounters()

    async def run(self, run_end: float) -> FeedCounters:
        await asyncio.gather(*(self._session(plan, run_end) for plan in self.plans))
        return self.counters

    async def _session(self, plan: SessionPlan, run_end: float) -> None:
        counters = self.counters
        sent = time.time()
        if counters.first_start_sent is None:
            counters.first_start_sent = sent
        try:
            await self.sink.start(plan)
        except SinkError as err:
            counters.starts_failed += 1
            counters.errors[f"start: {err}"[:120]] += 1
            return
        counters.starts_ok += 1
        counters.started.append(plan.session_id)
        counters.last_start_done = time.time()
        rng = random.Random(self.seed * 1_000_003 + plan.index)
        if self.market is not None:
            await self._trade(plan, run_end, rng, self.market)
        else:
            await self._feed(plan, run_end, rng)

    async def _trade(
        self, plan: SessionPlan, run_end: float, rng: random.Random, market: MarketFeed
    ) -> None:
        """Open a position in the session's symbol, then trade it now and then."""
        stop_at = min(plan.end_at - 1.0, run_end)
        await _sleep_until(plan.start_at + rng.uniform(0.2, 1.0))
        await market.started.wait()
        price = market.price(plan.symbol)
        opening = FillEvent("open", plan.symbol, Side.BUY, self.position, price)
        if not await self._post(plan.session_id, opening, price):
            return
        fills = 0
        next_at = time.time() + rng.expovariate(1 / self.fill_interval)
        while True:
            if plan.breach_at is not None and plan.breach_at <= min(next_at, stop_at):
                await self._breach(plan)
                return
            if next_at >= stop_at:
                return
            await _sleep_until(next_at)
            fills += 1
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            price = market.price(plan.symbol)
            fill = FillEvent(f"fill-{fills}", plan.symbol, side, Decimal(rng.randint(1, 5)), price)
            if not await self._post(plan.session_id, fill, price):
                return
            next_at = time.time() + rng.expovariate(1 / self.fill_interval)

    async def _feed(self, plan: SessionPlan, run_end: float, rng: random.Random) -> None:
        stop_at = min(plan.end_at - 1.0, run_end)
        walk = RandomWalk(rng)
        fills = 0
        next_at = plan.start_at + rng.uniform(0.5, max(1.0, self.feed_interval / 2))
        opening = FillEvent("open", WALK_SYMBOL, Side.BUY, OPENING_QUANTITY, walk.next())
        pending: FillEvent | None = opening
        if self.feed_interval <= 0:  # no feed: the opening position, then only the breach
            await _sleep_until(plan.start_at + rng.uniform(0.2, 1.0))
            if not await self._post(plan.session_id, opening, opening.price):
                return
            pending = None
            next_at = stop_at
        while True:
            if plan.breach_at is not None and plan.breach_at <= min(next_at, stop_at):
                await self._breach(plan)
                return
            if next_at >= stop_at:
                return
            await _sleep_until(next_at)
            price = walk.next()
            if pending is None and rng.random() < FILL_SHARE:
                fills += 1
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                quantity = Decimal(rng.randint(1, 5))
                pending = FillEvent(f"walk-{fills}", WALK_SYMBOL, side, quantity, price)
            if not await self._post(plan.session_id, pending, price):
                return
            pending = None
            next_at = time.time() + self.feed_interval * rng.uniform(0.5, 1.5)

    async def _post(self, session_id: str, fill: FillEvent | None, price: Decimal) -> bool:
        """Post one fill or mark; False once the session takes no more trades."""
        try:
            if fill is not None:
                outcome = await self.sink.fill(session_id, fill)
            else:
                outcome = await self.sink.mark(session_id, WALK_SYMBOL, price)
        except SinkError as err:
            self.counters.failed(err)
            return True
        if outcome is Outcome.ENDED:
            self.counters.posts_ended += 1
            return False
        self.counters.accepted(time.time())
        return True

    async def _breach(self, plan: SessionPlan) -> None:
        """Open a position in a symbol without marks, then close it at a loss past the limit."""
        assert plan.breach_at is not None
        await _sleep_until(plan.breach_at - 0.5)
        buy = FillEvent("breach-open", BREACH_SYMBOL, Side.BUY, BREACH_QUANTITY, BREACH_BUY_PRICE)
        if not await self._post(plan.session_id, buy, BREACH_BUY_PRICE):
            return
        await _sleep_until(plan.breach_at)
        sell = FillEvent(
            "breach-close", BREACH_SYMBOL, Side.SELL, BREACH_QUANTITY, BREACH_SELL_PRICE
        )
        posted = time.time()
        try:
            outcome = await self.sink.fill(plan.session_id, sell)
        except SinkError as err:
            self.counters.failed(err)
            return
        if outcome is Outcome.OK:
            self.counters.accepted(posted)
            self.counters.breaches_posted[plan.session_id] = posted
        else:
            self.counters.posts_ended += 1
