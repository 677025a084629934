"""The housekeeping workflow: started by a Temporal Schedule, it purges old sessions' data."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.housekeeping import HousekeepingActivities
    from domain.housekeeping import HousekeepingInput, HousekeepingResult, PurgeInput

# One batch deletes the rows of a few hundred sessions; a minute is generous, and an attempt
# that hangs past it is retried instead of blocking the run.
PURGE_TIMEOUT = timedelta(minutes=2)
# The database may be briefly away; a few spaced attempts, then the run fails visibly (it shows
# in GET /jobs/failures) and the next scheduled run starts over from where this one stopped.
PURGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=6,
)


@workflow.defn(name="Housekeeping")
class HousekeepingWorkflow:
    @workflow.run
    async def run(self, input: HousekeepingInput) -> HousekeepingResult:
        """Purge batch after batch until one comes back short, then report the totals."""
        cutoff = input.cutoff or workflow.now() - timedelta(days=input.retention_days)
        totals = input.carried or HousekeepingResult(cutoff=cutoff)
        while True:
            batch = await workflow.execute_activity_method(
                HousekeepingActivities.purge_ended_sessions,
                PurgeInput(cutoff=cutoff, limit=input.batch_size),
                start_to_close_timeout=PURGE_TIMEOUT,
                retry_policy=PURGE_RETRY,
                summary=f"purge batch {totals.batches + 1}: up to {input.batch_size} sessions "
                f"ended before {cutoff:%Y-%m-%d %H:%M} UTC",
            )
            totals.batches += 1
            totals.sessions_purged += batch.sessions_purged
            totals.fills_deleted += batch.fills_deleted
            totals.marks_deleted += batch.marks_deleted
            totals.positions_deleted += batch.positions_deleted
            if batch.sessions_purged < input.batch_size:
                break
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    input.model_copy(update={"cutoff": cutoff, "carried": totals})
                )
        workflow.set_current_details(
            f"purged {totals.sessions_purged} sessions in {totals.batches} batches"
        )
        workflow.logger.info(
            "housekeeping purged %d sessions in %d batches",
            totals.sessions_purged,
            totals.batches,
        )
        return totals
