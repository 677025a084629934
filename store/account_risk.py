"""The account's daily loss across its sessions: its limit, and one statement for all accounts.

All SQL of the account limits; never commits. The fleet statement follows
``FleetRepository``'s valuation (``store.ledger.with_latest_mark``, rounded at the stored
scale): an open position at its latest mark, 0 without one. Ended sessions are flat, so the
same sum counts their final realized PnL only.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.account_risk import AccountDay, day_bounds, utc_day
from domain.session import OPEN_STATUSES
from store.ledger import unrealized_by_session
from store.models import AccountLimit, TradingSession


class AccountRiskRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, account_id: str) -> AccountLimit | None:
        return await self.db.get(AccountLimit, account_id)

    async def set_daily_loss_limit(
        self, account_id: str, limit: Decimal | None, actor: str
    ) -> AccountLimit:
        """Set (or clear, with None) the account's daily loss limit; one upsert."""
        stmt = insert(AccountLimit).values(
            account_id=account_id, daily_loss_limit=limit, updated_by=actor
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=[AccountLimit.account_id],
            set_={"daily_loss_limit": limit, "updated_by": actor, "updated_at": func.now()},
        ).returning(AccountLimit)
        options = {"populate_existing": True}
        row: AccountLimit = (await self.db.execute(upsert, execution_options=options)).scalar_one()
        return row

    async def days(self, now: datetime, account_id: str | None = None) -> list[AccountDay]:
        """ONE statement: the day's figures of every account with a daily loss limit (the
        sweep's), or of one account, limit or not (``GET /accounts/{id}/risk``)."""
        day = utc_day(now)
        stmt = _days_statement(day, account_id)
        return [
            AccountDay(
                account_id=row.account_id,
                day=day,
                daily_loss_limit=row.daily_loss_limit,
                realized=row.realized,
                unrealized=row.unrealized,
                sessions=row.sessions,
                open_sessions=row.open_sessions,
                warned=row.warned_on == day,
                breached=row.breached_on == day,
            )
            for row in (await self.db.execute(stmt)).all()
        ]

    async def claim(self, account_id: str, day: date, *, breach: bool) -> bool:
        """Mark the day's warning (or breach) done; False if another sweep did it already."""
        column = AccountLimit.breached_on if breach else AccountLimit.warned_on
        stmt = (
            update(AccountLimit)
            .where(AccountLimit.account_id == account_id, column.is_distinct_from(day))
            .values({column.key: day})
            .returning(AccountLimit.account_id)
        )
        return (await self.db.execute(stmt)).scalar_one_or_none() is not None


def _accounts(account_id: str | None) -> Any:
    if account_id is None:
        return (
            select(
                AccountLimit.account_id,
                AccountLimit.daily_loss_limit,
                AccountLimit.warned_on,
                AccountLimit.breached_on,
            )
            .where(AccountLimit.daily_loss_limit.is_not(None))
            .cte("accounts")
        )
    one = select(literal(account_id).label("account_id")).cte("one")
    return (
        select(
            one.c.account_id,
            AccountLimit.daily_loss_limit,
            AccountLimit.warned_on,
            AccountLimit.breached_on,
        )
        .select_from(one)
        .outerjoin(AccountLimit, AccountLimit.account_id == one.c.account_id)
        .cte("accounts")
    )


def _days_statement(day: date, account_id: str | None) -> Select[Any]:
    start, end = day_bounds(day)
    accounts = _accounts(account_id)
    traded_today: ColumnElement[bool] = (TradingSession.start_time < end) & (
        TradingSession.ended_at.is_(None) | (TradingSession.ended_at >= start)
    )
    sessions = (
        select(
            TradingSession.id,
            TradingSession.account_id,
            TradingSession.realized_pnl,
            TradingSession.status,
        )
        .where(TradingSession.account_id.in_(select(accounts.c.account_id)), traded_today)
        .cte("day_sessions")
    )
    per_session = unrealized_by_session(select(sessions.c.id), "per_session")
    per_account = (
        select(
            sessions.c.account_id,
            func.sum(sessions.c.realized_pnl).label("realized"),
            func.sum(func.coalesce(per_session.c.unrealized, 0)).label("unrealized"),
            func.count().label("sessions"),
            func.count()
            .filter(sessions.c.status.in_([s.value for s in OPEN_STATUSES]))
            .label("open_sessions"),
        )
        .select_from(sessions)
        .outerjoin(per_session, per_session.c.session_id == sessions.c.id)
        .group_by(sessions.c.account_id)
        .subquery("per_account")
    )
    return (
        select(
            accounts.c.account_id,
            accounts.c.daily_loss_limit,
            accounts.c.warned_on,
            accounts.c.breached_on,
            func.coalesce(per_account.c.realized, 0).label("realized"),
            func.coalesce(per_account.c.unrealized, 0).label("unrealized"),
            func.coalesce(per_account.c.sessions, 0).label("sessions"),
            func.coalesce(per_account.c.open_sessions, 0).label("open_sessions"),
        )
        .select_from(accounts)
        .outerjoin(per_account, per_account.c.account_id == accounts.c.account_id)
        .order_by(accounts.c.account_id)
    )
