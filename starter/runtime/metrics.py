"""The project's own Prometheus series, and the activity interceptor that feeds some of them.

One :class:`Metrics` per process, built by whoever owns the process (``worker.py``, the API)
and handed to what feeds it. Each instance has its own registry, so tests and several
workers in one process never collide. Workflows cannot touch these (replays would count
twice): the workflow side feeds them through its activities.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

# From a prompt check to one that is a tick late (the loop period is 30 s by default).
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# A breach should halt trading within seconds; minutes mean something is badly wrong.
HALT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)

# The background jobs the 99.9 % success-rate objective counts, by the activity that is one.
JOB_ACTIVITIES: Mapping[str, str] = {
    "check_session": "check",
    "sweep_shard": "sweep",
    "run_steps": "termination",
    "deliver_webhook": "notification",
    "purge_ended_sessions": "housekeeping",
}
JOB_KINDS = tuple(dict.fromkeys(JOB_ACTIVITIES.values()))
# success: done; failure: gave up (non-retryable, or its last attempt); retry: will be retried.
JOB_OUTCOMES = ("success", "failure", "retry")
SLO_TARGET = 0.999


class Metrics:
    """Every series the service exports itself (the Temporal SDK's come from its runtime)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sessions_active = Gauge(
            "trading_sessions_active",
            "Sessions not yet ended, by status, as counted in the database at scrape time.",
            ["status"],
            registry=r,
        )
        self.checks = Counter(
            "trading_session_checks",
            "Loss checks of sessions, by who made them: the fleet sweep (one per session "
            "swept) or the session's own workflow (woken by a fill, a mark or the sweep).",
            ["source"],
            registry=r,
        )
        self.check_lateness = Histogram(
            "trading_check_lateness_seconds",
            "How late a fleet sweep started after it was due.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.sweep_duration = Histogram(
            "trading_sweep_duration_seconds",
            "How long one sweep of a shard took (its one statement and its signals).",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.reconcile_repairs = Counter(
            "trading_reconcile_repairs",
            "Sessions the reconciler mended, by kind (started, start_failed, orphaned, overdue).",
            ["kind"],
            registry=r,
        )
        self.sweep_signals = Counter(
            "trading_sweep_signals",
            "Session workflows the fleet sweep woke, by why (limit, warning, moved).",
            ["reason"],
            registry=r,
        )
        self.ingest_checks = Counter(
            "trading_ingest_checks",
            "Loss checks made by the API as it records a fill or mark, by source and by "
            "whether the loss woke the session's workflow (woke) or not (quiet).",
            ["source", "outcome"],
            registry=r,
        )
        self.warnings = Counter(
            "trading_session_warnings",
            "Warnings sent (80 % of time or loss by default), by kind.",
            ["kind"],
            registry=r,
        )
        self.terminations = Counter(
            "trading_session_terminations", "Sessions ended, by reason.", ["reason"], registry=r
        )
        self.breach_to_halt = Histogram(
            "trading_breach_to_halt_seconds",
            "From the check that saw a loss breach to the algorithm being halted.",
            buckets=HALT_BUCKETS,
            registry=r,
        )
        self.activity_failures = Counter(
            "trading_activity_failures",
            "Failed activity attempts, by activity type and error type.",
            ["activity_type", "error_type"],
            registry=r,
        )
        self.housekeeping_sessions_purged = Counter(
            "trading_housekeeping_sessions_purged",
            "Ended sessions whose fills, marks and positions housekeeping removed.",
            registry=r,
        )
        self.housekeeping_rows_deleted = Counter(
            "trading_housekeeping_rows_deleted",
            "Rows housekeeping removed, by table.",
            ["table"],
            registry=r,
        )
        # Risk controls (issue 16).
        self.order_refusals = Counter(
            "trading_order_refusals",
            "Orders the pre-trade checks refused, by reason code (domain.risk.Refusal).",
            ["reason"],
            registry=r,
        )
        self.kill_switch_signals = Counter(
            "trading_kill_switch_signals",
            "Termination signals the kill switch's fan-out sent, by outcome (sent, failed).",
            ["outcome"],
            registry=r,
        )
        self.kill_switch_engagements = Counter(
            "trading_kill_switch_engagements",
            "Kill switch presses, by scope kind (account, algorithm, all).",
            ["scope"],
            registry=r,
        )
        # Load: CPU seconds, resident memory, open fds of this process (process_*).
        ProcessCollector(registry=r)
        self.jobs = Counter(
            "trading_jobs",
            "Background jobs (check, sweep, termination, notification, housekeeping) by "
            "outcome: success, failure (gave up) or retry (an attempt failed, another follows).",
            ["kind", "outcome"],
            registry=r,
        )
        for kind in JOB_KINDS:
            for outcome in JOB_OUTCOMES:
                self.jobs.labels(kind, outcome)
        self.activities_in_flight = Gauge(
            "trading_worker_activities_in_flight",
            "Activities this worker process is running now, by activity type.",
            ["activity_type"],
            registry=r,
        )
        # Fed by the API at each scrape, from the database and describe-task-queue.
        self.alerts_total = DatabaseCounter(
            "trading_alerts", "Alerts raised, by kind (counted in the database).", "kind"
        )
        r.register(self.alerts_total)
        self.alerts_open = Gauge(
            "trading_alerts_open",
            "Alerts no operator acknowledged yet, by kind.",
            ["kind"],
            registry=r,
        )
        self.backlog = Gauge(
            "trading_task_queue_backlog",
            "Tasks waiting on the task queue (approximate, from describe-task-queue).",
            ["task_type"],
            registry=r,
        )
        self.backlog_age = Gauge(
            "trading_task_queue_backlog_age_seconds",
            "Age of the oldest task waiting on the task queue (workflow or activity).",
            registry=r,
        )
        self.pollers = Gauge(
            "trading_task_queue_pollers",
            "Workers that polled the task queue in the last 90 s, by task type.",
            ["task_type"],
            registry=r,
        )
        self.dependency_up = Gauge(
            "trading_dependency_up",
            "1 when the API reached the dependency at the last scrape (database, temporal).",
            ["dependency"],
            registry=r,
        )

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


class DatabaseCounter(Collector):
    """A counter whose values are read from the database at scrape time (alerts are rows:
    every API replica reports the same, and a restart loses nothing)."""

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.values: dict[str, float] = {}

    def set(self, values: Mapping[str, float]) -> None:
        self.values = dict(values)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value_label, value in sorted(self.values.items()):
            family.add_metric([value_label], value)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=[self.label])


