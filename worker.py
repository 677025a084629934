"""The worker process: runs session workflows and their activities on one task queue.

Run it alone against a production cluster with ``python worker.py``; ``make run`` starts it
for the embedded stack. Add more of them to scale out: they share the task queue.
"""

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx
import temporalio.activity
import uvloop
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.algorithm import AlgorithmControl, DatabaseAlgorithmControl
from activities.broker import Broker, PaperBroker
from activities.controls import SessionControlActivities
from activities.halt_webhook import HaltWebhookActivities
from activities.housekeeping import HousekeepingActivities
from activities.kill_switch import KillSwitchActivities
from activities.late_fills import LateFillActivities
from activities.notifications import NotificationActivities
from activities.performance import PerformanceActivities
from activities.refusals import DataErrorsAreRefusals
from activities.session import DATABASE_OUTAGE_ALERT_AFTER, SessionActivities
from activities.sweep import SweepActivities
from activities.termination import HaltWebhookPolicy, TerminationActivities
from activities.termination_sequence import TerminationSequenceActivities
from starter.runtime.job_counts import JobCountFlusher
from starter.runtime.logging_setup import configure_logging
from starter.runtime.metrics import ActivityMetricsInterceptor, Metrics
from starter.runtime.schedules import ensure_schedules, ensure_sweeps
from starter.runtime.settings import Settings
from starter.runtime.telemetry import serve_metrics, temporal_runtime
from starter.runtime.temporal_client import connect
from store.db import create_engine, create_sessionmaker
from workflows.halt_webhook import HaltWebhookDeliveryWorkflow
from workflows.housekeeping import HousekeepingWorkflow
from workflows.kill_switch import KillSwitchWorkflow
from workflows.late_fills import LateFillsWorkflow
from workflows.notifications import NotificationDeliveryWorkflow
from workflows.session import TradingSessionWorkflow
from workflows.sweep import FleetSweepWorkflow

log = logging.getLogger("worker")


def create_worker(
    client: Client,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    metrics: Metrics | None = None,
    *,
    broker: Broker | None = None,
    control: AlgorithmControl | None = None,
    http: httpx.AsyncClient | None = None,
    outage_alert_after: timedelta | None = None,
    max_cached_workflows: int = 5000,
    replace_activities: Sequence[Callable[..., Any]] = (),
    max_session_seconds: float = 7 * 24 * 3600.0,
    halt_webhook: HaltWebhookPolicy | None = None,
    cancel_after_seconds: float | None = None,
) -> Worker:
    """The worker with every workflow and activity of the service registered.

    The broker defaults to the paper broker on our own database, algorithm control to the
    gate, NOTIFY and webhook on it; pass real adapters here. ``cancel_after_seconds`` turns
    on the broker's dead-man's switch (re-armed by the sweep); ``main`` takes it from the
    settings, in-process test workers leave it off unless a test is about it.
    ``replace_activities`` stand in for the registered activities of the same name (fault
    injection: a database that never answers one call).
    """
    metrics = metrics or Metrics()
    http = http or httpx.AsyncClient()
    control = control or DatabaseAlgorithmControl(http)
    broker = broker or PaperBroker(sessionmaker)
    termination = TerminationActivities(
        sessionmaker, broker, http, metrics, control, halt_webhook=halt_webhook
    )
    halts = HaltWebhookActivities(sessionmaker, http)
    late_fills = LateFillActivities(sessionmaker, broker)
    housekeeping = HousekeepingActivities(sessionmaker, metrics)
    sessions = SessionActivities(sessionmaker, metrics, outage_alert_after=outage_alert_after)
    controls = SessionControlActivities(sessionmaker, metrics, control)
    notifications = NotificationActivities(sessionmaker, http)
    performance = PerformanceActivities(sessionmaker)
    sequence = TerminationSequenceActivities(termination, performance, sessions, notifications)
    sweep = SweepActivities(
        sessionmaker,
        performance,
        metrics,
        outage_alert_after=outage_alert_after or DATABASE_OUTAGE_ALERT_AFTER,
        max_session_seconds=max_session_seconds,
        broker=broker,
        cancel_after_seconds=cancel_after_seconds,
    )
    kill_switch = KillSwitchActivities(sessionmaker, metrics)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[
            TradingSessionWorkflow,
            FleetSweepWorkflow,
            HousekeepingWorkflow,
            NotificationDeliveryWorkflow,
            KillSwitchWorkflow,
            LateFillsWorkflow,
            HaltWebhookDeliveryWorkflow,
        ],
        # What the workflows call; the termination steps run inside ``run_steps``.
        activities=_replaced(
            [
                sessions.activate_session,
                sessions.check_session,
                controls.record_warning,
                controls.change_limits,
                controls.set_trading_gate,
                controls.record_request,
                controls.record_handler_failure,
                termination.mark_cleanup_failed,
                termination.resume_cleanup,
                sequence.run_steps,
                sweep.sweep_shard,
                kill_switch.signal_terminations,
                housekeeping.purge_ended_sessions,
                notifications.start_delivery,
                notifications.list_delivery_targets,
                notifications.deliver_webhook,
                notifications.record_delivery_failure,
                notifications.mark_notification_delivered,
                late_fills.settle_late_fills,
                halts.deliver_halt,
                halts.record_halt_webhook_failure,
            ],
            replace_activities,
        ),
        # Outermost first: failures are counted as the workflow sees them.
        interceptors=[ActivityMetricsInterceptor(metrics), DataErrorsAreRefusals()],
        # Every session is a long-running workflow: one evicted from the cache is replayed
        # from its whole history on its next tick. Keep as many as a worker holds sessions.
        max_cached_workflows=max_cached_workflows,
    )


