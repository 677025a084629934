"""Apply Alembic migrations to a database URL: ``python -m store.migrate "$DATABASE_URL"``.

It takes the URL from its caller (the dev stack, the tests, an operator) and imports nothing
of ``starter``: the store sits below every process that uses it.
"""

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from store.db import asyncpg_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Bring the schema to the newest revision; safe to run on every start."""
    command.upgrade(alembic_config(database_url), "head")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m store.migrate DATABASE_URL")
    upgrade(asyncpg_url(sys.argv[1]))
