"""The synthetic workload: who starts when, whose loss is driven through the limit, and when."""

import random
from dataclasses import dataclass
from decimal import Decimal

from bench.config import BenchConfig

# Far above anything the random walk can lose, so only the planned breach crosses it.
LOSS_LIMIT = Decimal(10000)
WALK_SYMBOL = "ACME"
# The breach trades a symbol that never gets a mark: its loss is realized and exact.
BREACH_SYMBOL = "BRK"
BREACH_QUANTITY = Decimal(200)
BREACH_BUY_PRICE = Decimal(100)
BREACH_SELL_PRICE = Decimal(40)  # realizes -12 000, 20 % past the limit
ACCOUNTS = 50


@dataclass(frozen=True)
class SessionPlan:
    """One session of the workload; times are Unix epoch seconds."""

    index: int
    session_id: str
    account_id: str
    start_at: float
    end_at: float
    breach_at: float | None
    # The symbol the session trades (market feed: one of ``config.symbols``).
    symbol: str = WALK_SYMBOL
    # Its symbol crashes in the flash-crash batch, taking it through its limit.
    crash: bool = False


def symbol_name(index: int) -> str:
    return f"S{index:03d}"


def crash_symbols(config: BenchConfig) -> list[str]:
    """The symbols the flash crash takes down: enough for ``flash_crash`` sessions."""
    if config.flash_crash <= 0 or not config.market:
        return []
    per_symbol = max(1, config.sessions // config.symbols)
    count = min(config.symbols, -(-config.flash_crash // per_symbol))
    return [symbol_name(i) for i in range(count)]


def make_plan(config: BenchConfig, origin: float, prefix: str) -> list[SessionPlan]:
    """Starts spread evenly over the stagger window; a random ``breach_fraction`` breaches.

    A breach falls between 20 % and 70 % of the part of the session that lies inside the
    run, so it happens while the session is active and the run still measures it. With
    ``expiring``, that share of the sessions has deadlines spread evenly over the steady
    part of the run (the rest outlive it). The flash crash's sessions neither breach nor
    expire on their own.
    """
    rng = random.Random(config.seed)
    count = config.sessions
    crashing = set(crash_symbols(config))

    def symbol(index: int) -> str:
        return symbol_name(index % config.symbols) if config.market else WALK_SYMBOL

    ordinary = [i for i in range(count) if symbol(i) not in crashing]
    breachers = set(rng.sample(ordinary, min(len(ordinary), round(count * config.breach_fraction))))
    expiring: set[int] = set()
    if config.expiring is not None:
        rest = [i for i in ordinary if i not in breachers]
        expiring = set(rng.sample(rest, min(len(rest), round(count * config.expiring))))
    run_end = origin + config.run_seconds
    # Spread deadlines: after every start and the first sweeps, before the run's end.
    spread_from = origin + config.stagger_seconds + 2 * config.check_interval
    spread_until = run_end - 10.0
    plans = []
    for index in range(count):
        start = origin + config.stagger_seconds * index / count
        end = start + config.session_seconds
        if index in expiring:
            end = max(start + 30.0, rng.uniform(spread_from, spread_until))
        elif config.expiring is not None:
            end = max(end, run_end + 600.0)
        observed = max(0.0, min(end, run_end) - start)
        breach_at = None
        if index in breachers and observed > 2.0:
            breach_at = start + observed * rng.uniform(0.2, 0.7)
        plans.append(
            SessionPlan(
                index=index,
                session_id=f"{prefix}-{index:05d}",
                account_id=f"bench-acc-{index % ACCOUNTS}",
                start_at=start,
                end_at=end,
                breach_at=breach_at,
                symbol=symbol(index),
                crash=symbol(index) in crashing,
            )
        )
    return plans


class RandomWalk:
    """A session's price path: Gaussian steps around 100, never below 1."""

    def __init__(self, rng: random.Random, start: float = 100.0, step: float = 0.5) -> None:
        self.rng = rng
        self.price = start
        self.step = step

    def next(self) -> Decimal:
        self.price = max(1.0, self.price + self.rng.gauss(0.0, self.step))
        return money(self.price)


def money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")
