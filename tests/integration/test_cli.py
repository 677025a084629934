"""``sessionctl`` against a real dev server, a real worker and real PostgreSQL."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from typer.testing import CliRunner, Result

from starter.cli.app import app
from starter.dev.devserver import free_port
from starter.runtime.settings import Settings
from store.models import TradingSession
from store.sessions import SessionRepository
from worker import create_worker

Invoke = Callable[..., Awaitable[Result]]


def cli_env(settings: Settings, **overrides: str) -> dict[str, str]:
    env = {
        "TRADING_TEMPORAL_ADDRESS": settings.resolved_temporal_address,
        "TRADING_DATABASE_URL": settings.resolved_database_url(),
        "TRADING_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "COLUMNS": "200",  # Rich wraps tables to the terminal; keep rows on one line
    }
    return {**env, **overrides}


async def invoke_cli(env: dict[str, str], *args: str) -> Result:
    """Each command runs its own event loop (asyncio.run), so it runs beside the test's."""
    return await asyncio.to_thread(lambda: CliRunner().invoke(app, list(args), env=env))


@pytest.fixture
async def sessionctl(
    settings: Settings, dev_client: Client, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Invoke]:
    """``sessionctl`` configured for this test's worker (own task queue) and database."""
    env = cli_env(settings)
    async with create_worker(dev_client, settings.temporal_task_queue, sessionmaker):

        async def invoke(*args: str) -> Result:
            return await invoke_cli(env, *args)

        yield invoke


async def stored(sessionmaker: async_sessionmaker[AsyncSession], session_id: str) -> TradingSession:
    async with sessionmaker() as db:
        return await SessionRepository(db).get(session_id)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.1)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result.stdout


async def test_operator_runs_a_session_from_start_to_termination(
    sessionctl: Invoke, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    session_id = f"cli-{uuid.uuid4().hex[:10]}"
    account = f"acc-{uuid.uuid4().hex[:8]}"

    started = ok(
        await sessionctl(
            "start",
            *("--session-id", session_id, "--account", account, "--algorithm", "mm-1"),
            *("--minutes", "60", "--loss-limit", "1000.00", "--threshold", "0.5"),
            *("--threshold", "0.8"),
        )
    )
    assert f"Session {session_id} started." in started
    assert "1000" in started
    assert "1E+3" not in started
    assert "1000.00" not in started
    listed = ok(await sessionctl("list", "--account", account))
    assert session_id in listed
    assert "mm-1" in listed

    async def is_active() -> bool:
        return (await stored(sessionmaker, session_id)).status == "ACTIVE"

    await until(is_active, "session became ACTIVE")
    shown = ok(await sessionctl("show", session_id))
    assert "Live view of" in shown
    assert "loss used" in shown
    assert "time used" in shown
    assert "checks" in shown
    assert "50%, 80%" in shown

    ok(await sessionctl("pause", session_id, "--reason", "news", "--actor", "op-cli"))

    async def gate_says(word: str) -> bool:
        return word in ok(await sessionctl("gate", session_id))

    await until(lambda: gate_says("CLOSED (news)"), "gate closed after pause")
    ok(await sessionctl("resume", session_id, "--actor", "op-cli"))
    await until(lambda: gate_says("OPEN"), "gate open after resume")

    before = (await stored(sessionmaker, session_id)).end_time
    extended = ok(await sessionctl("extend", session_id, "--minutes", "30", "--actor", "op-cli"))
    later = before + timedelta(minutes=30)
    assert later.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") in extended
    assert (await stored(sessionmaker, session_id)).end_time == later

    limited = ok(await sessionctl("set-loss-limit", session_id, "750", "--reason", "risk desk"))
    assert "Loss limit of session" in limited
    assert "now 750." in limited
    assert (await stored(sessionmaker, session_id)).loss_limit == Decimal(750)

    ended = ok(
        await sessionctl(
            "terminate", session_id, "--reason", "end of test", "--actor", "op-cli", "--wait"
        )
    )
    assert "requested by op-cli" in ended
    assert "TERMINATED" in ended
    terminated = ok(await sessionctl("list", "--status", "terminated", "--account", account))
    assert session_id in terminated
    assert "TERMINATED" in terminated
    assert "No sessions match." in ok(
        await sessionctl("list", "--status", "ACTIVE", "--account", account)
    )


@pytest.mark.parametrize(
    "command",
    [
        ["show", "no-such-session"],
        ["terminate", "no-such-session", "--reason", "x"],
        ["gate", "no-such-session"],
        ["extend", "no-such-session", "--minutes", "5"],
    ],
)
async def test_unknown_session_exits_3_with_a_message(
    sessionctl: Invoke, command: list[str]
) -> None:
    result = await sessionctl(*command)

    assert result.exit_code == 3, result.output
    assert "error:" in result.stderr
    assert "'no-such-session' not found" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--minutes", "60", "--loss-limit", "0"], "loss_limit: Input should be greater than 0"),
        (["--minutes", "60", "--loss-limit", "lots"], "loss_limit:"),
        (["--end", "2030-01-01T10:00:00", "--loss-limit", "5"], "timezone"),
        (["--end", "2020-01-01T10:00:00Z", "--loss-limit", "5"], "end_time must be in the"),
        (["--minutes", "60", "--loss-limit", "5", "--threshold", "1.5"], "warning_thresholds"),
    ],
)
async def test_invalid_start_exits_4_and_creates_nothing(
    sessionctl: Invoke,
    sessionmaker: async_sessionmaker[AsyncSession],
    arguments: list[str],
    message: str,
) -> None:
    account = f"bad-{uuid.uuid4().hex[:8]}"

    result = await sessionctl("start", "--account", account, "--algorithm", "a", *arguments)

    assert result.exit_code == 4, result.output
    assert message in result.stderr
    assert "No sessions match." in ok(await sessionctl("list", "--account", account))


