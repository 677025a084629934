"""One demo algorithm: a random-walk trader that uses only the HTTP API, as a real one would.

Before every order it asks the pre-trade check (``GET /sessions/{id}/gate``); it books the
order, reports its fill with a fee, and posts marks from its random walk, until the session
ends. An "unlucky" plan drifts the price against whatever it holds, so its losses reach the
warning and then the limit within minutes; it starts with ``reducing_at``, so on the way it
passes through REDUCING, where it only unwinds its position (the gate's ``trading_state``
says when) and counts the ``reducing_only`` refusals it meets. A plan may name its own
account, the one the demo kill-switches part-way through.
"""

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

TERMINAL = frozenset({"EXPIRED", "LOSS_LIMIT", "TERMINATED"})
CENT = Decimal("0.01")
FEE_RATE = Decimal("0.0005")  # 5 bp of the notional, what a cheap venue charges
MAX_POSITION = 30
TRADE_PROBABILITY = 0.6  # not every tick: a real algorithm waits for its signal
REFRESH_EVERY = 3  # ticks between reads of the session's own figures
GRACE = timedelta(seconds=60)  # how long past its deadline a driver waits for the session to end
DEMO_ACCOUNT = "demo"
REDUCING_AT = 0.6  # unlucky sessions only reduce from 60 % of their loss limit
MAX_UNWIND = 2  # a REDUCING order closes at most this much: the algorithm unwinds slowly


@dataclass(frozen=True)
class SessionPlan:
    """What one demo session trades and how hard the market is on it."""

    session_id: str
    minutes: float
    loss_limit: Decimal
    adverse_drift: Decimal = Decimal(0)
    volatility: float = 0.3
    symbol: str = "DEMO"
    start_price: Decimal = Decimal(100)
    account_id: str = DEMO_ACCOUNT
    reducing_at: float | None = None

    @property
    def unlucky(self) -> bool:
        return self.adverse_drift > 0


def plans(
    count: int,
    minutes: float,
    run_id: str | None = None,
    *,
    tick_seconds: float = 1.0,
    kill_account: str | None = None,
) -> list[SessionPlan]:
    """Every other session unlucky, with a tight limit (about one unit of loss per tick of
    the run, so ~1 minute of drift per 3 minutes) and REDUCING from 60 % of it. With a
    ``kill_account``, every third session trades on that account instead (a lucky one: only
    the kill switch ends it early)."""
    run_id = run_id or uuid.uuid4().hex[:6]
    tight = max(Decimal(20), Decimal(60 * minutes / tick_seconds)).quantize(CENT)
    result = []
    for index in range(count):
        killed = kill_account is not None and index % 3 == 2
        unlucky = index % 2 == 1 and not killed
        result.append(
            SessionPlan(
                session_id=f"demo-{run_id}-{index + 1}",
                minutes=minutes,
                loss_limit=tight if unlucky else Decimal(5000),
                adverse_drift=Decimal("0.25") if unlucky else Decimal(0),
                account_id=kill_account if killed and kill_account else DEMO_ACCOUNT,
                reducing_at=REDUCING_AT if unlucky else None,
            )
        )
    return result


@dataclass
class DriverStats:
    """What a driver did and last saw; the demo's display reads it while it runs."""

    plan: SessionPlan
    price: Decimal
    status: str = "PENDING"
    gate_open: bool = False
    position: Decimal = Decimal(0)
    orders: int = 0
    fills: int = 0
    marks: int = 0
    refused: int = 0  # orders the API refused: the gate closed between the check and the order
    reducing_refusals: int = 0  # of those, refused ``reducing_only`` (the state moved meanwhile)
    gate_closed_ticks: int = 0  # ticks on which the pre-trade check said no, so no order
    trading_state: str = "-"  # the gate's last answer: ACTIVE, REDUCING or HALTED
    reducing_ticks: int = 0  # ticks on which the gate said REDUCING
    states: list[str] = field(default_factory=list)  # the trading states seen, in turn
    realized_pnl: Decimal = Decimal(0)
    loss_used: float = 0.0
    time_used: float = 0.0
    warnings: list[str] = field(default_factory=list)
    end_reason: str | None = None
    end_detail: str | None = None
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    @property
    def killed(self) -> bool:
        """Ended by a kill switch (its reason is in the session's end detail)."""
        return self.end_reason == "TERMINATED" and (self.end_detail or "").startswith(
            "kill switch:"
        )

    def note_state(self, state: str) -> None:
        self.trading_state = state
        if state == "REDUCING":
            self.reducing_ticks += 1
        if self.status == "PENDING":
            return  # HALTED until it starts: not a state it traded in
        if not self.states or self.states[-1] != state:
            self.states.append(state)


