"""The fleet sweep's activity: every open session of a shard checked in one statement.

Every minute it also reconciles the shard's rows with their workflows (``reconcile.py``).

Only the sessions that need their workflow hear of it (a limit reached, a warning due, a
LossUsedPct that moved); a breach closes the session's gate in the same transaction that
found it, before its workflow winds it down.
"""

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.service import RPCError

from activities.account_limits import AccountCheck, AccountLimits, start_fan_outs
from activities.broker import Broker, PaperBroker, RearmsInBulk
from activities.notifications import announce_alert
from activities.performance import PerformanceActivities
from activities.reconcile import Reconciler
from activities.session import DATABASE_OUTAGE_ALERT_AFTER
from domain.session import workflow_id_for
from domain.session_messages import CheckNowInput, SnapshotInput
from domain.sweep import CheckSource, SweepResult, SweepShardInput, WakeReason
from starter.runtime.metrics import Metrics
from store.alerts import AlertRepository
from store.fleet import FleetRepository
from store.performance import PerformanceRepository

# Signals in flight at once: a flash crash may wake a thousand sessions of one shard.
SIGNAL_CONCURRENCY = 64
BREACH_GATE_REASON = "loss limit reached (fleet sweep)"
# A session woken this recently (by a fill or mark) needs no signal from the sweep too.
WAKE_WINDOW = timedelta(seconds=1)


