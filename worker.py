"""The worker process: runs session workflows and their activities on one task queue.

Run it alone against a production cluster with ``python worker.py``; ``make run`` starts it
for the embedded stack. Add more of them to scale out: they share the task queue.
"""

import asyncio
import logging
import signal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.controls import SessionControlActivities
from activities.housekeeping import HousekeepingActivities
from activities.metrics import ActivityMetricsInterceptor, Metrics
from activities.session import SessionActivities
from starter.logging_setup import configure_logging
from starter.schedules import ensure_schedules
from starter.settings import Settings
from starter.telemetry import serve_metrics, temporal_runtime
from starter.temporal_client import connect
from store.db import create_engine, create_sessionmaker
from workflows.housekeeping import HousekeepingWorkflow
from workflows.session import TradingSessionWorkflow

log = logging.getLogger("worker")


def create_worker(
    client: Client,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    metrics: Metrics | None = None,
) -> Worker:
    """The worker with every workflow and activity of the service registered."""
    metrics = metrics or Metrics()
    housekeeping = HousekeepingActivities(sessionmaker, metrics)
    sessions = SessionActivities(sessionmaker)
    controls = SessionControlActivities(sessionmaker)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[TradingSessionWorkflow, HousekeepingWorkflow],
        activities=[
            sessions.activate_session,
            sessions.check_session,
            sessions.finish_session,
            controls.record_warning,
            controls.change_limits,
            controls.set_trading_gate,
            housekeeping.purge_ended_sessions,
        ],
        interceptors=[ActivityMetricsInterceptor(metrics)],
    )


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
    sessionmaker = create_sessionmaker(engine)
    worker = create_worker(client, settings.temporal_task_queue, sessionmaker, metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker polling task queue %s", settings.temporal_task_queue)
    async with worker:
        await stop.wait()
    await engine.dispose()
    if metrics_server is not None:
        metrics_server.shutdown()
    log.info("worker stopped")


if __name__ == "__main__":
    asyncio.run(main())
