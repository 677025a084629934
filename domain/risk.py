"""Risk controls beyond the loss limit: trading states, drawdown, profit target, pre-trade
checks. Pure rules with no I/O and no clock (``now`` is passed in), tested by hand.

Where each comes from: the REDUCING state and the pre-trade checks from nautilus_trader's
RiskEngine and SEC 15c3-5 / MiFID II RTS 6 Art. 15; drawdown from peak equity from LEAN's
risk models; the profit target from Hummingbot's kill switch (it works both ways).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from domain.positions import Side, signed_quantity


class TradingState(StrEnum):
    """What a session's gate admits. ACTIVE: any order; REDUCING: only orders that shrink
    the position in their symbol; HALTED: none (paused, or halting); cancels always pass."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class Refusal(StrEnum):
    """Why an order is refused: the reason code of the 409, the audit event and the metric."""

    HALTED = "halted"
    REDUCING_ONLY = "reducing_only"
    MAX_QUANTITY = "max_quantity"
    MAX_NOTIONAL = "max_notional"
    PRICE_COLLAR = "price_collar"
    NO_REFERENCE_PRICE = "no_reference_price"
    ORDER_RATE = "order_rate"
    MAX_OPEN_ORDERS = "max_open_orders"


def trading_state(
    *, halted: bool, loss: Decimal, loss_limit: Decimal, reducing_at: float | None
) -> TradingState:
    """HALTED wins; REDUCING from ``reducing_at`` of the loss limit (None: never)."""
    if halted:
        return TradingState.HALTED
    if reducing_at is not None and loss >= loss_limit * Decimal(str(reducing_at)):
        return TradingState.REDUCING
    return TradingState.ACTIVE


def reduces_position(held: Decimal, side: Side, quantity: Decimal) -> bool:
    """Whether the order only shrinks the position: opposite side, no larger than it."""
    delta = signed_quantity(side, quantity)
    return held != 0 and (held > 0) != (delta > 0) and abs(delta) <= abs(held)


def equity(realized_pnl: Decimal, unrealized_pnl: Decimal) -> Decimal:
    """The session's equity change: what it made or lost, realized or not."""
    return realized_pnl + unrealized_pnl


def drawdown(peak_equity: Decimal, current_equity: Decimal) -> Decimal:
    """How far equity is below its running peak (the peak starts at 0, the session's start)."""
    return max(Decimal(0), max(peak_equity, Decimal(0)) - current_equity)


def drawdown_used(peak_equity: Decimal, current_equity: Decimal, max_drawdown: Decimal) -> float:
    """Fraction of the drawdown limit used (1.0 at the limit, may pass it)."""
    return float(drawdown(peak_equity, current_equity) / max_drawdown)


def profit_target_reached(current_equity: Decimal, profit_target: Decimal | None) -> bool:
    return profit_target is not None and current_equity >= profit_target


@dataclass(frozen=True)
class OrderLimits:
    """A session's pre-trade checks; None turns one off."""

    max_quantity: Decimal | None = None
    max_notional: Decimal | None = None
    price_collar_pct: Decimal | None = None  # a limit price within this % of the latest mark
    max_orders_per_second: int | None = None
    max_open_orders: int | None = None


@dataclass(frozen=True)
class OrderContext:
    """What the checks need to know about the session when the order arrives."""

    state: TradingState
    held: Decimal  # the position in the order's symbol, signed
    mark: Decimal | None  # the latest mark of the symbol
    open_orders: int
    recent_order_times: tuple[datetime, ...]  # the session's orders in the last second


def check_order(
    limits: OrderLimits,
    context: OrderContext,
    *,
    side: Side,
    quantity: Decimal,
    limit_price: Decimal | None,
    now: datetime,
) -> Refusal | None:
    """The first check the order fails, in the order a desk would name them; None if none."""
    if context.state is TradingState.HALTED:
        return Refusal.HALTED
    if context.state is TradingState.REDUCING and not reduces_position(
        context.held, side, quantity
    ):
        return Refusal.REDUCING_ONLY
    if limits.max_quantity is not None and quantity > limits.max_quantity:
        return Refusal.MAX_QUANTITY
    price = limit_price if limit_price is not None else context.mark
    if limits.max_notional is not None:
        if price is None:
            return Refusal.NO_REFERENCE_PRICE
        if quantity * price > limits.max_notional:
            return Refusal.MAX_NOTIONAL
    if limits.price_collar_pct is not None and limit_price is not None:
        if context.mark is None:
            return Refusal.NO_REFERENCE_PRICE
        if abs(limit_price - context.mark) > context.mark * limits.price_collar_pct / 100:
            return Refusal.PRICE_COLLAR
    if limits.max_orders_per_second is not None:
        second_ago = now - timedelta(seconds=1)
        recent = sum(1 for t in context.recent_order_times if t > second_ago)
        if recent >= limits.max_orders_per_second:
            return Refusal.ORDER_RATE
    if limits.max_open_orders is not None and context.open_orders >= limits.max_open_orders:
        return Refusal.MAX_OPEN_ORDERS
    return None


_DECIMAL_LIMITS = ("max_quantity", "max_notional", "price_collar_pct")
_COUNT_LIMITS = ("max_orders_per_second", "max_open_orders")


def order_limits_from(values: Mapping[str, object]) -> OrderLimits:
    """A session's pre-trade checks as stored (strings in JSON; absent or None: off)."""

    def get(name: str) -> object:
        value = values.get(name)
        return None if value is None or value == "" else value

    decimals = {n: None if get(n) is None else Decimal(str(get(n))) for n in _DECIMAL_LIMITS}
    counts = {n: None if get(n) is None else int(str(get(n))) for n in _COUNT_LIMITS}
    return OrderLimits(**decimals, **counts)  # type: ignore[arg-type]


def order_limits_dict(limits: OrderLimits) -> dict[str, str]:
    """What is stored and shown: the limits that are on, as plain strings."""
    names = (*_DECIMAL_LIMITS, *_COUNT_LIMITS)
    return {
        n: format(v, "f") if isinstance(v, Decimal) else str(v)
        for n in names
        if (v := getattr(limits, n)) is not None
    }


def merge_order_limits(asked: Mapping[str, object], defaults: OrderLimits) -> OrderLimits:
    """The session's own limits where it set them, the settings' defaults elsewhere."""
    own = order_limits_from(asked)
    return OrderLimits(
        **{
            n: getattr(own, n) if getattr(own, n) is not None else getattr(defaults, n)
            for n in (*_DECIMAL_LIMITS, *_COUNT_LIMITS)
        }
    )
