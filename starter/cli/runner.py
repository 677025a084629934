"""How every ``sessionctl`` command runs: one event loop, one service, errors as exit codes.

A command builds its typed request first (bad input never opens a connection), then hands a
coroutine to :func:`run_with_service`, which connects Temporal and PostgreSQL, runs it,
disposes the engine and turns every refusal into a red line on stderr and a distinct exit code.
"""

import asyncio
import getpass
import re
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from starter.runtime.settings import Settings
from starter.runtime.temporal_client import connect
from starter.services.errors import (
    InvalidRequestError,
    NotFoundError,
    ServiceError,
    UnavailableError,
)
from starter.services.sessions import SessionService
from store.db import create_engine, create_sessionmaker

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

EXIT_ERROR = 1  # generic failure or conflict (the session ended, a different session exists)
EXIT_USAGE = 2  # Typer's own: unknown option, missing argument
EXIT_NOT_FOUND = 3
EXIT_INVALID = 4
EXIT_UNAVAILABLE = 5  # Temporal or PostgreSQL did not answer

# A CLI must not hang on a black-holed address; a frontend that answers connects in well under it.
TEMPORAL_CONNECT_TIMEOUT = 10.0
# One command runs one request at a time: a tiny pool is plenty.
POOL_SIZE = 2
# Temporal statuses that mean "the server is not there", as opposed to a refusal.
_TEMPORAL_DOWN = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


def fail(message: str, code: int) -> NoReturn:
    """One red line on stderr, then exit with ``code``."""
    Console(stderr=True).print(
        f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def exit_code_for(error: ServiceError) -> int:
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, InvalidRequestError):
        return EXIT_INVALID
    if isinstance(error, UnavailableError):
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


def validation_message(error: ValidationError) -> str:
    """``field: reason`` of the first error, like the API's 422; never the input value."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    return f"{field}: {first['msg']}" if field else str(first["msg"])


def parse(model: type[M], data: dict[str, Any]) -> M:
    """Validate a request the way the API does; bad input exits 4 before any connection."""
    try:
        return model.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as err:
        fail(validation_message(err), EXIT_INVALID)


def default_actor(actor: str | None) -> str:
    """The given actor, else the login name (when it is a valid id), else ``cli``."""
    if actor is not None:
        return actor
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return "cli"
    return name if re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", name) else "cli"


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as err:
        fail(f"invalid configuration: {validation_message(err)}", EXIT_INVALID)


def run(main: Callable[[Settings], Awaitable[T]]) -> T:
    """Run ``main`` on a fresh event loop with the configured settings; map failures to exits."""
    settings = load_settings()
    # The embedded PostgreSQL's package warns about this on every start; it changes nothing.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        return asyncio.run(_guarded(main, settings))
    except ServiceError as err:
        fail(err.message, exit_code_for(err))


def run_with_service(work: Callable[[SessionService], Awaitable[T]]) -> T:
    """Run ``work`` with a :class:`SessionService` built from Settings, then dispose it."""

    async def main(settings: Settings) -> T:
        client = await connect_temporal(settings)
        # Temporal first: with no database configured this may start the embedded PostgreSQL,
        # which is pointless when the rest of the stack is down.
        database_url = _resolve_database_url(settings)
        engine = create_engine(database_url, POOL_SIZE)
        try:
            service = SessionService(client, create_sessionmaker(engine), settings)
            try:
                return await work(service)
            except (OSError, OperationalError, InterfaceError) as err:
                raise UnavailableError(
                    f"database unreachable at {database_address(database_url)}: {_reason(err)}"
                ) from err
        finally:
            await engine.dispose()

    return run(main)


def run_with_client(work: Callable[[Client, Settings], Awaitable[T]]) -> T:
    """Run ``work`` with a Temporal client only (no database), e.g. cluster administration."""

    async def main(settings: Settings) -> T:
        return await work(await connect_temporal(settings), settings)

    return run(main)


async def connect_temporal(settings: Settings) -> Client:
    """The service's client, or :class:`UnavailableError` naming the address it tried."""
    address = settings.resolved_temporal_address
    try:
        async with asyncio.timeout(TEMPORAL_CONNECT_TIMEOUT):
            return await connect(settings)
    except TimeoutError as err:
        raise UnavailableError(
            f"Temporal unreachable at {address}: no answer within {TEMPORAL_CONNECT_TIMEOUT:g} s"
        ) from err
    except RuntimeError as err:
        raise UnavailableError(f"Temporal unreachable at {address}: {_reason(err)}") from err


async def _guarded(main: Callable[[Settings], Awaitable[T]], settings: Settings) -> T:
    """Temporal failures after connecting: down means unavailable, anything else a refusal."""
    try:
        return await main(settings)
    except RPCError as err:
        if err.status in _TEMPORAL_DOWN:
            raise UnavailableError(
                f"Temporal unreachable at {settings.resolved_temporal_address}: {err.message}"
            ) from err
        if err.status is RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"Temporal: {err.message}") from err
        raise ServiceError(f"Temporal refused the request: {err.message}") from err


def _resolve_database_url(settings: Settings) -> str:
    try:
        return settings.resolved_database_url()
    except ArgumentError as err:
        raise InvalidRequestError(f"invalid database URL: {err}") from err
    except Exception as err:  # the embedded server failed to start: say where and why
        raise UnavailableError(
            f"embedded database under {settings.data_dir.resolve()} did not start: {_reason(err)}"
        ) from err


def database_address(url: str) -> str:
    """``host:port/database`` (or the socket directory): where, never who or the password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "the configured database URL"
    host = parsed.host or str(parsed.query.get("host", "localhost"))
    port = f":{parsed.port}" if parsed.port else ""
    return f"{host}{port}/{parsed.database or ''}"


def _reason(error: BaseException) -> str:
    """The useful part of a connection error: the OS message rather than a transport dump."""
    text = str(getattr(error, "orig", None) or error)
    os_message = re.search(r'message: "([^"]+)"', text)
    if os_message:
        return os_message.group(1)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return text.splitlines()[0] if text else type(error).__name__
