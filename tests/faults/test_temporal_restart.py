"""Scenario 2: the Temporal dev server is killed and restarted on the same SQLite file."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError

from domain.session import workflow_id_for
from starter.api.schemas import StartSessionBody, TerminateBody
from starter.dev.devserver import free_port, start_dev_server
from starter.runtime.settings import Settings
from starter.services.sessions import SessionService
from tests.faults.conftest import (
    TERMINAL,
    Proc,
    eventually,
    scalar,
    session_status,
    stack_env,
    start_worker,
)
from tests.integration.conftest import connect_when_ready
from workflows.session import TradingSessionWorkflow

OUTAGE = 10.0
# Restart to end: the worker's pollers reconnect, then the overdue timer fires.
PROMPT = 6.0


async def ready_client(address: str) -> Client:
    client = await connect_when_ready(address)
    await eventually(lambda: _serving(client), 30, "the namespace to serve")
    return client


async def test_sessions_survive_a_temporal_restart_and_overdue_deadlines_end_promptly(
    database_url: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    procs: list[Proc],
    tmp_path: Path,
    figures: dict[str, Any],
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    db_file = tmp_path / "temporal.db"
    server = start_dev_server(db_file, port, log_file=tmp_path / "temporal-1.log")
    try:
        client = await ready_client(address)
        task_queue = f"restart-{uuid.uuid4()}"
        procs.append(
            start_worker(stack_env(address, database_url, task_queue), tmp_path / "worker.log")
        )
        settings = Settings(
            temporal_address=address, database_url=database_url, temporal_task_queue=task_queue
        )
        service = SessionService(client, sessionmaker, settings)
        now = datetime.now(UTC)
        overdue = f"overdue-{uuid.uuid4().hex[:8]}"
        running = [f"running-{uuid.uuid4().hex[:8]}" for _ in range(3)]
        figures["sessions"] = 1 + len(running)
        for session_id, end in [(overdue, now + timedelta(seconds=6))] + [
            (s, now + timedelta(minutes=10)) for s in running
        ]:
            await service.start_session(
                StartSessionBody(
                    session_id=session_id,
                    account_id="acc-restart",
                    algorithm_id="algo-1",
                    end_time=end,
                    loss_limit=Decimal(1000),
                )
            )
        for session_id in [overdue, *running]:
            await eventually(
                partial(_is, sessionmaker, session_id, {"ACTIVE"}), 30, f"{session_id} ACTIVE"
            )

        server.kill()
        server.wait(timeout=10)
        await asyncio.sleep(OUTAGE)  # the overdue session's deadline passes meanwhile
        assert await session_status(sessionmaker, overdue) == "ACTIVE"
        server = start_dev_server(db_file, port, log_file=tmp_path / "temporal-2.log")
        restarted_at = datetime.now(UTC)
        client = await ready_client(address)

        await eventually(lambda: _is(sessionmaker, overdue, TERMINAL), 30, "the overdue end")
        ended_at: datetime = await scalar(
            sessionmaker, "SELECT ended_at FROM trading_sessions WHERE id = :s", s=overdue
        )
        lag = (ended_at - restarted_at).total_seconds()
        figures["restart_to_end_seconds"] = round(lag, 2)
        assert await session_status(sessionmaker, overdue) == "EXPIRED"
        assert lag < PROMPT, f"ended {lag:.1f} s after the restart"

        # The others go on: they answer queries and end when told.
        service = SessionService(client, sessionmaker, settings)
        for session_id in running:
            handle = client.get_workflow_handle_for(
                TradingSessionWorkflow.run, workflow_id_for(session_id)
            )
            view = await handle.query(TradingSessionWorkflow.get_status)
            assert view.status.value == "ACTIVE"
            await service.terminate(session_id, TerminateBody(reason="drill", actor="op"))
        for session_id in running:
            await eventually(partial(_is, sessionmaker, session_id, {"TERMINATED"}), 45, session_id)
        figures["sessions_lost"] = 0
        figures["unhandled_errors"] = len(procs[0].error_lines())
        assert figures["unhandled_errors"] == 0, procs[0].error_lines()
    finally:
        for proc in procs:
            proc.stop()
        server.terminate()
        server.wait(timeout=15)


async def _serving(client: Client) -> bool:
    try:
        await client.count_workflows()
    except RPCError:
        return False
    return True


async def _is(sm: async_sessionmaker[AsyncSession], session_id: str, wanted: set[str]) -> bool:
    return await session_status(sm, session_id) in wanted
