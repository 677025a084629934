"""The account daily loss limit, checked by the fleet sweep: one statement for all accounts.

Run by shard 0's sweep (accounts span shards). An account at 80 % of its limit is warned once
a day (audit and a notification to the account); one at its limit gets an account kill switch
engaged by the system with end reason ``ACCOUNT_LOSS_LIMIT``: the switch's one statement
closes every open gate of the account, its fan-out workflow ends every open session, and the
account refuses new sessions until an admin re-arms it.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from domain.account_risk import (
    ACCOUNT_LIMIT_ACTOR,
    AccountDay,
    AccountVerdict,
    account_audit_id,
    breach_reason,
)
from domain.kill_switch import KillScope, KillSwitchInput, ScopeKind, kill_switch_workflow_id
from domain.positions import plain_money
from domain.status import EndReason
from store.account_risk import AccountRiskRepository
from store.audit import AuditRepository
from store.kill_switch import KillSwitchRepository, fan_out_of
from store.notifications import NotificationRepository


@dataclass
class AccountCheck:
    """What one check of the accounts did."""

    checked: int = 0
    warned: list[str] = field(default_factory=list)
    breached: list[str] = field(default_factory=list)
    fan_outs: list[KillSwitchInput] = field(default_factory=list)


class AccountLimits:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def check(self, now: datetime) -> AccountCheck:
        """Warn or kill each account whose day's loss calls for it; returns the fan-outs to
        start (after the commit: the gates are closed by then)."""
        result = AccountCheck()
        async with self.sessionmaker() as db:
            days = await AccountRiskRepository(db).days(now)
        result.checked = len(days)
        for day in days:
            verdict = day.verdict()
            if verdict is None:
                continue
            async with self.sessionmaker.begin() as db:
                if verdict is AccountVerdict.BREACH:
                    fan_out = await _breach(db, day)
                    if fan_out is not None:
                        result.breached.append(day.account_id)
                        result.fan_outs.append(fan_out)
                elif await _warn(db, day):
                    result.warned.append(day.account_id)
        return result


async def start_fan_outs(fan_outs: list[KillSwitchInput]) -> int:
    """Start each switch's fan-out from the sweep's activity; returns how many failed (the
    gates stay closed; pressing the account's kill switch again retries)."""
    client, failed = activity.client(), 0
    for fan_out in fan_outs:
        try:
            await client.start_workflow(
                "KillSwitch",
                fan_out,
                id=kill_switch_workflow_id(fan_out.kill_switch_id),
                task_queue=activity.info().task_queue,
                static_summary=f"Kill switch {fan_out.kill_switch_id}: {fan_out.reason}",
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
        except RPCError as err:
            failed += 1
            activity.logger.error(
                "kill switch %d: fan-out not started: %s", fan_out.kill_switch_id, err.message
            )
    return failed


def _figures(day: AccountDay) -> dict[str, Any]:
    return {
        "account_id": day.account_id,
        "day": day.day.isoformat(),
        "loss": plain_money(day.loss),
        "daily_loss_limit": plain_money(day.daily_loss_limit or Decimal(0)),
        "used_pct": round(100 * (day.used or 0), 2),
        "open_sessions": day.open_sessions,
    }


async def _warn(db: AsyncSession, day: AccountDay) -> bool:
    if not await AccountRiskRepository(db).claim(day.account_id, day.day, breach=False):
        return False
    key = f"account:{day.account_id}:warning:{day.day.isoformat()}"
    figures = _figures(day)
    reason = (
        f"daily loss {figures['loss']} is {figures['used_pct']} % of the account's limit "
        f"{figures['daily_loss_limit']}"
    )
    await _announce(db, day, "warning.account_loss", reason, figures, key)
    return True


async def _breach(db: AsyncSession, day: AccountDay) -> KillSwitchInput | None:
    if not await AccountRiskRepository(db).claim(day.account_id, day.day, breach=True):
        return None
    assert day.daily_loss_limit is not None  # a verdict means a limit
    reason = breach_reason(day.loss, day.daily_loss_limit)
    scope = KillScope(kind=ScopeKind.ACCOUNT, value=day.account_id)
    switch, _ = await KillSwitchRepository(db).press(
        scope, reason, ACCOUNT_LIMIT_ACTOR, EndReason.ACCOUNT_LOSS_LIMIT.value
    )
    figures = {**_figures(day), "kill_switch_id": switch.id}
    key = f"account:{day.account_id}:limit:{day.day.isoformat()}"
    await _announce(db, day, "account.loss_limit_reached", reason, figures, key)
    return fan_out_of(switch)


async def _announce(
    db: AsyncSession,
    day: AccountDay,
    kind: str,
    reason: str,
    figures: dict[str, Any],
    key: str,
) -> None:
    """The audit event and the account's notification, under the account's own name."""
    where = account_audit_id(day.account_id)
    details = {k: str(v) for k, v in figures.items()}
    await AuditRepository(db).append(
        session_id=where,
        action=kind,
        actor=ACCOUNT_LIMIT_ACTOR,
        reason=reason,
        details=details,
        dedupe_key=key,
    )
    await NotificationRepository(db).enqueue(
        session_id=where,
        account_id=day.account_id,
        kind=kind,
        payload={**figures, "reason": reason},
        dedupe_key=key,
    )