async def test_refused_update_exits_4_with_the_workflows_reason(
    sessionctl: Invoke, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    session_id = f"cli-{uuid.uuid4().hex[:10]}"
    ok(
        await sessionctl(
            "start", "--session-id", session_id, "--account", "acc-cli", "--algorithm", "a",
            "--minutes", "60", "--loss-limit", "100",
        )
    )  # fmt: skip
    end = (await stored(sessionmaker, session_id)).end_time

    earlier = (end - timedelta(minutes=5)).isoformat()
    result = await sessionctl("extend", session_id, "--end", earlier)

    assert result.exit_code == 4, result.output
    assert "later than the current" in result.stderr
    assert (await stored(sessionmaker, session_id)).end_time == end


async def test_end_and_minutes_together_are_a_usage_error(sessionctl: Invoke) -> None:
    result = await sessionctl("extend", "x", "--minutes", "5", "--end", "2030-01-01T00:00:00Z")

    assert result.exit_code == 2
    assert "exactly one of --end and --minutes" in result.stderr


async def test_unreachable_temporal_exits_5_naming_the_address(settings: Settings) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = cli_env(settings, TRADING_TEMPORAL_ADDRESS=address)

    result = await invoke_cli(env, "list")

    assert result.exit_code == 5, result.output
    assert f"Temporal unreachable at {address}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_unreachable_database_exits_5_without_showing_the_password(
    settings: Settings, dev_client: Client
) -> None:
    port = free_port()
    url = f"postgresql://trader:s3cret@127.0.0.1:{port}/trading"
    env = cli_env(settings, TRADING_DATABASE_URL=url)

    result = await invoke_cli(env, "show", "any-session")

    assert result.exit_code == 5, result.output
    assert f"database unreachable at 127.0.0.1:{port}/trading" in result.stderr
    assert "s3cret" not in result.output


async def test_register_search_attributes_is_idempotent(settings: Settings) -> None:
    result = await invoke_cli(cli_env(settings), "register-search-attributes")

    assert result.exit_code == 0, result.output
    assert "has every search attribute already" in result.stdout


def test_demo_is_offered_with_its_own_options() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    assert "--sessions" in result.stdout
    assert "--minutes" in result.stdout
