"""Temporal Schedules of the service, created (or brought up to date) at worker start-up."""

import dataclasses
import logging
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDConflictPolicy

from domain.housekeeping import DEFAULT_PURGE_BATCH, HousekeepingInput
from domain.sweep import SweepInput, sweep_workflow_id
from starter.runtime.settings import Settings
from workflows.housekeeping import HousekeepingWorkflow
from workflows.sweep import FleetSweepWorkflow

log = logging.getLogger(__name__)

# Daily at 03:00 UTC, away from the trading day's busiest hours.
RETENTION_EVERY = timedelta(days=1)
RETENTION_AT = timedelta(hours=3)
# A run missed while Temporal was down still happens when it is back within a day; older
# misses are dropped (the next run purges the same sessions anyway).
RETENTION_CATCHUP = timedelta(days=1)
# A run that has not finished after this is stuck; it ends TIMED_OUT and shows in /jobs/failures.
RETENTION_RUN_TIMEOUT = timedelta(hours=2)


def retention_schedule_id(settings: Settings) -> str:
    """One schedule per deployment: deployments sharing a namespace use distinct task queues."""
    return f"{settings.temporal_task_queue}-retention"


def retention_schedule(settings: Settings) -> Schedule:
    """The retention schedule as the current settings want it."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            HousekeepingWorkflow.run,
            HousekeepingInput(
                retention_days=settings.retention_days, batch_size=DEFAULT_PURGE_BATCH
            ),
            id=retention_schedule_id(settings),
            task_queue=settings.temporal_task_queue,
            execution_timeout=RETENTION_RUN_TIMEOUT,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=RETENTION_EVERY, offset=RETENTION_AT)]
        ),
        # Never two purges at once: a run still going when the next is due makes it skip.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=RETENTION_CATCHUP),
        state=ScheduleState(note="managed by the worker at start-up; edits are overwritten"),
    )


async def ensure_schedules(client: Client, settings: Settings) -> None:
    """Create the service's schedules, or update existing ones to the current settings.

    Safe to run from every worker at every start: the schedule id is fixed, so a second
    create fails with ``ScheduleAlreadyRunningError`` and becomes an update instead. An
    update keeps the schedule's state, so a schedule an operator paused stays paused.
    """
    schedule_id = retention_schedule_id(settings)
    wanted = retention_schedule(settings)
    try:
        await client.create_schedule(schedule_id, wanted)
        log.info("created schedule %s", schedule_id)
    except ScheduleAlreadyRunningError:

        def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(
                schedule=dataclasses.replace(wanted, state=current.description.schedule.state)
            )

        await client.get_schedule_handle(schedule_id).update(keep_state)
        log.info("updated schedule %s", schedule_id)


async def ensure_sweeps(client: Client, settings: Settings) -> None:
    """Start the fleet sweep of every shard unless it runs already; stop the sweeps of
    another shard count, so each session is swept by exactly one shard.

    Safe from every worker at every start: a running sweep's id makes a second start a
    no-op (``USE_EXISTING``).
    """
    queue, shards = settings.temporal_task_queue, settings.sweep_shards
    wanted = {sweep_workflow_id(queue, shard, shards) for shard in range(shards)}
    for shard in range(shards):
        await client.start_workflow(
            FleetSweepWorkflow.run,
            SweepInput(
                shard=shard,
                shards=shards,
                interval_seconds=settings.check_interval_seconds,
                snapshot_every_seconds=settings.performance_interval_seconds,
                reconcile_every_seconds=settings.reconcile_interval_seconds,
                reconcile_min_age_seconds=settings.reconcile_min_age_seconds,
            ),
            id=sweep_workflow_id(queue, shard, shards),
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"Fleet sweep, shard {shard + 1} of {shards}",
        )
    running = client.list_workflows(
        f"WorkflowType = 'FleetSweep' AND ExecutionStatus = 'Running' AND TaskQueue = '{queue}'"
    )
    async for execution in running:
        if execution.id not in wanted:
            await client.get_workflow_handle(execution.id).terminate("the shard count changed")
            log.info("stopped sweep %s: the shard count is now %d", execution.id, shards)
