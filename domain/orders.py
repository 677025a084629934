"""Orders an algorithm places through the service, as the paper broker books them."""

from enum import StrEnum


class OrderStatus(StrEnum):
    """OPEN until the session's termination cancels it (the paper broker fills nothing)."""

    OPEN = "OPEN"
    CANCELLED = "CANCELLED"
