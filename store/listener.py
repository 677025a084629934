"""PostgreSQL LISTEN for committed notifications: one connection per process, many waiters."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from store.notifications import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

# After a failed connect, wait this long before the next try; waiters poll meanwhile.
RECONNECT_DELAY = 5.0
CONNECT_TIMEOUT = 5.0


def asyncpg_dsn(database_url: str) -> str:
    """The plain ``postgresql://`` DSN asyncpg accepts, from a SQLAlchemy URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class NotificationListener:
    """Wakes every subscriber when a notification commits.

    A wake-up only says "read again": subscribers re-read the table, so a NOTIFY lost while
    the connection was down costs latency (their periodic re-read), never a notification.
    The connection is opened on first use and re-opened after it drops.
    """

    def __init__(self, database_url: str, channel: str = NOTIFY_CHANNEL) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._channel = channel
        self._connection: Any = None
        self._waiters: set[asyncio.Event] = set()
        self._lock = asyncio.Lock()
        self._next_try = 0.0
        self.closed = False

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    @property
    def subscribers(self) -> int:
        """Streams currently waiting on this listener."""
        return len(self._waiters)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Event]:
        """An event set on every notification (and on close); clear it before each re-read."""
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            await self.ensure_listening()
            yield event
        finally:
            self._waiters.discard(event)

    async def ensure_listening(self) -> None:
        """Connect and LISTEN unless already done; a failure is logged and tried again later."""
        loop = asyncio.get_running_loop()
        if self.closed or self.listening or loop.time() < self._next_try:
            return
        async with self._lock:
            if self.closed or self.listening:
                return
            try:
                connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT)
                await connection.add_listener(self._channel, self._on_notify)
            except (OSError, TimeoutError, asyncpg.PostgresError) as err:
                self._next_try = loop.time() + RECONNECT_DELAY
                log.warning("LISTEN %s failed, streams poll meanwhile: %s", self._channel, err)
                return
            connection.add_termination_listener(self._on_lost)
            self._connection = connection
        # Whatever committed while nobody listened is picked up by one immediate re-read.
        self._wake_all()

    async def close(self) -> None:
        """Stop listening and wake subscribers so that their streams end."""
        self.closed = True
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            await connection.close(timeout=CONNECT_TIMEOUT)
        self._wake_all()

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._wake_all()

    def _on_lost(self, _connection: Any) -> None:
        log.warning("LISTEN connection lost; reconnecting on next use")
        self._connection = None

    def _wake_all(self) -> None:
        for event in self._waiters:
            event.set()
