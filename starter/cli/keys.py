"""``sessionctl keys``: issue, list and revoke API keys (the database only, no Temporal)."""

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from domain.roles import Role
from starter.api.schemas import ApiKeyOut
from starter.cli import render
from starter.cli.runner import POOL_SIZE, run
from starter.runtime.settings import Settings
from starter.services.keys import KeyService
from store.db import create_engine, create_sessionmaker

T = TypeVar("T")
app = typer.Typer(help="Manage API keys: who may call the API, in which role.")


def _with_keys(work: Callable[[KeyService], Awaitable[T]]) -> T:
    async def main(settings: Settings) -> T:
        engine = create_engine(settings.resolved_database_url(), POOL_SIZE)
        try:
            return await work(KeyService(create_sessionmaker(engine)))
        finally:
            await engine.dispose()

    return run(main)


@app.command()
def create(
    role: Annotated[
        Role, typer.Option(help="trader, service, operator, admin, market_data or auditor.")
    ],
    account: Annotated[str | None, typer.Option(help="The trader's account.")] = None,
    description: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
) -> None:
    """Issue a key and print it once: only its hash is kept."""
    issued = _with_keys(lambda keys: keys.create(role, account, description))
    out = Console()
    out.print(f"Key {issued.key_id} ({issued.role}) created. Store it now; it is not shown again:")
    out.print(issued.api_key, markup=False, highlight=False, soft_wrap=True)


@app.command("list")
def list_keys() -> None:
    """Every key with its role, account and state; never a secret."""
    Console().print(_table(_with_keys(lambda keys: keys.list_keys())))


@app.command()
def revoke(key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list`.")]) -> None:
    """Revoke a key at once; calls with it get 401 from then on."""
    revoked = _with_keys(lambda keys: keys.revoke(key_id))
    Console().print(f"Key {revoked.key_id} revoked at {render.moment(revoked.revoked_at)}.")


def _table(keys: list[ApiKeyOut]) -> Table:
    table = Table(title="API keys")
    for column in ("key id", "role", "account", "created", "revoked", "description"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.key_id,
            key.role,
            key.account_id or "-",
            render.moment(key.created_at),
            render.moment(key.revoked_at) if key.revoked_at else "-",
            key.description or "",
        )
    return table
