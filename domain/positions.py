"""Average-cost position accounting: what a fill does to a position and to realized PnL."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from enum import StrEnum

# Scales the ledger stores (NUMERIC(24, 8) for money, NUMERIC(36, 20) for the average
# price). Every figure this module returns is already at its stored scale, so what is computed
# in memory is exactly what the database keeps, and a position folded fill by fill (reading each
# step back from the store) agrees to the last digit with one replayed from scratch. Half away
# from zero, as PostgreSQL's round() of a numeric: the fleet's set-based statement values
# positions in SQL with round(), and must agree with this code to the last digit.
MONEY_SCALE = 8
AVERAGE_PRICE_SCALE = 20
_MONEY = Decimal(1).scaleb(-MONEY_SCALE)
_AVERAGE = Decimal(1).scaleb(-AVERAGE_PRICE_SCALE)
# Wide enough that products of stored values are exact, so the only rounding is the one to
# the stored scale, not the default context's 28 significant digits.
_WIDE = Context(prec=80, rounding=ROUND_HALF_UP)


def quantize_money(value: Decimal) -> Decimal:
    """``value`` at the stored scale of money (8 decimal places, half away from zero)."""
    return value.quantize(_MONEY, context=_WIDE)


def plain_money(value: Decimal) -> str:
    """Money as people write it, at the stored scale: "420", "-1900.11", never
    "420.0000000000000000", "0E-8" or "126.4499997900000000"."""
    return format(quantize_money(value).normalize(), "f")


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


@dataclass(frozen=True)
class Position:
    """Signed quantity (short is negative) at an average entry price."""

    quantity: Decimal = Decimal(0)
    average_price: Decimal = Decimal(0)


@dataclass(frozen=True)
class FillEffect:
    position: Position
    realized_pnl: Decimal


def signed_quantity(side: Side, quantity: Decimal) -> Decimal:
    return quantity if side is Side.BUY else -quantity


def apply_fill(
    position: Position, side: Side, quantity: Decimal, price: Decimal, fee: Decimal = Decimal(0)
) -> FillEffect:
    """Apply one fill; the part that closes exposure realizes PnL, fees always cost.

    The part that opens or adds exposure moves the average price; a fill that crosses
    through zero closes the old position and opens the remainder at the fill price.
    Closing releases the booked cost (quantity x average, in money) of the part closed, so
    the partial closes of a round trip add up to exactly its proceeds minus its cost: no
    -1900.11000002 where -1900.11 is right. This is the one place both the in-order and the
    replay path of the ledger go through, and the one place figures are quantized.
    """
    with localcontext(_WIDE):
        return _apply_fill(position, signed_quantity(side, quantity), price, fee)


def _apply_fill(position: Position, delta: Decimal, price: Decimal, fee: Decimal) -> FillEffect:
    held = position.quantity
    average = position.average_price
    if held == 0 or (held > 0) == (delta > 0):
        new_quantity = held + delta
        new_average = (_booked_cost(held, average) + delta * price) / new_quantity
        return FillEffect(
            Position(new_quantity, new_average.quantize(_AVERAGE)), quantize_money(-fee)
        )

    closed = min(abs(held), abs(delta))
    direction = Decimal(1) if held > 0 else Decimal(-1)
    remaining = abs(held) - closed
    released = _booked_cost(abs(held), average) - _booked_cost(remaining, average)
    realized = quantize_money(direction * (price * closed - released) - fee)
    new_quantity = held + delta
    if new_quantity == 0:
        return FillEffect(Position(), realized)
    if (new_quantity > 0) == (held > 0):
        return FillEffect(Position(new_quantity, average), realized)
    return FillEffect(Position(new_quantity, price.quantize(_AVERAGE)), realized)


def _booked_cost(quantity: Decimal, average_price: Decimal) -> Decimal:
    """What ``quantity`` at ``average_price`` cost, in money; signed like the quantity."""
    return quantize_money(quantity * average_price)


def unrealized_pnl(position: Position, mark: Decimal | None) -> Decimal:
    """Open PnL at ``mark``, at the stored scale: what flattening there would realize before
    fees. Without a mark nothing is known, so it counts as zero."""
    if mark is None or position.quantity == 0:
        return Decimal(0)
    with localcontext(_WIDE):
        return quantize_money(
            mark * position.quantity - _booked_cost(position.quantity, position.average_price)
        )
