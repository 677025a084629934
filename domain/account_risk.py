"""The account's daily loss limit across its sessions (issue 16, item 6).

An account's loss of a UTC day is ``max(0, -(sum of its sessions' PnL))`` over the sessions
that traded that day: an open one counts realized + unrealized (``domain.limits``), an ended
one its final realized PnL. A session that spans midnight counts on both days: for a limit,
counting a loss twice errs on the safe side. Reaching the warning share (80 %) warns once a
day; reaching the limit engages an account kill switch ending every open session of the
account with ``ACCOUNT_LOSS_LIMIT``, and the account stays locked until an admin re-arms it.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from domain.limits import loss_used
from domain.positions import plain_money

ACCOUNT_WARNING_AT = 0.8
AUDIT_ID_MAX = 64
# The system's name in the audit trail when the account limit engages the kill switch.
ACCOUNT_LIMIT_ACTOR = "risk"


class AccountVerdict(StrEnum):
    WARN = "WARN"
    BREACH = "BREACH"


def utc_day(now: datetime) -> date:
    """The UTC day ``now`` falls in."""
    return now.astimezone(UTC).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def account_loss(pnl: Decimal) -> Decimal:
    """The account's loss from the net PnL of its sessions of the day."""
    return max(Decimal(0), -pnl)


@dataclass(frozen=True)
class AccountDay:
    """One account's figures of one UTC day, as the fleet statement computed them."""

    account_id: str
    day: date
    daily_loss_limit: Decimal | None
    realized: Decimal
    unrealized: Decimal
    sessions: int
    open_sessions: int
    warned: bool
    breached: bool

    @property
    def pnl(self) -> Decimal:
        return self.realized + self.unrealized

    @property
    def loss(self) -> Decimal:
        return account_loss(self.pnl)

    @property
    def used(self) -> float | None:
        if self.daily_loss_limit is None:
            return None
        return loss_used(self.loss, self.daily_loss_limit)

    def verdict(self, warning_at: float = ACCOUNT_WARNING_AT) -> AccountVerdict | None:
        """What the day's loss calls for that was not done yet today: breach, warning, none."""
        if self.daily_loss_limit is None:
            return None
        return account_verdict(
            self.loss,
            self.daily_loss_limit,
            warned=self.warned,
            breached=self.breached,
            warning_at=warning_at,
        )


def account_verdict(
    loss: Decimal,
    limit: Decimal,
    *,
    warned: bool,
    breached: bool,
    warning_at: float = ACCOUNT_WARNING_AT,
) -> AccountVerdict | None:
    """BREACH at or past the limit (once a day), else WARN at ``warning_at`` of it (once)."""
    if loss >= limit:
        return None if breached else AccountVerdict.BREACH
    if loss_used(loss, limit) >= warning_at and not warned:
        return AccountVerdict.WARN
    return None


def breach_reason(loss: Decimal, limit: Decimal) -> str:
    return (
        f"ACCOUNT_LOSS_LIMIT: daily loss {plain_money(loss)} reached the account's limit "
        f"{plain_money(limit)}"
    )


def account_audit_id(account_id: str) -> str:
    """Where the audit trail and notifications file an account's own events (64 at most:
    a long account id is named by its hash)."""
    named = f"account-{account_id}"
    if len(named) <= AUDIT_ID_MAX:
        return named
    return f"account-{hashlib.sha256(account_id.encode()).hexdigest()[:48]}"