async def start_session(api: httpx.AsyncClient, plan: SessionPlan) -> dict[str, Any]:
    """Start the plan's session through the API (a repeat is harmless: same id)."""
    end = datetime.now(UTC) + timedelta(minutes=plan.minutes)
    response = await api.post(
        "/sessions",
        json={
            "session_id": plan.session_id,
            "account_id": plan.account_id,
            "algorithm_id": "random-walk-unlucky" if plan.unlucky else "random-walk",
            "end_time": end.isoformat(),
            "loss_limit": str(plan.loss_limit),
            "reducing_at": plan.reducing_at,
        },
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def drive_session(
    api: httpx.AsyncClient,
    plan: SessionPlan,
    *,
    rng: random.Random | None = None,
    tick_seconds: float = 1.0,
    stats: DriverStats | None = None,
) -> DriverStats:
    """Trade the session until it ends (or its deadline plus a grace period passes)."""
    rng = rng or random.Random()
    stats = stats or DriverStats(plan=plan, price=plan.start_price)
    give_up = datetime.now(UTC) + timedelta(minutes=plan.minutes) + GRACE
    base = f"/sessions/{plan.session_id}"
    ticks = 0
    while datetime.now(UTC) < give_up:
        gate = (await api.get(f"{base}/gate")).json()
        stats.status, stats.gate_open = gate["status"], gate["open"]
        stats.note_state(gate.get("trading_state", "ACTIVE"))
        if stats.ended:
            break
        if not stats.gate_open:
            stats.gate_closed_ticks += 1
        elif rng.random() < TRADE_PROBABILITY:
            await _trade(api, base, stats, rng)
        _step_price(stats, rng)
        if (await api.post(f"{base}/marks", json=_mark(stats))).status_code == 201:
            stats.marks += 1
        ticks += 1
        if ticks % REFRESH_EVERY == 0:
            await _refresh(api, base, stats)
        await asyncio.sleep(tick_seconds)
    await _refresh(api, base, stats)
    return stats


async def _trade(api: httpx.AsyncClient, base: str, stats: DriverStats, rng: random.Random) -> None:
    if stats.trading_state == "REDUCING":
        if not stats.position:
            return  # flat: nothing may be reduced, so no order
        side = "SELL" if stats.position > 0 else "BUY"
        quantity = min(abs(stats.position), Decimal(rng.randint(1, MAX_UNWIND)))
    else:
        side = _side(stats.position, rng)
        quantity = Decimal(rng.randint(1, 10))
    number = stats.orders + stats.refused + 1
    order = {
        "order_id": f"{stats.plan.session_id}-o{number}",
        "symbol": stats.plan.symbol,
        "side": side,
        "quantity": str(quantity),
        "limit_price": str(stats.price),
    }
    placed = await api.post(f"{base}/orders", json=order)
    if placed.status_code == 409:
        stats.refused += 1
        if placed.json().get("error", {}).get("code") == "reducing_only":
            stats.reducing_refusals += 1
        return
    placed.raise_for_status()
    stats.orders += 1
    fee = max(CENT, (quantity * stats.price * FEE_RATE).quantize(CENT))
    fill = {
        "fill_id": f"{stats.plan.session_id}-f{number}",
        "symbol": stats.plan.symbol,
        "side": side,
        "quantity": str(quantity),
        "price": str(stats.price),
        "fee": str(fee),
    }
    filled = await api.post(f"{base}/fills", json=fill)
    if filled.status_code == 409:  # the session ended between the order and its fill
        return
    filled.raise_for_status()
    stats.fills += 1
    stats.position += quantity if side == "BUY" else -quantity


def _side(position: Decimal, rng: random.Random) -> str:
    if position >= MAX_POSITION:
        return "SELL"
    if position <= -MAX_POSITION:
        return "BUY"
    return rng.choice(("BUY", "SELL"))


def _step_price(stats: DriverStats, rng: random.Random) -> None:
    """One random-walk step; an unlucky plan's price also drifts against its position."""
    move = Decimal(str(rng.gauss(0, stats.plan.volatility)))
    if stats.position:
        direction = 1 if stats.position > 0 else -1
        move -= stats.plan.adverse_drift * direction
    stats.price = max(Decimal(1), stats.price + move).quantize(CENT)


def _mark(stats: DriverStats) -> dict[str, str]:
    return {"symbol": stats.plan.symbol, "price": str(stats.price)}


async def _refresh(api: httpx.AsyncClient, base: str, stats: DriverStats) -> None:
    """The service's own view of the session: realized PnL, limits used, warnings sent."""
    response = await api.get(base)
    if response.status_code != 200:
        return
    body = response.json()
    stats.status = body["status"]
    stats.realized_pnl = Decimal(body["realized_pnl"])
    stats.end_reason = body["end_reason"]
    stats.end_detail = body["end_detail"]
    live = body.get("live")
    if live:
        stats.loss_used, stats.time_used = live["loss_used"], live["time_used"]
        stats.warnings = [f"time {t:.0%}" for t in live["time_warnings_sent"]] + [
            f"loss {t:.0%}" for t in live["loss_warnings_sent"]
        ]
