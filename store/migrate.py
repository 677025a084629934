"""Apply Alembic migrations: ``python -m store.migrate`` uses the configured database."""

from pathlib import Path

from alembic import command
from alembic.config import Config

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
    from starter.settings import Settings

    upgrade(Settings().resolved_database_url())
