"""The worker process: runs session workflows and their activities on one task queue.

Run it alone against a production cluster with ``python worker.py``; ``make run`` starts it
for the embedded stack. Add more of them to scale out: they share the task queue.
"""

import asyncio
import logging
import signal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.session import SessionActivities
from starter.settings import Settings
from starter.temporal_client import connect
from store.db import create_engine, create_sessionmaker
from workflows.session import TradingSessionWorkflow

log = logging.getLogger("worker")


def create_worker(
    client: Client, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> Worker:
    """The worker with every workflow and activity of the service registered."""
    sessions = SessionActivities(sessionmaker)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[TradingSessionWorkflow],
        activities=[sessions.activate_session, sessions.check_session, sessions.finish_session],
    )


async def main() -> None:
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    engine = create_engine(settings.resolved_database_url(), settings.database_pool_size)
    client = await connect(settings)
    worker = create_worker(client, settings.temporal_task_queue, create_sessionmaker(engine))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    log.info("worker polling task queue %s", settings.temporal_task_queue)
    async with worker:
        await stop.wait()
    await engine.dispose()
    log.info("worker stopped")


if __name__ == "__main__":
    asyncio.run(main())
