"""An account's limits across its sessions, and its figures of the day (issue 16, item 6)."""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.account_risk import AccountDay, account_audit_id
from domain.kill_switch import KillScope, ScopeKind
from domain.positions import plain_money
from starter.api.risk_schemas import AccountLimitsBody, AccountRiskOut
from store.account_risk import AccountRiskRepository
from store.audit import AuditRepository
from store.kill_switch import KillSwitchRepository


class AccountService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def set_limits(self, account_id: str, request: AccountLimitsBody) -> AccountRiskOut:
        """Set or clear the daily loss limit; audited (``account.limits_changed``). The next
        sweep measures the day against it."""
        async with self.sessionmaker.begin() as db:
            repo = AccountRiskRepository(db)
            before = await repo.get(account_id)
            old = before.daily_loss_limit if before is not None else None
            await repo.set_daily_loss_limit(account_id, request.daily_loss_limit, request.actor)
            await AuditRepository(db).append(
                session_id=account_audit_id(account_id),
                action="account.limits_changed",
                actor=request.actor,
                reason=request.reason,
                details={
                    "from": "" if old is None else plain_money(old),
                    "to": ""
                    if request.daily_loss_limit is None
                    else plain_money(request.daily_loss_limit),
                },
            )
        return await self.risk(account_id)

    async def risk(self, account_id: str, now: datetime | None = None) -> AccountRiskOut:
        """The account's figures of the UTC day (one statement), limit or not."""
        async with self.sessionmaker() as db:
            (day,) = await AccountRiskRepository(db).days(now or datetime.now(UTC), account_id)
            scope = KillScope(kind=ScopeKind.ACCOUNT, value=account_id)
            switch = await KillSwitchRepository(db).engaged_on(scope)
        return _out(day, switch.id if switch is not None else None)


def _out(day: AccountDay, kill_switch_id: int | None) -> AccountRiskOut:
    used = day.used
    return AccountRiskOut(
        account_id=day.account_id,
        day=day.day,
        daily_loss_limit=day.daily_loss_limit,
        realized_pnl=day.realized,
        unrealized_pnl=day.unrealized,
        loss=day.loss,
        used_pct=None if used is None else round(100 * used, 2),
        sessions=day.sessions,
        open_sessions=day.open_sessions,
        warned=day.warned,
        limit_reached=day.breached,
        kill_switch_id=kill_switch_id,
    )
