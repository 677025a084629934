"""Engine and session factory; one per process, created by whoever owns the process."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def asyncpg_url(url: str) -> str:
    """Accept the usual ``postgresql://`` form and select the asyncpg driver for it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    # pre_ping lets the pool recover by itself after PostgreSQL restarts. hide_parameters
    # keeps bound values (ids, reasons, amounts) out of error texts, which end up in logs.
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


async def ping(db: AsyncSession) -> None:
    """One round trip to the database: the readiness probe's check."""
    await db.execute(text("SELECT 1"))


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
