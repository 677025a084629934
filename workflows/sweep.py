"""The fleet sweep: one workflow per shard checks every open session's loss every interval.

A durable timer loop, continued as new every few hundred sweeps. Each sweep is one activity
(one statement for the shard); a sweep that fails is retried by Temporal, and one that gives
up or runs late is caught up by the next, never by a burst.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.sweep import SweepActivities
    from domain.sweep import SweepInput, SweepShardInput, next_due

# A sweep is one statement and a few signals; retries back off quickly so the next sweep
# is not missed, and give up within one interval (the next sweep sees the same data).
SWEEP_TIMEOUT = timedelta(seconds=60)
SWEEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)


@workflow.defn(name="FleetSweep")
class FleetSweepWorkflow:
    @workflow.run
    async def run(self, input: SweepInput) -> None:
        interval = timedelta(seconds=input.interval_seconds)
        snapshot_every = timedelta(seconds=input.snapshot_every_seconds)
        due = input.next_due or workflow.now()
        snapshot_due = input.next_snapshot_due or workflow.now() + snapshot_every
        reconcile_every = timedelta(seconds=input.reconcile_every_seconds)
        reconcile_due = input.next_reconcile_due or workflow.now() + reconcile_every
        shard = f"shard {input.shard + 1}/{input.shards}"
        for _ in range(input.sweeps_per_run):
            wait = due - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait, summary=f"{shard}: next sweep {due:%H:%M:%S} UTC")
            snapshots = due >= snapshot_due
            reconcile = due >= reconcile_due
            extras = " + snapshots" * snapshots + " + reconcile" * reconcile
            try:
                await workflow.execute_activity_method(
                    SweepActivities.sweep_shard,
                    SweepShardInput(
                        shard=input.shard,
                        shards=input.shards,
                        due_at=due,
                        snapshots=snapshots,
                        reconcile=reconcile,
                        reconcile_min_age_seconds=input.reconcile_min_age_seconds,
                    ),
                    start_to_close_timeout=SWEEP_TIMEOUT,
                    schedule_to_close_timeout=max(interval, SWEEP_TIMEOUT),
                    retry_policy=SWEEP_RETRY,
                    summary=f"sweep {shard} due {due:%H:%M:%S} UTC{extras}",
                )
            except ActivityError as err:
                workflow.logger.error("sweep of %s due %s gave up: %s", shard, due, err.cause)
            if snapshots:
                snapshot_due = next_due(snapshot_due, workflow.now(), snapshot_every)
            if reconcile:
                reconcile_due = next_due(reconcile_due, workflow.now(), reconcile_every)
            due = next_due(due, workflow.now(), interval)
        workflow.continue_as_new(
            input.model_copy(
                update={
                    "next_due": due,
                    "next_snapshot_due": snapshot_due,
                    "next_reconcile_due": reconcile_due,
                }
            )
        )
