"""``sessionctl kill`` / ``kill-status`` / ``rearm`` against the real dev server and worker."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.integration.test_cli import Invoke, ok, sessionctl, stored, until

__all__ = ["sessionctl"]  # the fixture, shared with test_cli.py


async def test_kill_ends_every_session_of_the_account_and_rearm_unlocks_it(
    sessionctl: Invoke, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    account = f"acc-{uuid.uuid4().hex[:8]}"
    ids = [f"cli-kill-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for session_id in ids:
        ok(
            await sessionctl(
                "start",
                *("--session-id", session_id, "--account", account, "--algorithm", "mm-1"),
                *("--minutes", "60", "--loss-limit", "1000"),
            )
        )

    async def all_active() -> bool:
        statuses = [(await stored(sessionmaker, s)).status for s in ids]
        return statuses == ["ACTIVE", "ACTIVE"]

    await until(all_active, "sessions became ACTIVE")

    killed = ok(
        await sessionctl("kill", "--account", account, "--reason", "drill", "--actor", "rd")
    )
    refused = await sessionctl(
        "start",
        *("--account", account, "--algorithm", "mm-1", "--minutes", "5"),
        *("--loss-limit", "10"),
    )
    status = ok(await sessionctl("kill-status"))
    kill_id = killed.split("Kill switch ", 1)[1].split(" ", 1)[0]
    rearmed = ok(await sessionctl("rearm", kill_id, "--reason", "drill over"))

    assert f"engaged on account {account}: 2 gates closed" in killed
    assert "2 closed, 2 ended" in killed
    for session_id in ids:
        assert (await stored(sessionmaker, session_id)).status == "TERMINATED"
    assert refused.exit_code == 1
    assert "kill switch" in refused.output
    assert f"account {account}" in status
    assert "re-armed" in rearmed


async def test_kill_needs_exactly_one_scope(sessionctl: Invoke) -> None:
    both = await sessionctl("kill", "--account", "a", "--algorithm", "b", "--reason", "x")
    none = await sessionctl("kill", "--reason", "x")

    assert (both.exit_code, none.exit_code) == (2, 2)
