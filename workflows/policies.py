"""Timeouts and retry policies of the session workflow's activity calls, and why."""

from datetime import timedelta

from temporalio.common import RetryPolicy

# A check is one indexed read and a write of the session's row; if it takes longer the
# database is in trouble and the attempt is retried rather than left hanging.
CHECK_TIMEOUT = timedelta(seconds=10)
# Writes of the session's own row; short, but they may wait on the row lock of a racing fill.
WRITE_TIMEOUT = timedelta(seconds=30)
# The database may be down for a while: keep retrying with backoff, never give up on a
# session (business refusals are non-retryable ApplicationErrors and stop at once).
DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
# A local activity backs off inside the worker only up to this long; a longer backoff is a
# durable timer in the workflow's history. So a retrying call does not hold its workflow task
# open for minutes, a worker restart keeps the attempt count (a bounded policy still gives up
# on time), and the time-skipping test server can skip the wait. Only failures pay for it.
LOCAL_RETRY_THRESHOLD = timedelta(seconds=2)
# Termination steps talk to brokers and webhooks as well as our database. Each step has its
# own budget of STEP_ATTEMPTS attempts, backing off from 1 s to 60 s (about five minutes in
# all): past that a person should look, and the session goes CLEANUP_FAILED until
# retry_cleanup. The call that runs several steps makes one attempt; the workflow retries
# from the step that failed, after a durable timer, counting that step's attempts alone, so
# a flaky early step cannot use up a later step's budget.
STEP_TIMEOUT = timedelta(seconds=30)
STEP_ATTEMPTS = 10
STEP_BACKOFF_FIRST = timedelta(seconds=1)
STEP_BACKOFF_MAX = timedelta(seconds=60)
ONE_ATTEMPT = RetryPolicy(maximum_attempts=1)


def step_backoff(failures: int) -> timedelta:
    """How long to wait before a step's next attempt, after ``failures`` failed ones."""
    doubled: timedelta = STEP_BACKOFF_FIRST * 2 ** (failures - 1)
    return min(STEP_BACKOFF_MAX, doubled)


# Activities behind an operator's update or signal (a limit or gate change, an audit line).
# The operator waits for the answer and the session's end must not wait on them for ever:
# a few attempts, about half a minute in all, then the caller hears the error and an
# operator alert is raised. Refusals (bad values, data errors) stop at the first attempt.
HANDLER_TIMEOUT = timedelta(seconds=10)
HANDLER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=3,
)
# How long the end of a session (or a continue-as-new) waits for running handlers. Longer
# than a handler's whole retry budget above, so an honest handler finishes; a stuck one
# cannot hold a session past its deadline or its termination by more than this.
HANDLERS_GRACE = timedelta(seconds=45)
# Alerts and audit lines about a handler that gave up: best effort, never blocking the end.
BEST_EFFORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=3,
)
