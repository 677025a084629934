"""``sessionctl keys``: a key created on the command line works on the API until revoked."""

import re

import httpx
import pytest

from starter.runtime.settings import Settings
from tests.integration.test_cli import cli_env, invoke_cli


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The API without its key cache: the CLI is another process, so with the cache on the
    API sees its revoke only after TRADING_API_KEY_CACHE_SECONDS (test_key_cache.py)."""
    return settings.model_copy(update={"api_key_cache_seconds": 0})


async def test_key_created_listed_and_revoked_from_the_cli(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    env = cli_env(settings)
    created = await invoke_cli(env, "keys", "create", "--role", "operator")
    assert created.exit_code == 0, created.output
    api_key = re.search(r"tsk_([0-9a-f]{12})\.\S+", created.output)
    assert api_key is not None
    key_id = api_key.group(1)
    headers = {"Authorization": f"Bearer {api_key.group(0)}"}
    assert (await api.get("/jobs/stats", headers=headers)).status_code == 200

    listed = await invoke_cli(env, "keys", "list")
    assert key_id in listed.output
    assert api_key.group(0) not in listed.output

    assert (await invoke_cli(env, "keys", "revoke", key_id)).exit_code == 0
    assert (await api.get("/jobs/stats", headers=headers)).status_code == 401
    trader_without_account = await invoke_cli(env, "keys", "create", "--role", "trader")
    assert trader_without_account.exit_code == 4
