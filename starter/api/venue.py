"""The paper broker's venue timer: its dead-man's switch fires without Temporal or a worker.

A real broker's venue cancels on its own timer when the client stops re-arming
``cancelAllOrdersAfter``. The paper broker is our database and its orders arrive through this
API, so the API process plays the venue: every ``paper_venue_tick_seconds`` one statement
(``DeadMansSwitchRepository.trigger_expired``) cancels the open orders of every account whose
deadline passed. It depends on PostgreSQL only, so a dead worker fleet or a dead Temporal
cannot stop it, and several API replicas may run it at once (the statement spends each
switch once).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.dead_man import DeadMansSwitchRepository, Triggered

log = logging.getLogger(__name__)


async def fire_expired(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Triggered]:
    """One tick: cancel the open orders of every account whose switch expired."""
    async with sessionmaker.begin() as db:
        fired = await DeadMansSwitchRepository(db).trigger_expired()
    for account in fired:
        log.warning(
            "dead-man's switch of an account expired at %s: %d open orders cancelled",
            account.deadline.isoformat(),
            account.orders_cancelled,
        )
    return fired


async def _run(sessionmaker: async_sessionmaker[AsyncSession], tick: float) -> None:
    while True:
        try:
            await fire_expired(sessionmaker)
        except (SQLAlchemyError, OSError) as err:  # the database away: try next tick
            log.error("paper venue tick failed: %s", type(err).__name__)
        await asyncio.sleep(tick)


@contextlib.asynccontextmanager
async def paper_venue(
    sessionmaker: async_sessionmaker[AsyncSession], tick: float
) -> AsyncIterator[None]:
    """Run the venue timer for the life of the API."""
    task = asyncio.create_task(_run(sessionmaker, tick), name="paper-venue")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
