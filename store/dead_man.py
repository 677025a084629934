"""The paper broker's dead-man's switch (Kraken's cancelAllOrdersAfter): a deadline per account.

All SQL of it; never commits. ``rearm_open_accounts`` is the fleet sweep's one statement;
``trigger_expired`` is the venue's: once an account's deadline passes without a re-arm, every
OPEN order of the account's sessions is cancelled by the broker itself, audited per session,
and the switch is spent (``triggered_at``) until armed again, as Kraken's is.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.orders import OrderStatus
from domain.session import OPEN_STATUSES
from store.models import AuditEvent, BrokerCancelAfter, Order, TradingSession

DEAD_MAN_ACTOR = "broker:dead-man"
CANCELLED_BY_DEAD_MAN = "dead_man"


@dataclass(frozen=True)
class Triggered:
    """One account whose deadline passed, and the orders its broker cancelled."""

    account_id: str
    deadline: datetime
    orders_cancelled: int


class DeadMansSwitchRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def arm(self, account_id: str, seconds: float) -> datetime | None:
        """Cancel the account's open orders ``seconds`` from now unless armed again; 0 turns
        the switch off. Returns the deadline (None when off)."""
        if seconds <= 0:
            await self.db.execute(
                delete(BrokerCancelAfter).where(BrokerCancelAfter.account_id == account_id)
            )
            return None
        deadline = func.now() + timedelta(seconds=seconds)
        stmt = insert(BrokerCancelAfter).values(account_id=account_id, deadline=deadline)
        stmt = stmt.on_conflict_do_update(
            index_elements=[BrokerCancelAfter.account_id],
            set_={"deadline": deadline, "armed_at": func.now(), "triggered_at": None},
        )
        result = await self.db.execute(stmt.returning(BrokerCancelAfter.deadline))
        armed: datetime = result.scalar_one()
        return armed

    async def rearm_open_accounts(self, seconds: float) -> int:
        """ONE statement: arm (or push back) the deadline of every account with an open
        session; returns how many accounts it armed."""
        accounts = (
            select(TradingSession.account_id)
            .where(TradingSession.status.in_(list(OPEN_STATUSES)))
            .distinct()
        )
        deadline = func.now() + timedelta(seconds=seconds)
        stmt = insert(BrokerCancelAfter).from_select(
            ["account_id", "deadline"], select(accounts.subquery().c.account_id, deadline)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[BrokerCancelAfter.account_id],
            set_={"deadline": deadline, "armed_at": func.now(), "triggered_at": None},
        )
        result = await self.db.execute(stmt.returning(BrokerCancelAfter.account_id))
        return len(result.all())

    async def trigger_expired(self) -> list[Triggered]:
        """ONE statement: spend every switch whose deadline passed, cancel the OPEN orders of
        its account's sessions, and audit each session's cancellation."""
        expired = (
            update(BrokerCancelAfter)
            .where(
                BrokerCancelAfter.deadline <= func.now(), BrokerCancelAfter.triggered_at.is_(None)
            )
            .values(triggered_at=func.now())
            .returning(BrokerCancelAfter.account_id, BrokerCancelAfter.deadline)
            .cte("expired")
        )
        cancelled = (
            update(Order)
            .where(
                Order.status == OrderStatus.OPEN,
                Order.session_id == TradingSession.id,
                TradingSession.account_id.in_(select(expired.c.account_id)),
            )
            .values(status=OrderStatus.CANCELLED, cancelled_by=CANCELLED_BY_DEAD_MAN)
            .returning(Order.session_id, TradingSession.account_id, TradingSession.workflow_id)
            .cte("cancelled")
        )
        per_session = (
            select(
                cancelled.c.session_id,
                cancelled.c.workflow_id,
                func.count().label("orders"),
            )
            .group_by(cancelled.c.session_id, cancelled.c.workflow_id)
            .subquery("per_session")
        )
        audited = (
            insert(AuditEvent)
            .from_select(
                ["session_id", "action", "actor", "reason", "details", "workflow_id"],
                select(
                    per_session.c.session_id,
                    literal("orders.cancelled_by_broker"),
                    literal(DEAD_MAN_ACTOR),
                    literal("the broker's dead-man's switch expired: nobody re-armed it"),
                    func.jsonb_build_object("orders", per_session.c.orders),
                    per_session.c.workflow_id,
                ),
            )
            .cte("audited")
        )
        counts = (
            select(cancelled.c.account_id, func.count().label("orders"))
            .group_by(cancelled.c.account_id)
            .subquery("counts")
        )
        stmt = (
            select(expired.c.account_id, expired.c.deadline, func.coalesce(counts.c.orders, 0))
            .select_from(expired)
            .outerjoin(counts, counts.c.account_id == expired.c.account_id)
            .add_cte(audited)
        )
        rows = (await self.db.execute(stmt)).all()
        return [Triggered(account, deadline, int(n)) for account, deadline, n in rows]

    async def get(self, account_id: str) -> BrokerCancelAfter | None:
        return await self.db.get(BrokerCancelAfter, account_id, populate_existing=True)
