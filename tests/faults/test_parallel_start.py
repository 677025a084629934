"""Scenario 4: 20 identical start requests at once through the real API process."""

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from starter.dev.devserver import free_port
from tests.faults.conftest import Proc, scalar, stack_env, start_api
from tests.integration.api_helpers import session_body

PARALLEL = 20


async def test_twenty_parallel_identical_starts_make_one_workflow_and_one_row(
    dev_server: str,
    dev_client: Client,
    database_url: str,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    procs: list[Proc],
    tmp_path: Path,
    figures: dict[str, Any],
) -> None:
    port = free_port()
    procs.append(
        start_api(stack_env(dev_server, database_url, task_queue), port, tmp_path / "api.log")
    )
    body = session_body(seconds=600)
    keyed = session_body(seconds=600)
    del keyed["session_id"]
    key = f"idem-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as api:
        await _wait_until_serving(api)
        by_id, by_key = await asyncio.gather(
            asyncio.gather(*(api.post("/sessions", json=body) for _ in range(PARALLEL))),
            asyncio.gather(
                *(
                    api.post("/sessions", json=keyed, headers={"Idempotency-Key": key})
                    for _ in range(PARALLEL)
                )
            ),
        )
    figures["sessions"] = 2
    for responses in (by_id, by_key):
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] * (PARALLEL - 1) + [201], [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
    keyed_id = by_key[0].json()["id"]

    rows = await scalar(
        sessionmaker,
        "SELECT count(*) FROM trading_sessions WHERE id = :a OR idempotency_key = :k",
        a=body["session_id"],
        k=key,
    )
    workflows = 0
    for session_id in (body["session_id"], keyed_id):
        async for _ in dev_client.list_workflows(f"WorkflowId = 'trading-session-{session_id}'"):
            workflows += 1
    figures["duplicated_effects"] = (rows - 2) + (workflows - 2)
    figures["unhandled_errors"] = len(procs[0].error_lines())
    assert rows == 2
    assert workflows == 2
    assert figures["unhandled_errors"] == 0, procs[0].error_lines()
    for session_id in (body["session_id"], keyed_id):
        await dev_client.get_workflow_handle(f"trading-session-{session_id}").terminate("test over")


async def _wait_until_serving(api: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            await api.get("/health/live")
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
