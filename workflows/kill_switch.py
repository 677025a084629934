"""The kill switch's fan-out workflow: one per engagement, ``kill-switch-<id>``.

The API closed every gate in the scope with one statement before starting it; this tells each
session's workflow to terminate (one activity, bounded concurrency inside). Its history shows
when every session was reached; the sessions' own histories show their wind-down.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.kill_switch import KillSwitchActivities
    from domain.kill_switch import KillSwitchInput, KillSwitchResult

# Signalling a thousand sessions takes seconds; a heartbeat per signal shows it is alive.
FANOUT_TIMEOUT = timedelta(minutes=5)
FANOUT_HEARTBEAT = timedelta(seconds=30)
# A session whose workflow is not there yet (its start races the switch) is retried for a few
# minutes; past that, the reconciler of the fleet sweep winds down any row left open.
FANOUT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=12,
)


@workflow.defn(name="KillSwitch")
class KillSwitchWorkflow:
    @workflow.run
    async def run(self, input: KillSwitchInput) -> KillSwitchResult:
        return await workflow.execute_activity_method(
            KillSwitchActivities.signal_terminations,
            input,
            start_to_close_timeout=FANOUT_TIMEOUT,
            heartbeat_timeout=FANOUT_HEARTBEAT,
            retry_policy=FANOUT_RETRY,
            summary=f"tell every session of kill switch {input.kill_switch_id} to terminate",
        )
