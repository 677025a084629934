"""The kill switch's fan-out: every session it closed is told to terminate, in parallel.

The gates were closed by the API's statement already; this only ends the sessions. Each
session's workflow gets the lenient ``request_termination`` signal with the reason and the
actor (its audit trail records both). A target is stamped once signalled, so a retried
activity or a second press signals only those not reached yet.
"""

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from domain.kill_switch import KillSwitchInput, KillSwitchResult
from starter.runtime.metrics import Metrics
from store.kill_switch import KillSwitchRepository

# Signals in flight at once: 1000 sessions are told in about a second on one worker.
SIGNAL_CONCURRENCY = 64
FAILURES_REPORTED = 20


class KillSwitchActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], metrics: Metrics | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.metrics = metrics or Metrics()

    @activity.defn
    async def signal_terminations(self, input: KillSwitchInput) -> KillSwitchResult:
        """Signal every target not signalled yet; raise (retryable) if some could not be."""
        async with self.sessionmaker() as db:
            targets = await KillSwitchRepository(db).unsignalled(input.kill_switch_id)
        client = activity.client()
        gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)
        payload = {"reason": f"kill switch: {input.reason}", "actor": input.actor}
        if input.end_reason is not None:
            payload["end_reason"] = input.end_reason

        async def signal(session_id: str, workflow_id: str) -> str | None:
            async with gate:
                try:
                    handle = client.get_workflow_handle(workflow_id)
                    await handle.signal("request_termination", payload)
                except RPCError as err:
                    return err.message or str(err.status)
            activity.heartbeat(session_id)
            return None

        outcomes = await asyncio.gather(*(signal(sid, wid) for sid, wid in targets))
        failed = {sid: err for (sid, _), err in zip(targets, outcomes, strict=True) if err}
        signalled = [sid for (sid, _), err in zip(targets, outcomes, strict=True) if err is None]
        async with self.sessionmaker.begin() as db:
            await KillSwitchRepository(db).record_signals(input.kill_switch_id, signalled, failed)
        self.metrics.kill_switch_signals.labels("sent").inc(len(signalled))
        self.metrics.kill_switch_signals.labels("failed").inc(len(failed))
        if failed:
            # A workflow not started yet (a start racing the switch) or Temporal unreachable:
            # the retry signals only these.
            raise ApplicationError(
                f"{len(failed)} of {len(targets)} sessions not reached yet",
                {k: failed[k] for k in sorted(failed)[:FAILURES_REPORTED]},
                type="KillSwitchSignalsFailed",
            )
        return KillSwitchResult(signalled=len(signalled))
