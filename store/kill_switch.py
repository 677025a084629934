"""The kill switch's rows: engaging a scope closes every open session's gate in one statement.

All SQL of the kill switch is here; the repository never commits. Starts and engagements
serialise on one advisory lock (starts share it, an engagement takes it alone), so a session
either starts before the switch (and its gate is closed by it) or sees the switch and is
refused: none slips between the two.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, literal, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.kill_switch import KillScope, KillSwitchInput, ScopeKind, kill_switch_audit_id
from domain.session import OPEN_STATUSES
from domain.status import is_terminal
from store.audit import AuditRepository
from store.models import AuditEvent, KillSwitch, KillSwitchSession, TradingSession

# pg_advisory_xact_lock key of the kill switch ("KILL" in ASCII).
_KILL_LOCK = 0x4B494C4C
# The winding-down sessions a progress report names; the count is always whole.
WINDING_DOWN_LISTED = 100


@dataclass(frozen=True)
class KillProgress:
    """How far a kill switch's sessions are: ended, still winding down, and the signals."""

    targeted: int
    ended: int
    winding_down: list[str]
    winding_down_count: int
    signalled: int
    signal_failures: dict[str, str]


def _scope_filter(scope: KillScope) -> ColumnElement[bool]:
    if scope.kind is ScopeKind.ACCOUNT:
        return TradingSession.account_id == scope.value
    if scope.kind is ScopeKind.ALGORITHM:
        return TradingSession.algorithm_id == scope.value
    return true()


def _engaged_on(scope: KillScope) -> ColumnElement[bool]:
    return (
        (KillSwitch.rearmed_at.is_(None))
        & (KillSwitch.scope_kind == scope.kind.value)
        & (func.coalesce(KillSwitch.scope_value, "") == (scope.value or ""))
    )


def fan_out_of(switch: KillSwitch) -> KillSwitchInput:
    """The fan-out of a switch: its sessions terminate with its reason, actor, end reason."""
    return KillSwitchInput(
        kill_switch_id=switch.id,
        reason=switch.reason,
        actor=switch.engaged_by,
        end_reason=switch.end_reason,
    )


def scope_of(row: KillSwitch) -> KillScope:
    return KillScope(kind=ScopeKind(row.scope_kind), value=row.scope_value)


class KillSwitchRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def lock_for_start(self) -> None:
        """Taken (shared) by a session's start: an engagement waits for it, and it for one."""
        await self.db.execute(select(func.pg_advisory_xact_lock_shared(_KILL_LOCK)))

    async def lock_for_engage(self) -> None:
        await self.db.execute(select(func.pg_advisory_xact_lock(_KILL_LOCK)))

    async def engaged_covering(self, account_id: str, algorithm_id: str) -> KillSwitch | None:
        """The oldest engaged switch whose scope covers a session of this account/algorithm."""
        covers = (
            (KillSwitch.scope_kind == ScopeKind.ALL.value)
            | (
                (KillSwitch.scope_kind == ScopeKind.ACCOUNT.value)
                & (KillSwitch.scope_value == account_id)
            )
            | (
                (KillSwitch.scope_kind == ScopeKind.ALGORITHM.value)
                & (KillSwitch.scope_value == algorithm_id)
            )
        )
        stmt = (
            select(KillSwitch)
            .where(KillSwitch.rearmed_at.is_(None), covers)
            .order_by(KillSwitch.id)
            .limit(1)
        )
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def engaged_on(self, scope: KillScope) -> KillSwitch | None:
        stmt = select(KillSwitch).where(_engaged_on(scope))
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def press(
        self, scope: KillScope, reason: str, actor: str, end_reason: str | None = None
    ) -> tuple[KillSwitch, bool]:
        """Engage the scope (or find it engaged) and close every open gate in it, under the
        engage lock: what the API's call and the account loss limit both do. (switch, new)"""
        await self.lock_for_engage()
        switch = await self.engaged_on(scope)
        created = switch is None
        if switch is None:
            switch = await self.engage(scope, reason, actor, end_reason)
        await self.close_scope(switch)
        return switch, created

    async def engage(
        self, scope: KillScope, reason: str, actor: str, end_reason: str | None = None
    ) -> KillSwitch:
        """A new engaged switch; the caller holds the engage lock and found none on the scope."""
        stmt = (
            insert(KillSwitch)
            .values(
                scope_kind=scope.kind.value,
                scope_value=scope.value,
                reason=reason,
                engaged_by=actor,
                end_reason=end_reason,
            )
            .returning(KillSwitch)
        )
        row = (await self.db.execute(stmt)).scalar_one()
        await AuditRepository(self.db).append(
            session_id=kill_switch_audit_id(row.id),
            action="kill_switch.engaged",
            actor=actor,
            reason=reason,
            details={"scope": scope.kind.value, "value": scope.value or ""},
            dedupe_key=f"kill-switch:{row.id}:engaged",
        )
        return row

    async def close_scope(self, switch: KillSwitch) -> int:
        """ONE statement: close the gate of every open session in the switch's scope (rows
        locked in id order, as ``FleetRepository.close_gates``), record them as the switch's
        targets and audit each closing. Returns how many sessions the switch now targets."""
        scope, kill_id = scope_of(switch), switch.id
        reason = f"kill switch {kill_id}: {switch.reason}"
        locked = (
            select(TradingSession.id)
            .where(TradingSession.status.in_(list(OPEN_STATUSES)), _scope_filter(scope))
            .order_by(TradingSession.id)
            .with_for_update()
        )
        closed = (
            update(TradingSession)
            .where(TradingSession.id.in_(locked.scalar_subquery()))
            .values(gate_open=False, gate_reason=reason)
            .returning(TradingSession.id, TradingSession.workflow_id)
            .cte("closed")
        )
        targets = (
            insert(KillSwitchSession)
            .from_select(["kill_switch_id", "session_id"], select(literal(kill_id), closed.c.id))
            .on_conflict_do_nothing()
            .returning(KillSwitchSession.session_id)
            .cte("targets")
        )
        audited = (
            insert(AuditEvent)
            .from_select(
                ["session_id", "action", "actor", "reason", "details", "workflow_id", "dedupe_key"],
                select(
                    closed.c.id,
                    literal("gate.closed"),
                    literal(switch.engaged_by),
                    literal(reason),
                    func.jsonb_build_object("kill_switch_id", str(kill_id)),
                    closed.c.workflow_id,
                    literal(f"kill-switch:{kill_id}:gate:") + closed.c.id,
                ),
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .cte("audited")
        )
        stmt = select(func.count()).select_from(targets).add_cte(audited)
        await self.db.execute(stmt)
        total = (
            await self.db.execute(
                select(func.count())
                .select_from(KillSwitchSession)
                .where(KillSwitchSession.kill_switch_id == kill_id)
            )
        ).scalar_one()
        switch.sessions_targeted = total
        await self.db.execute(
            update(KillSwitch).where(KillSwitch.id == kill_id).values(sessions_targeted=total)
        )
        return int(total)

    async def get(self, kill_switch_id: int, *, for_update: bool = False) -> KillSwitch | None:
        stmt = select(KillSwitch).where(KillSwitch.id == kill_switch_id)
        if for_update:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def recent(self, *, engaged_only: bool = False, limit: int = 100) -> Sequence[KillSwitch]:
        stmt = select(KillSwitch).order_by(KillSwitch.id.desc()).limit(limit)
        if engaged_only:
            stmt = stmt.where(KillSwitch.rearmed_at.is_(None))
        return (await self.db.execute(stmt)).scalars().all()

    async def rearm(self, switch: KillSwitch, actor: str, reason: str | None) -> None:
        """Unlock the scope: new sessions in it may start again. Audited."""
        await self.db.execute(
            update(KillSwitch)
            .where(KillSwitch.id == switch.id)
            .values(rearmed_at=func.now(), rearmed_by=actor, rearm_reason=reason)
        )
        await self.db.refresh(switch)
        await AuditRepository(self.db).append(
            session_id=kill_switch_audit_id(switch.id),
            action="kill_switch.rearmed",
            actor=actor,
            reason=reason,
            details={"scope": switch.scope_kind, "value": switch.scope_value or ""},
            dedupe_key=f"kill-switch:{switch.id}:rearmed",
        )

    async def unsignalled(self, kill_switch_id: int) -> list[tuple[str, str]]:
        """(session id, workflow id) of the targets whose workflow has not been told yet."""
        stmt = (
            select(KillSwitchSession.session_id, TradingSession.workflow_id)
            .join(TradingSession, TradingSession.id == KillSwitchSession.session_id)
            .where(
                KillSwitchSession.kill_switch_id == kill_switch_id,
                KillSwitchSession.signalled_at.is_(None),
            )
            .order_by(KillSwitchSession.session_id)
        )
        return [(sid, wid) for sid, wid in (await self.db.execute(stmt)).all()]

    async def record_signals(
        self, kill_switch_id: int, signalled: Sequence[str], failed: Mapping[str, str]
    ) -> None:
        """Two statements at most: the signalled targets stamped, the failures noted."""
        if signalled:
            await self.db.execute(
                update(KillSwitchSession)
                .where(
                    KillSwitchSession.kill_switch_id == kill_switch_id,
                    KillSwitchSession.session_id.in_(list(signalled)),
                )
                .values(signalled_at=func.now(), signal_error=None)
            )
        for session_id, error in failed.items():
            await self.db.execute(
                update(KillSwitchSession)
                .where(
                    KillSwitchSession.kill_switch_id == kill_switch_id,
                    KillSwitchSession.session_id == session_id,
                )
                .values(signal_error=error[:500])
            )

    async def progress(self, kill_switch_id: int) -> KillProgress:
        """Where the switch's sessions are now, from their rows."""
        stmt = (
            select(
                KillSwitchSession.session_id,
                TradingSession.status,
                KillSwitchSession.signalled_at,
                KillSwitchSession.signal_error,
            )
            .join(TradingSession, TradingSession.id == KillSwitchSession.session_id)
            .where(KillSwitchSession.kill_switch_id == kill_switch_id)
            .order_by(KillSwitchSession.session_id)
        )
        rows = (await self.db.execute(stmt)).all()
        winding = [sid for sid, status, _, _ in rows if not is_terminal(status)]
        failures = {sid: err for sid, _, at, err in rows if at is None and err}
        return KillProgress(
            targeted=len(rows),
            ended=len(rows) - len(winding),
            winding_down=winding[:WINDING_DOWN_LISTED],
            winding_down_count=len(winding),
            signalled=sum(1 for _, _, at, _ in rows if at is not None),
            signal_failures=dict(list(failures.items())[:20]),
        )
