"""``sessionctl alerts``, ``ack``, ``audit`` and ``top`` against real PostgreSQL and Temporal."""

import csv
import io
import json
import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.status import SessionStatus
from starter.dev.devserver import free_port
from starter.runtime.metrics import Metrics
from starter.runtime.settings import Settings
from starter.runtime.telemetry import serve_metrics
from store.alerts import AlertRepository
from store.audit import AuditRepository
from store.sessions import SessionRepository
from tests.fixtures.factories import session_values
from tests.integration.test_cli import cli_env, invoke_cli
from worker import create_worker

Sessionmaker = async_sessionmaker[AsyncSession]


async def test_alerts_are_listed_and_acknowledged_from_the_command_line(
    settings: Settings, sessionmaker: Sessionmaker
) -> None:
    kind = f"cli_{uuid.uuid4().hex[:8]}"
    async with sessionmaker.begin() as db:
        await AlertRepository(db).raise_alert(
            kind=kind, message="broker link down", session_id=None, dedupe_key=kind
        )
    env = cli_env(settings)

    listed = await invoke_cli(env, "alerts", "--kind", kind)
    alert_id = listed.stdout.split(kind)[0].split("│")[-3].strip()
    acked = await invoke_cli(env, "ack", alert_id, "--actor", "op-jane", "--reason", "fixed")
    still_open = await invoke_cli(env, "alerts", "--kind", kind)
    everything = await invoke_cli(env, "alerts", "--kind", kind, "--state", "all")
    missing = await invoke_cli(env, "ack", "999999999")

    assert listed.exit_code == 0, listed.output
    assert "broker link down" in listed.stdout
    assert "open" in listed.stdout
    assert acked.exit_code == 0, acked.output
    assert "ack op-jane" in acked.stdout
    assert kind not in still_open.stdout
    assert "ack op-jane" in everything.stdout
    assert missing.exit_code == 3


async def test_audit_exports_a_window_as_ndjson_and_csv(
    settings: Settings, sessionmaker: Sessionmaker, tmp_path: Path
) -> None:
    values = session_values(status=SessionStatus.ACTIVE)
    session_id = str(values["id"])
    async with sessionmaker.begin() as db:
        await SessionRepository(db).insert_if_absent(values)
        for n in range(3):
            await AuditRepository(db).append(
                session_id=session_id,
                action="session.paused" if n != 1 else "session.resumed",
                actor="op-jane",
                reason=f"=step {n}",
                details={"n": n},
            )
    env = cli_env(settings)

    ndjson = await invoke_cli(env, "audit", "--session", session_id)
    paused = await invoke_cli(
        env, "audit", "--account", str(values["account_id"]), "--action", "session.paused"
    )
    target = tmp_path / "audit.csv"
    written = await invoke_cli(
        env, "audit", "--session", session_id, "--format", "csv", "--output", str(target)
    )

    assert ndjson.exit_code == 0, ndjson.output
    events = [json.loads(line) for line in ndjson.stdout.splitlines()]
    assert [e["reason"] for e in events] == ["=step 0", "=step 1", "=step 2"]
    assert events[1]["details"] == {"n": 1}
    assert [json.loads(line)["reason"] for line in paused.stdout.splitlines()] == [
        "=step 0",
        "=step 2",
    ]
    assert written.exit_code == 0, written.output
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [r["action"] for r in rows] == ["session.paused", "session.resumed", "session.paused"]
    assert rows[0]["reason"] == "'=step 0"  # a spreadsheet does not run it as a formula
    assert json.loads(rows[2]["details"]) == {"n": 2}


async def test_top_shows_sessions_backlog_processes_and_open_alerts(
    settings: Settings, dev_client: Client, sessionmaker: Sessionmaker
) -> None:
    async with sessionmaker.begin() as db:
        await SessionRepository(db).insert_if_absent(session_values(status=SessionStatus.ACTIVE))
    metrics = Metrics()
    metrics.checks.labels("sweep").inc(7)
    port = free_port()
    server = serve_metrics(f"127.0.0.1:{port}", metrics)
    assert server is not None
    dead = free_port()
    try:
        async with create_worker(dev_client, settings.temporal_task_queue, sessionmaker, metrics):
            result = await invoke_cli(
                cli_env(settings),
                "top",
                "--once",
                "--scrape",
                f"http://127.0.0.1:{port}/metrics",
                "--scrape",
                f"http://127.0.0.1:{dead}/metrics",
            )
    finally:
        server.shutdown()

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"task queue {settings.temporal_task_queue}" in out
    assert "ACTIVE" in out
    [worker_row] = [line for line in out.splitlines() if f":{port}/metrics" in line]
    assert " up " in worker_row
    assert "MiB" in worker_row  # resident memory from process_*
    [dead_row] = [line for line in out.splitlines() if f":{dead}/metrics" in line]
    assert "down" in dead_row
    assert "open alerts:" in out
