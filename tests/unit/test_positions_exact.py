"""Money is exact and independent of arrival order: property tests of the ledger arithmetic.

``StoredLedger`` folds fills the way ``store.ledger.LedgerRepository.apply_fill`` does, one
transaction per fill: in order it applies the fill to the position read back from the store,
and a fill executed before the latest one replays the symbol from scratch. Between fills every
figure goes through the columns' scales the way PostgreSQL keeps them (half away from zero), so
arithmetic that is not already at the stored scale shows up as a difference between orders.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal
from itertools import permutations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.positions import (
    AVERAGE_PRICE_SCALE,
    MONEY_SCALE,
    Position,
    Side,
    apply_fill,
    quantize_money,
    unrealized_pnl,
)

D = Decimal
_COLUMN = Context(prec=80, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class FillIn:
    fill_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    executed_at: int  # distinct per fill: execution order is total


def stored(value: Decimal, scale: int = MONEY_SCALE) -> Decimal:
    """What a NUMERIC column of that scale keeps (PostgreSQL rounds half away from zero)."""
    return value.quantize(D(1).scaleb(-scale), context=_COLUMN)


@dataclass
class StoredLedger:
    positions: dict[str, Position] = field(default_factory=dict)
    fills: dict[str, tuple[FillIn, Decimal]] = field(default_factory=dict)
    session_realized: Decimal = Decimal(0)

    def apply(self, fill: FillIn) -> None:
        same_symbol = [f for f, _ in self.fills.values() if f.symbol == fill.symbol]
        latest = max((f.executed_at for f in same_symbol), default=None)
        if latest is not None and fill.executed_at < latest:
            self.fills[fill.fill_id] = (fill, D(0))
            change = self._replay(fill.symbol)
        else:
            held = self.positions.get(fill.symbol, Position())
            effect = apply_fill(held, fill.side, fill.quantity, fill.price, fill.fee)
            self._store_position(fill.symbol, effect.position)
            self.fills[fill.fill_id] = (fill, stored(effect.realized_pnl))
            change = effect.realized_pnl
        self.session_realized = stored(self.session_realized + change)

    def _replay(self, symbol: str) -> Decimal:
        held = Position()
        change = D(0)
        ordered = sorted(
            (f for f, _ in self.fills.values() if f.symbol == symbol), key=lambda f: f.executed_at
        )
        for fill in ordered:
            effect = apply_fill(held, fill.side, fill.quantity, fill.price, fill.fee)
            change += effect.realized_pnl - self.fills[fill.fill_id][1]
            self.fills[fill.fill_id] = (fill, stored(effect.realized_pnl))
            held = effect.position
        self._store_position(symbol, held)
        return change

    def _store_position(self, symbol: str, position: Position) -> None:
        self.positions[symbol] = Position(
            stored(position.quantity), stored(position.average_price, AVERAGE_PRICE_SCALE)
        )

    def outcome(self) -> tuple[dict[str, Position], dict[str, Decimal], Decimal]:
        per_fill = {fill_id: realized for fill_id, (_, realized) in self.fills.items()}
        return dict(self.positions), per_fill, self.session_realized


def run(fills: tuple[FillIn, ...]) -> StoredLedger:
    ledger = StoredLedger()
    for fill in fills:
        ledger.apply(fill)
    return ledger


# Prices with up to 8 decimals (the stored scale), quantities that make averages repeat.
prices = st.builds(
    lambda units, scale: D(units).scaleb(-scale),
    st.integers(1, 10**9),
    st.integers(0, 8),
)
quantities = st.builds(
    lambda units, scale: D(units).scaleb(-scale), st.integers(1, 5000), st.integers(0, 2)
)
fees = st.builds(lambda cents: D(cents).scaleb(-2), st.integers(0, 500))


@st.composite
def fill_sets(draw: st.DrawFn, max_fills: int = 5) -> tuple[FillIn, ...]:
    count = draw(st.integers(2, max_fills))
    times = draw(st.lists(st.integers(0, 10**6), min_size=count, max_size=count, unique=True))
    return tuple(
        FillIn(
            fill_id=f"f{n}",
            symbol=draw(st.sampled_from(["ACME", "ACME", "INIT"])),
            side=draw(st.sampled_from(Side)),
            quantity=draw(quantities),
            price=draw(prices),
            fee=draw(fees),
            executed_at=at,
        )
        for n, at in enumerate(times)
    )


@settings(max_examples=150, deadline=None)
@given(fill_sets())
def test_every_arrival_order_stores_the_same_positions_and_pnl(fills: tuple[FillIn, ...]) -> None:
    in_execution_order = run(tuple(sorted(fills, key=lambda f: f.executed_at))).outcome()

    for arrival in permutations(fills):
        assert run(arrival).outcome() == in_execution_order


@settings(max_examples=150, deadline=None)
@given(fill_sets(max_fills=8))
def test_figures_are_already_at_the_stored_scale(fills: tuple[FillIn, ...]) -> None:
    held: dict[str, Position] = {}
    for fill in sorted(fills, key=lambda f: f.executed_at):
        effect = apply_fill(
            held.get(fill.symbol, Position()), fill.side, fill.quantity, fill.price, fill.fee
        )
        held[fill.symbol] = effect.position
        assert stored(effect.realized_pnl) == effect.realized_pnl
        assert stored(effect.position.average_price, AVERAGE_PRICE_SCALE) == (
            effect.position.average_price
        )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(quantities, prices), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(1, 5), prices), min_size=1, max_size=4),
    fees,
)
def test_a_closed_round_trip_realizes_exactly_its_proceeds_minus_its_cost(
    buys: list[tuple[Decimal, Decimal]], sells: list[tuple[int, Decimal]], fee: Decimal
) -> None:
    # Sell the whole position in parts (weights), the last part taking what is left.
    total = sum((quantity for quantity, _ in buys), D(0))
    weights = sum(weight for weight, _ in sells)
    parts = [(total * weight / weights).quantize(D("0.01")) for weight, _ in sells[:-1]]
    parts = [part for part in parts if part > 0]
    parts.append(total - sum(parts, D(0)))
    if parts[-1] <= 0:
        return
    position = Position()
    realized = D(0)
    for quantity, price in buys:
        effect = apply_fill(position, Side.BUY, quantity, price, fee)
        position, realized = effect.position, realized + effect.realized_pnl
    sell_prices = [price for _, price in sells]
    for part, price in zip(parts, sell_prices, strict=False):
        effect = apply_fill(position, Side.SELL, part, price, fee)
        position, realized = effect.position, realized + effect.realized_pnl

    cost = sum((quantity * price for quantity, price in buys), D(0))
    proceeds = sum((part * price for part, price in zip(parts, sell_prices, strict=False)), D(0))
    paid_fees = fee * (len(buys) + len(parts))
    assert position == Position()
    # Each buy's cost and each sell's proceeds round to the stored scale on their own;
    # nothing else may round (an 8-decimal average price would, on every close).
    assert abs(realized - (proceeds - cost - paid_fees)) <= D("0.00000001") * (
        len(parts) + len(buys)
    )
    amounts = [part * price for part, price in zip(parts, sell_prices, strict=False)]
    if all(stored(amount) == amount for amount in amounts + [q * p for q, p in buys]):
        assert realized == proceeds - cost - paid_fees


def test_buying_at_two_prices_and_selling_all_realizes_the_exact_cents() -> None:
    # 1 @ 100 + 2 @ 101 costs 302: the average 100.666... does not fit 8 decimals, but
    # selling the 3 at 99.37 in three parts must realize 298.11 - 302 = -3.89, not -3.89000001.
    position = apply_fill(Position(), Side.BUY, D(1), D(100)).position
    position = apply_fill(position, Side.BUY, D(2), D(101)).position
    realized = D(0)
    for _ in range(3):
        effect = apply_fill(position, Side.SELL, D(1), D("99.37"))
        position, realized = effect.position, realized + effect.realized_pnl

    assert realized == D("-3.89")
    assert position == Position()


def test_unrealized_pnl_is_what_flattening_at_the_mark_would_realize() -> None:
    position = apply_fill(Position(), Side.BUY, D(1), D(100)).position
    position = apply_fill(position, Side.BUY, D(2), D(101)).position

    flattened = apply_fill(position, Side.SELL, D(3), D("99.37"))

    assert unrealized_pnl(position, D("99.37")) == flattened.realized_pnl == D("-3.89")
    assert quantize_money(unrealized_pnl(position, D("99.37"))) == D("-3.89")
