"""Short, idempotent calls of the session workflow, run as local activities.

Each regular activity costs the server an activity task and a workflow task; a session's end
alone runs eight back to back, and an expiry wave of a thousand sessions queues them all.
These calls are short writes to our own database (or short HTTP calls with a timeout) and
safe to repeat, so they run inside the worker: a chain of them completes within one or two
workflow tasks.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.policies import LOCAL_RETRY_THRESHOLD

# Histories from before this change scheduled regular activities and must replay as they ran.
# ``patched`` is memoized per run, so this one id covers every call site.
SHORT_CALLS_LOCAL = "short-calls-local"

Owner = TypeVar("Owner")
Arg = TypeVar("Arg")
Result = TypeVar("Result")


async def short_call(
    activity: Callable[[Owner, Arg], Awaitable[Result]],
    arg: Arg,
    *,
    start_to_close_timeout: timedelta,
    retry_policy: RetryPolicy,
) -> Result:
    """Run an activity method locally, or as a regular activity in runs from before the patch.

    The retry policy means the same either way: a bounded one gives up after as many attempts.
    """
    if workflow.patched(SHORT_CALLS_LOCAL):
        return await workflow.execute_local_activity_method(
            activity,
            arg,
            start_to_close_timeout=start_to_close_timeout,
            retry_policy=retry_policy,
            local_retry_threshold=LOCAL_RETRY_THRESHOLD,
        )
    return await workflow.execute_activity_method(
        activity, arg, start_to_close_timeout=start_to_close_timeout, retry_policy=retry_policy
    )
