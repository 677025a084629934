"""The shipped processes, end to end: `python worker.py` and the API under uvicorn."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.roles import Role
from starter.dev.devserver import free_port
from starter.services.keys import KeyService
from tests.integration.api_helpers import fill_body, session_body, wait_for_status
from tests.integration.polling import eventually

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def admin_key(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    return (await KeyService(sessionmaker).create(Role.ADMIN, description="e2e")).api_key


@pytest.fixture
def stack(dev_server: str, database_url: str) -> Iterator[str]:
    """Worker and API as separate processes, configured only through the environment."""
    port = free_port()
    env = {
        **os.environ,
        "TRADING_TEMPORAL_ADDRESS": dev_server,
        "DATABASE_URL": database_url,
        "TRADING_TEMPORAL_TASK_QUEUE": f"e2e-{uuid.uuid4()}",
        # The worker starts the fleet sweep; sweep every second so the test sees one.
        "TRADING_CHECK_INTERVAL_SECONDS": "1",
    }
    worker = subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT)
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "starter.api.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url)
        yield base_url
    finally:
        for process in (api, worker):
            process.terminate()
            process.wait(timeout=15)


def _wait_until_serving(base_url: str) -> None:
    for _ in range(150):
        try:
            httpx.get(f"{base_url}/docs", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the API did not start")


async def test_session_started_over_http_is_swept_and_expires_at_deadline(
    stack: str, dev_client: Client, admin_key: str
) -> None:
    body = session_body(seconds=4)
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=stack, headers=headers) as api:
        created = await api.post("/sessions", json=body)
        assert created.status_code == 201
        await wait_for_status(api, body["session_id"], {"ACTIVE"})

        async def swept() -> str | None:
            got = (await api.get(f"/sessions/{body['session_id']}")).json()
            return got["last_checked_by"] if got["last_checked_by"] == "sweep" else None

        # The worker started the fleet sweep, and it checks the new session.
        assert await eventually(swept, timeout=10) == "sweep"
        fill = await api.post(
            f"/sessions/{body['session_id']}/fills", json=fill_body("f1", "BUY", "5", "20")
        )
        assert fill.status_code == 201

        ended = await wait_for_status(api, body["session_id"], {"EXPIRED"}, timeout=20)

    assert ended["end_reason"] == "EXPIRED"
    # The row is final before the last step (the "ended" notification) has run, so the
    # workflow completes a moment later. What the Web UI lists comes from its description.
    handle = dev_client.get_workflow_handle(created.json()["workflow_id"])

    async def completed() -> str | None:
        status = (await handle.describe()).status
        return status.name if status is not None and status.name == "COMPLETED" else None

    assert await eventually(completed, timeout=10) == "COMPLETED"
