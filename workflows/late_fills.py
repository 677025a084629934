"""The follow-up of an ended session's late fills, and how it is started.

A late fill after the session ended can leave a position open. This small workflow, one per
session at a time (``late-fills-<session id>``), flattens it again through the broker,
settles the difference with the account's portfolio, brings the final performance snapshot
up to date and announces each late fill (``session.late_fill``). The API starts it when it
records such a fill; the reconciler starts it for every ended session a late fill left open
or unannounced, so a start that was lost still happens within one reconciliation interval.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy

with workflow.unsafe.imports_passed_through():
    from activities.late_fills import LateFillActivities
    from activities.notifications import NotificationActivities
    from domain.late_fills import LateFillsInput, LateFillsResult, late_fill_workflow_id
    from domain.session_messages import NotificationRef
    from workflows.policies import DATABASE_RETRY

LATE_FILLS_WORKFLOW = "LateFills"
# A flatten through the broker and a few writes; a stuck attempt is retried.
FOLLOW_UP_TIMEOUT = timedelta(seconds=60)
# The broker or the database may be down for a while: about ten minutes of attempts, then
# the run fails and the reconciler starts a new one at its next pass (the state it reads
# says what is still to do).
FOLLOW_UP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=15,
)
# Handing a notification to its delivery workflow: our database and Temporal only.
HAND_OVER_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=LATE_FILLS_WORKFLOW)
class LateFillsWorkflow:
    @workflow.run
    async def run(self, input: LateFillsInput) -> LateFillsResult:
        result = await workflow.execute_activity_method(
            LateFillActivities.settle_late_fills,
            input,
            start_to_close_timeout=FOLLOW_UP_TIMEOUT,
            retry_policy=FOLLOW_UP_RETRY,
            summary=f"flatten again, settle, final snapshot, announce: {input.session_id}",
        )
        for notification_id in result.notification_ids:
            await workflow.execute_activity_method(
                NotificationActivities.start_delivery,
                NotificationRef(notification_id=notification_id),
                start_to_close_timeout=HAND_OVER_TIMEOUT,
                retry_policy=DATABASE_RETRY,
                summary=f"deliver session.late_fill {notification_id}",
            )
        return result


async def start_late_fill_follow_up(client: Client, session_id: str, task_queue: str) -> None:
    """Start the session's follow-up, or leave the running one be: it reads the state as it
    runs, and a position it did not see reopened is the reconciler's to find next."""
    await client.start_workflow(
        LATE_FILLS_WORKFLOW,
        LateFillsInput(session_id=session_id),
        id=late_fill_workflow_id(session_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"Session {session_id}: late fills after its end",
    )
