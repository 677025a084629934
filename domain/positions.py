"""Average-cost position accounting: what a fill does to a position and to realized PnL."""

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


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
    """
    delta = signed_quantity(side, quantity)
    held = position.quantity
    realized = -fee
    if held == 0 or (held > 0) == (delta > 0):
        new_quantity = held + delta
        average = (held * position.average_price + delta * price) / new_quantity
        return FillEffect(Position(new_quantity, average), realized)

    closed = min(abs(held), abs(delta))
    direction = Decimal(1) if held > 0 else Decimal(-1)
    realized += (price - position.average_price) * closed * direction
    new_quantity = held + delta
    if new_quantity == 0:
        return FillEffect(Position(), realized)
    if (new_quantity > 0) == (held > 0):
        return FillEffect(Position(new_quantity, position.average_price), realized)
    return FillEffect(Position(new_quantity, price), realized)


def unrealized_pnl(position: Position, mark: Decimal | None) -> Decimal:
    """Open PnL at ``mark``; without a mark nothing is known, so it counts as zero."""
    if mark is None or position.quantity == 0:
        return Decimal(0)
    return (mark - position.average_price) * position.quantity
