"""Session statuses and the one table of legal transitions between them."""

from enum import StrEnum


class SessionStatus(StrEnum):
    """Where a session is in its life."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    ENDING = "ENDING"
    CLEANUP_FAILED = "CLEANUP_FAILED"
    EXPIRED = "EXPIRED"
    LOSS_LIMIT = "LOSS_LIMIT"
    TERMINATED = "TERMINATED"


class EndReason(StrEnum):
    """Why a session ended; each maps to the terminal status it leaves behind."""

    EXPIRED = "EXPIRED"
    LOSS_LIMIT = "LOSS_LIMIT"
    TERMINATED = "TERMINATED"
    # Ended by the reconciler: its workflow closed (terminated from the Web UI or the CLI,
    # or failed) while the session was still open.
    ORPHANED = "ORPHANED"
    # A session whose workflow could never be started.
    START_FAILED = "START_FAILED"
    # Risk controls (domain.risk): equity fell max_drawdown below its peak; equity reached the
    # profit target; the account's daily loss limit was reached across its sessions.
    DRAWDOWN_LIMIT = "DRAWDOWN_LIMIT"
    PROFIT_TARGET = "PROFIT_TARGET"
    ACCOUNT_LOSS_LIMIT = "ACCOUNT_LOSS_LIMIT"

    @property
    def final_status(self) -> SessionStatus:
        """A risk limit's breach ends LOSS_LIMIT, a profit target TERMINATED; ``end_reason``
        keeps the exact cause."""
        if self in (EndReason.ORPHANED, EndReason.START_FAILED, EndReason.PROFIT_TARGET):
            return SessionStatus.TERMINATED
        if self in (EndReason.DRAWDOWN_LIMIT, EndReason.ACCOUNT_LOSS_LIMIT):
            return SessionStatus.LOSS_LIMIT
        return SessionStatus(self.value)


TERMINAL_STATUSES = frozenset(
    {SessionStatus.EXPIRED, SessionStatus.LOSS_LIMIT, SessionStatus.TERMINATED}
)

_TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.PENDING: frozenset({SessionStatus.ACTIVE, SessionStatus.ENDING}),
    SessionStatus.ACTIVE: frozenset({SessionStatus.ENDING}),
    SessionStatus.ENDING: frozenset({SessionStatus.CLEANUP_FAILED, *TERMINAL_STATUSES}),
    SessionStatus.CLEANUP_FAILED: frozenset({SessionStatus.ENDING, *TERMINAL_STATUSES}),
    SessionStatus.EXPIRED: frozenset(),
    SessionStatus.LOSS_LIMIT: frozenset(),
    SessionStatus.TERMINATED: frozenset(),
}


class IllegalTransitionError(ValueError):
    """A status change the lifecycle does not allow."""


def can_transition(current: SessionStatus, target: SessionStatus) -> bool:
    """Whether ``current -> target`` is a legal step; staying put is always legal."""
    return current == target or target in _TRANSITIONS[current]


def check_transition(current: SessionStatus, target: SessionStatus) -> None:
    """Raise :class:`IllegalTransitionError` unless ``current -> target`` is legal."""
    if not can_transition(current, target):
        raise IllegalTransitionError(f"session cannot go from {current} to {target}")


def is_terminal(status: SessionStatus) -> bool:
    return status in TERMINAL_STATUSES
