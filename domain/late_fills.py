"""Late fills: executions the broker reports after the session's trading ended.

A broker can report a fill of an order placed before the halt while the session is winding
down (ENDING, CLEANUP_FAILED) or after it ended. The ledger must match the broker, so such a
fill is recorded, marked late, and whatever position it leaves open is flattened again.

"Placed before the halt" means: an order row of this session (``orders``). The order
endpoint books an order only while the session's trading gate is open, under the session's
row lock, and the halt closes the gate under that same lock before anything is cancelled;
so every order row of a session was placed before its halt, whether it is still OPEN or was
CANCELLED since (a cancel can race a fill at the broker). A fill naming no order, or an
order the session never placed, is refused once trading ended: it cannot be the session's.
"""

from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.session import is_open
from domain.status import SessionStatus

FILL_LATE = "fill.late"
LATE_FILL_NOTIFICATION = "session.late_fill"


def trading_ended(status: SessionStatus) -> bool:
    """Whether a fill arriving now is late: the session is no longer PENDING or ACTIVE."""
    return not is_open(status)


@dataclass(frozen=True)
class OrderFacts:
    """What a late fill is checked against: the order it names, and what filled it so far."""

    order_id: str
    symbol: str
    side: str
    quantity: Decimal
    filled: Decimal


@dataclass(frozen=True)
class LateFillRefusal:
    """Why a late fill is refused: an error code for the API and a message for people."""

    code: str
    message: str
    field: str


def check_late_fill(
    session_id: str,
    order_id: str | None,
    order: OrderFacts | None,
    symbol: str,
    side: str,
    quantity: Decimal,
) -> LateFillRefusal | None:
    """None when the late fill executes an order the session placed before its halt."""
    if order_id is None:
        return LateFillRefusal(
            "unknown_order",
            f"session {session_id!r} stopped trading: a fill must name its order (order_id) "
            "placed before the halt",
            "order_id",
        )
    if order is None:
        return LateFillRefusal(
            "unknown_order",
            f"session {session_id!r} never placed order {order_id!r}: a fill after its "
            "trading ended must execute one of its orders",
            "order_id",
        )
    if (order.symbol, order.side) != (symbol, side):
        return LateFillRefusal(
            "unknown_order",
            f"order {order_id!r} is a {order.side} of {order.symbol}, not a {side} of {symbol}",
            "order_id",
        )
    if order.filled + quantity > order.quantity:
        return LateFillRefusal(
            "order_overfilled",
            f"order {order_id!r} is for {order.quantity:f}; {order.filled:f} filled already",
            "quantity",
        )
    return None


def reflatten_fill_id(symbol: str, round_: int) -> str:
    """The closing fill of a position a late fill reopened; ``round_`` counts from 2 (the
    termination's own ``flatten:<symbol>`` is the first)."""
    return f"reflatten:{symbol}:{round_}"


def late_fill_workflow_id(session_id: str) -> str:
    """One follow-up at a time per session; a later late fill starts a new run."""
    return f"late-fills-{session_id}"


class LateFillsInput(BaseModel):
    """The follow-up of an ended session's late fills."""

    session_id: str


class LateFillsResult(BaseModel):
    """What one follow-up did; each part is empty when it found nothing to do."""

    session_id: str
    reflattened: dict[str, str] = Field(default_factory=dict)  # symbol -> closing fill
    settled_difference: str | None = None
    realized_pnl: str = "0"
    notification_ids: list[int] = Field(default_factory=list)