class SweepActivities:
    """Built once per worker; signals through the worker's own Temporal client."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        performance: PerformanceActivities,
        metrics: Metrics | None = None,
        *,
        outage_alert_after: timedelta = DATABASE_OUTAGE_ALERT_AFTER,
        max_session_seconds: float = 7 * 24 * 3600.0,
        broker: Broker | None = None,
        cancel_after_seconds: float | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.performance = performance
        self.metrics = metrics or Metrics()
        self.outage_alert_after = outage_alert_after
        self.accounts = AccountLimits(sessionmaker)
        self.broker = broker or PaperBroker(sessionmaker)
        self.cancel_after_seconds = cancel_after_seconds
        self.reconciler = Reconciler(
            sessionmaker, self.metrics, max_session_seconds=max_session_seconds
        )

    @activity.defn
    async def sweep_shard(self, input: SweepShardInput) -> SweepResult:
        started = time.monotonic()
        info = activity.info()
        lateness = max(0.0, (datetime.now(UTC) - input.due_at).total_seconds())
        if info.attempt == 1:
            self.metrics.check_lateness.observe(lateness)
        outage = datetime.now(UTC) - info.scheduled_time if info.attempt > 1 else timedelta(0)
        if outage > self.outage_alert_after:
            activity.logger.error(
                "sweep of shard %d/%d failing for %.0f s (attempt %d)",
                input.shard + 1,
                input.shards,
                outage.total_seconds(),
                info.attempt,
            )
        async with self.sessionmaker.begin() as db:
            fleet = FleetRepository(db)
            losses = await fleet.sweep_losses(input.shard, input.shards)
            wake = {row.session_id: reason for row, reason in losses.to_wake()}
            breached = [sid for sid, reason in wake.items() if reason is WakeReason.LIMIT]
            closed: set[str] = set()
            if breached:
                # Named by the sweep, so a retried sweep audits each closing once.
                cause = f"sweep:{input.shard}/{input.shards}:{input.due_at.isoformat()}"
                closed = set(await fleet.close_gates(breached, BREACH_GATE_REASON, cause=cause))
            # Not a session woken a moment ago by a fill or mark, nor a limit signalled already.
            claimed = set(
                await fleet.claim_wakes(wake, datetime.now(UTC), WAKE_WINDOW, CheckSource.SWEEP)
            )
            wake = {sid: reason for sid, reason in wake.items() if sid in claimed}
            await fleet.record_sweep(
                input.shard,
                input.shards,
                due_at=input.due_at,
                swept_at=datetime.now(UTC),
                checked=losses.checked,
                signalled=len(wake),
            )
            alert_key = None
            if outage > self.outage_alert_after:
                alert_key = await _raise_outage_alert(db, input, info.scheduled_time, outage)
        if alert_key is not None:
            await announce_alert(self.sessionmaker, alert_key)
        failed = await self._wake(wake, closed)
        accounts = await self._accounts(input)
        snapshots = await self._snapshots(input) if input.snapshots else 0
        repairs: dict[str, int] = {}
        if input.reconcile:
            min_age = timedelta(seconds=input.reconcile_min_age_seconds)
            repairs = await self.reconciler.reconcile(input.shard, input.shards, min_age)
        self.metrics.checks.labels(CheckSource.SWEEP.value).inc(losses.checked)
        woken: dict[str, int] = {}
        for reason in wake.values():
            woken[reason.value] = woken.get(reason.value, 0) + 1
            self.metrics.sweep_signals.labels(reason.value).inc()
        self.metrics.sweep_duration.observe(time.monotonic() - started)
        return SweepResult(
            checked=losses.checked,
            woken=woken,
            gates_closed=len(closed),
            signals_failed=failed,
            snapshots=snapshots,
            repairs=repairs,
            lateness_seconds=round(lateness, 3),
            accounts_warned=accounts.warned,
            accounts_killed=accounts.breached,
        )

    async def _accounts(self, input: SweepShardInput) -> AccountCheck:
        """Accounts span shards: shard 0 checks every account with a daily loss limit, in one
        statement, and starts the fan-out of any account kill switch it engaged."""
        if input.shard != 0:
            return AccountCheck()
        await self._rearm_dead_man()
        accounts = await self.accounts.check(datetime.now(UTC))
        await start_fan_outs(accounts.fan_outs)
        return accounts

    async def _rearm_dead_man(self) -> None:
        """Push back the broker's dead-man's switch of every account with an open session
        (one statement at the paper broker). A failure is logged, not retried: the next
        sweep re-arms well within the timeout."""
        seconds = self.cancel_after_seconds
        if seconds is None:  # not armed by this deployment
            return
        try:
            if isinstance(self.broker, RearmsInBulk):
                await self.broker.cancel_all_after_open_accounts(seconds)
                return
            async with self.sessionmaker() as db:
                accounts = await FleetRepository(db).accounts_with_open_sessions()
            for account_id in accounts:
                await self.broker.cancel_all_after(account_id, seconds)
        except Exception:  # a broker's outage must not fail the sweep of the losses
            activity.logger.exception("the broker's dead-man's switch was not re-armed")

    async def _wake(self, wake: dict[str, WakeReason], closed: set[str]) -> int:
        """Signal each session that needs its workflow; returns how many signals failed.

        A failed signal is not retried here: the data is in the store, and the next sweep
        finds the same session again (its workflow did not publish anything new).
        """
        client = activity.client()
        gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)

        async def signal(session_id: str, reason: WakeReason) -> bool:
            request = CheckNowInput(
                source=CheckSource.SWEEP.value,
                reason=reason.value,
                gate_closed=session_id in closed,
            )
            async with gate:
                try:
                    handle = client.get_workflow_handle(workflow_id_for(session_id))
                    await handle.signal("check_now", request)
                except RPCError as err:
                    activity.logger.warning("sweep could not wake %s: %s", session_id, err.message)
                    return False
            return True

        results = await asyncio.gather(*(signal(sid, reason) for sid, reason in wake.items()))
        return results.count(False)

    async def _snapshots(self, input: SweepShardInput) -> int:
        """Periodic performance snapshots of the shard's sessions that traded since their
        last one; the final snapshot is a termination step."""
        async with self.sessionmaker() as db:
            due = await PerformanceRepository(db).sessions_due_periodic(input.shard, input.shards)
        for session_id in due:
            await self.performance.record_snapshot(
                SnapshotInput(session_id=session_id, kind="periodic", taken_at=input.due_at)
            )
        return len(due)


async def _raise_outage_alert(
    db: AsyncSession, input: SweepShardInput, first_scheduled: datetime, outage: timedelta
) -> str | None:
    """One alert per outage, named by the sweep it held up, for an operator to look at;
    its dedupe key when it is new."""
    message = (
        f"database unreachable for {outage.total_seconds():.0f} s: the sweep of shard "
        f"{input.shard + 1}/{input.shards} due at {input.due_at.isoformat()} succeeded only then"
    )
    key = f"sweep:{input.shard}/{input.shards}:database_outage:{first_scheduled.isoformat()}"
    raised = await AlertRepository(db).raise_alert(
        kind="database_outage", message=message, session_id=None, dedupe_key=key
    )
    if raised:
        activity.logger.error(message)
    return key if raised else None