def _replaced(
    registered: list[Callable[..., Any]], replacements: Sequence[Callable[..., Any]]
) -> list[Callable[..., Any]]:
    names = {activity_name(r) for r in replacements}
    return [a for a in registered if activity_name(a) not in names] + list(replacements)


def activity_name(function: Callable[..., Any]) -> str:
    definition = temporalio.activity._Definition.must_from_callable(function)
    return definition.name or function.__name__


async def main() -> None:
    settings = Settings()
    configure_logging(settings)
    metrics = Metrics()
    metrics_server = serve_metrics(settings.worker_app_metrics_address, metrics)
    engine = create_engine(settings.resolved_database_url(), settings.database_pool_size)
    client = await connect(settings, runtime=temporal_runtime(settings))
    try:
        await ensure_schedules(client, settings)
    except RPCError:
        log.exception("housekeeping schedules not ensured; sessions still run")
    try:
        await ensure_sweeps(client, settings)
    except RPCError:
        log.exception("fleet sweeps not ensured; fills and marks still wake their sessions")
    sessionmaker = create_sessionmaker(engine)
    broker = PaperBroker(sessionmaker, settings.paper_fee_rate)
    # One pooled HTTP client for every webhook the worker calls, closed on the way out.
    http = httpx.AsyncClient()
    worker = create_worker(
        client,
        settings.temporal_task_queue,
        sessionmaker,
        metrics,
        broker=broker,
        http=http,
        outage_alert_after=timedelta(seconds=settings.database_outage_alert_seconds),
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_session_seconds=settings.max_session_hours * 3600,
        halt_webhook=HaltWebhookPolicy(
            max_attempts=settings.halt_webhook_attempts,
            first_retry_seconds=settings.halt_webhook_first_retry_seconds,
        ),
        cancel_after_seconds=settings.broker_cancel_after_seconds,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker polling task queue %s", settings.temporal_task_queue)
    flusher = asyncio.create_task(JobCountFlusher(metrics, sessionmaker).run(stop))
    async with worker:
        await stop.wait()
    await flusher
    await http.aclose()
    await engine.dispose()
    if metrics_server is not None:
        metrics_server.shutdown()
    log.info("worker stopped")


if __name__ == "__main__":
    # uvloop's event loop costs the worker less CPU per workflow task than asyncio's own.
    uvloop.run(main())