class ActivityMetricsInterceptor(Interceptor):
    """Counts every failed activity attempt by activity type, the activities in flight and
    the background jobs' outcomes, without touching activities."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountFailures(next, self.metrics)


class _CountFailures(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, metrics: Metrics) -> None:
        super().__init__(next)
        self.metrics = metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        job = JOB_ACTIVITIES.get(info.activity_type)
        in_flight = self.metrics.activities_in_flight.labels(info.activity_type)
        in_flight.inc()
        try:
            result = await super().execute_activity(input)
        except CancelledError:
            raise  # the workflow or the worker gave up on it: not a failure of the activity
        except Exception as err:
            error_type = err.type if isinstance(err, ApplicationError) and err.type else None
            self.metrics.activity_failures.labels(
                activity_type=info.activity_type,
                error_type=error_type or type(err).__name__,
            ).inc()
            if job is not None:
                self.metrics.jobs.labels(job, "failure" if _gives_up(err, info) else "retry").inc()
            raise
        else:
            if job is not None:
                self.metrics.jobs.labels(job, "success").inc()
            return result
        finally:
            in_flight.dec()


def _gives_up(err: Exception, info: activity.Info) -> bool:
    """Whether this failed attempt is the activity's last: no retry follows."""
    if isinstance(err, ApplicationError) and err.non_retryable:
        return True
    policy = info.retry_policy
    if policy is None:
        return False
    if isinstance(err, ApplicationError) and err.type in (policy.non_retryable_error_types or ()):
        return True
    return 0 < policy.maximum_attempts <= info.attempt
