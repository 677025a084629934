"""The emergency kill switch: close every gate in a scope at once, then end every session.

``engage`` runs one transaction: the engage lock (starts wait for it), the switch's row, and
one statement closing the gate of every open session in the scope (audited). Only after it
commits does the fan-out workflow tell each session's workflow to terminate. A second press
on an engaged scope finds the same switch, closes what is open again and reruns the fan-out:
the way to retry it when Temporal was unreachable.
"""

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from domain.kill_switch import KillScope, KillSwitchInput, kill_switch_workflow_id
from starter.api.risk_schemas import KillSwitchBody, KillSwitchOut, RearmBody
from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.services.errors import ConflictError, NotFoundError
from store.kill_switch import KillSwitchRepository, fan_out_of, scope_of
from store.models import KillSwitch
from workflows.kill_switch import KillSwitchWorkflow

log = logging.getLogger(__name__)


class KillSwitchEngagedError(ConflictError):
    """A new session in a locked scope: refused until an admin re-arms the switch."""

    code = "kill_switch_engaged"


class KillSwitchService:
    def __init__(
        self,
        client: Client,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.client = client
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.metrics = metrics

    async def engage(self, request: KillSwitchBody) -> tuple[KillSwitchOut, bool]:
        """Close every gate in the scope now, then start the fan-out; (switch, created)."""
        scope = request.scope.to_scope()
        async with self.sessionmaker.begin() as db:
            switch, created = await KillSwitchRepository(db).press(
                scope, request.reason, request.actor
            )
            fan_out = fan_out_of(switch)
        self.metrics.kill_switch_engagements.labels(scope.kind.value).inc()
        started = await self._fan_out(fan_out)
        kill_id = switch.id
        out = await self.get(kill_id)
        out.fanout_started = started
        return out, created

    async def _fan_out(self, input: KillSwitchInput) -> bool:
        try:
            await self.client.start_workflow(
                KillSwitchWorkflow.run,
                input,
                id=kill_switch_workflow_id(input.kill_switch_id),
                task_queue=self.settings.temporal_task_queue,
                static_summary=f"Kill switch {input.kill_switch_id}: {input.reason}",
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
        except RPCError as err:
            # The gates are closed and stay closed; pressing again retries the fan-out.
            log.error("kill switch %d: fan-out not started: %s", input.kill_switch_id, err.message)
            return False
        return True

    async def get(self, kill_switch_id: int) -> KillSwitchOut:
        async with self.sessionmaker() as db:
            repo = KillSwitchRepository(db)
            switch = await repo.get(kill_switch_id)
            if switch is None:
                raise NotFoundError(f"kill switch {kill_switch_id} not found")
            return await _out(repo, switch)

    async def list_switches(self, *, engaged_only: bool = False) -> list[KillSwitchOut]:
        async with self.sessionmaker() as db:
            repo = KillSwitchRepository(db)
            return [await _out(repo, s) for s in await repo.recent(engaged_only=engaged_only)]

    async def rearm(self, kill_switch_id: int, request: RearmBody) -> KillSwitchOut:
        """Unlock the scope; a switch re-armed already is a 409."""
        async with self.sessionmaker.begin() as db:
            repo = KillSwitchRepository(db)
            switch = await repo.get(kill_switch_id, for_update=True)
            if switch is None:
                raise NotFoundError(f"kill switch {kill_switch_id} not found")
            if switch.rearmed_at is not None:
                raise ConflictError(f"kill switch {kill_switch_id} was re-armed already")
            await repo.rearm(switch, request.actor, request.reason)
        return await self.get(kill_switch_id)


async def refuse_if_engaged(db: AsyncSession, account_id: str, algorithm_id: str) -> None:
    """Called by a session's start in its transaction: a locked scope refuses it (409)."""
    repo = KillSwitchRepository(db)
    await repo.lock_for_start()
    switch = await repo.engaged_covering(account_id, algorithm_id)
    if switch is not None:
        raise KillSwitchEngagedError(
            f"kill switch {switch.id} is engaged on {scope_of(switch).describe()} "
            f"({switch.reason}); an admin must re-arm it first",
            field="account_id" if switch.scope_kind == "account" else None,
        )


async def _out(repo: KillSwitchRepository, switch: KillSwitch) -> KillSwitchOut:
    progress = await repo.progress(switch.id)
    scope: KillScope = scope_of(switch)
    return KillSwitchOut(
        id=switch.id,
        scope=scope,
        reason=switch.reason,
        engaged_by=switch.engaged_by,
        engaged_at=switch.engaged_at,
        engaged=switch.rearmed_at is None,
        rearmed_at=switch.rearmed_at,
        rearmed_by=switch.rearmed_by,
        sessions_targeted=progress.targeted,
        sessions_ended=progress.ended,
        sessions_winding_down=progress.winding_down_count,
        winding_down=progress.winding_down,
        signals_sent=progress.signalled,
        signal_failures=progress.signal_failures,
    )
